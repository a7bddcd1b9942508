"""VQA accuracy, as computed by the official VQA evaluation (GT-Vision-Lab/VQA, ``vqaEval.py``), and
TextVQA accuracy, as computed by the TextVQA authors' evaluator (mmf ``TextVQAAccuracyEvaluator``).

:func:`vqa_accuracy` (``vqaEval.py``) is used for VQAv2, OK-VQA and VizWiz-VQA.  Per question, with gold answers ``g_1..g_n``
(normally ``n = 10``):

1. the prediction and every gold answer: newlines and tabs -> space, then ``strip()``;
2. **only if the gold answers are not all identical** (``len(set(gold)) > 1`` after step 1), the
   prediction *and* every gold answer are normalised (:func:`normalize_vqa_answer`); when all gold
   answers are identical nothing more is done and the comparison is exact and case-sensitive -
   this is what the current official code does (the official annotations are already normalised);
3. ``acc = mean over i of min(1, #{j != i : g_j == prediction} / 3)`` - the mean over the
   ``n``-choose-``(n-1)`` subsets of the gold answers.

The result is the exact rational value of step 3, correctly rounded to a float (the official code
sums floats, which can differ from it in the last bit, i.e. by < 1e-15).

Normalisation (``processPunctuation`` then ``processDigitArticle`` in the official code):

* punctuation ``; / [ ] " { } ( ) = + \\ _ - > < @ ` , ? !``: each such character is deleted if it
  occurs next to a space anywhere in the text (``"p "`` or ``" p"``) or if the text contains a
  ``digit,digit`` pattern (e.g. ``"1,000"``); otherwise it is replaced by a space.  The decision
  is made per character on the original text;
* periods not followed by a digit are deleted (``"3.5"`` keeps its period; at most 32 periods are
  deleted, because the official code passes ``re.UNICODE`` where ``re.sub`` expects ``count``);
* lower-case, split on whitespace; number words ``none zero one ... ten`` -> ``0 0 1 ... 10``;
  articles ``a an the`` dropped; apostrophe-less contractions restored from the official map
  (``dont`` -> ``don't``, ``youdve`` is *not* in it, ``youd've`` -> ``you'd've``...);
  words re-joined with single spaces.

Quirks kept on purpose: ``':'`` and ``"'"`` are not punctuation here; ``"none"`` maps to ``"0"``;
with a single gold answer the accuracy is always 0 (no "other" answers to match) and with ``n < 4``
gold answers the maximum is ``(n - 1) / 3`` - use :func:`evalkit.metrics.exact_match` for
single-reference datasets.

:func:`textvqa_accuracy` (mmf ``TextVQAAccuracyEvaluator`` with ``EvalAIAnswerProcessor``; lmms-eval's
TextVQA scorer computes the same) differs in two places, and is what TextVQA numbers are reported
with:

* **every** answer and the prediction are always normalised (no "all gold answers identical" shortcut:
  ``"coca-cola"`` against 10 x ``"Coca-Cola"`` scores 1, where ``vqa_accuracy`` gives 0);
* normalisation (:func:`normalize_textvqa_answer`) starts with: lower-case, delete every ``,`` and
  ``?``, ``'s`` -> `` 's``, strip; then newlines/tabs -> space, strip, and the same punctuation,
  period, number-word, article and contraction rules as above.  Because the commas are already gone,
  the ``digit,digit`` rule never fires (``"1,000"`` -> ``"1000"``; ``"$1,000.50"`` keeps its decimal
  point).

The score is the same leave-one-out mean (``mean over i of min(1, #{j != i : g_j == p} / 3)``) over
the normalised answers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

__all__ = [
    "vqa_accuracy",
    "normalize_vqa_answer",
    "textvqa_accuracy",
    "normalize_textvqa_answer",
    "VQA_CONTRACTIONS",
]

# The official map, written as "apostrophe-less form -> restored form" pairs (data, not code).
# The four keys with a capital I can never match (the text is lower-cased first); they are kept
# because they are part of the official map.
_CONTRACTION_TABLE = """
aint ain't | arent aren't | cant can't | couldve could've | couldnt couldn't
couldn'tve couldn't've | couldnt've couldn't've | didnt didn't | doesnt doesn't | dont don't
hadnt hadn't | hadnt've hadn't've | hadn'tve hadn't've | hasnt hasn't | havent haven't
hed he'd | hed've he'd've | he'dve he'd've | hes he's | howd how'd | howll how'll | hows how's
Id've I'd've | I'dve I'd've | Im I'm | Ive I've | isnt isn't | itd it'd | itd've it'd've
it'dve it'd've | itll it'll | let's let's | maam ma'am | mightnt mightn't | mightnt've mightn't've
mightn'tve mightn't've | mightve might've | mustnt mustn't | mustve must've | neednt needn't
notve not've | oclock o'clock | oughtnt oughtn't | ow's'at 'ow's'at | 'ows'at 'ow's'at
'ow'sat 'ow's'at | shant shan't | shed've she'd've | she'dve she'd've | she's she's
shouldve should've | shouldnt shouldn't | shouldnt've shouldn't've | shouldn'tve shouldn't've
somebody'd somebodyd | somebodyd've somebody'd've | somebody'dve somebody'd've
somebodyll somebody'll | somebodys somebody's | someoned someone'd | someoned've someone'd've
someone'dve someone'd've | someonell someone'll | someones someone's | somethingd something'd
somethingd've something'd've | something'dve something'd've | somethingll something'll
thats that's | thered there'd | thered've there'd've | there'dve there'd've | therere there're
theres there's | theyd they'd | theyd've they'd've | they'dve they'd've | theyll they'll
theyre they're | theyve they've | twas 'twas | wasnt wasn't | wed've we'd've | we'dve we'd've
weve we've | werent weren't | whatll what'll | whatre what're | whats what's | whatve what've
whens when's | whered where'd | wheres where's | whereve where've | whod who'd | whod've who'd've
who'dve who'd've | wholl who'll | whos who's | whove who've | whyll why'll | whyre why're
whys why's | wont won't | wouldve would've | wouldnt wouldn't | wouldnt've wouldn't've
wouldn'tve wouldn't've | yall y'all | yall'll y'all'll | y'allll y'all'll | yall'd've y'all'd've
y'alld've y'all'd've | y'all'dve y'all'd've | youd you'd | youd've you'd've | you'dve you'd've
youll you'll | youre you're | youve you've
"""

VQA_CONTRACTIONS: dict[str, str] = dict(
    pair.split() for pair in _CONTRACTION_TABLE.replace("\n", " | ").split("|") if pair.strip()
)
"""The official contraction map (apostrophe-less form -> form with apostrophes)."""

_NUMBER_WORDS = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
_ARTICLES = frozenset({"a", "an", "the"})
_PUNCTUATION = frozenset(';/[]"{}()=+\\_-><@`,?!')
_DIGIT_COMMA_DIGIT = re.compile(r"\d,\d")
_PERIOD_NOT_BEFORE_DIGIT = re.compile(r"\.(?!\d)")
_MAX_PERIODS_REMOVED = 32  # int(re.UNICODE), passed as `count` by the official code
_WHITESPACE_TO_SPACE = str.maketrans({"\n": " ", "\t": " "})


def _clean(text: str) -> str:
    """Step 1: newlines/tabs -> space, strip."""
    if "\n" in text or "\t" in text:
        text = text.translate(_WHITESPACE_TO_SPACE)
    return text.strip()


def _process_punctuation(text: str) -> str:
    present = _PUNCTUATION.intersection(text)
    if present:
        delete_all = _DIGIT_COMMA_DIGIT.search(text) is not None
        table: dict[int, str | None] = {}
        for char in present:
            glued = not delete_all and (char + " ") not in text and (" " + char) not in text
            table[ord(char)] = " " if glued else None
        text = text.translate(table)
    if "." in text:
        text = _PERIOD_NOT_BEFORE_DIGIT.sub("", text, count=_MAX_PERIODS_REMOVED)
    return text


def _process_words(text: str) -> str:
    words = []
    for word in text.lower().split():
        word = _NUMBER_WORDS.get(word, word)
        if word in _ARTICLES:
            continue
        words.append(VQA_CONTRACTIONS.get(word, word))
    return " ".join(words)


@lru_cache(maxsize=1 << 16)
def _normalize_cleaned(text: str) -> str:
    # Cached: gold answers repeat a lot ("yes", "2", ...), ten per question.
    return _process_words(_process_punctuation(text))


def normalize_vqa_answer(text: str) -> str:
    """The official VQA answer normalisation (see the module docstring for every rule).

    Examples:
        >>> normalize_vqa_answer("  Two dogs!\\n")
        '2 dogs'
        >>> normalize_vqa_answer("The cost is 1,000.")
        'cost is 1000'
        >>> normalize_vqa_answer("dont know")
        "don't know"
    """
    return _normalize_cleaned(_clean(text))


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """Official VQA accuracy of ``prediction`` against the gold ``answers`` (normally 10).

    Returns:
        ``mean over i of min(1, #{j != i : answers[j] == prediction} / 3)`` after the official
        processing; one of ``k / (3 n)``, in ``[0, 1]``.

    Raises:
        ValueError: ``answers`` is empty.
        TypeError: ``answers`` is a single string.

    Examples:
        >>> vqa_accuracy("2", ["two"] * 3 + ["2"] * 7)  # answers differ -> all normalised
        1.0
        >>> vqa_accuracy("Yes", ["yes"] * 10)  # identical answers -> exact comparison
        0.0
        >>> round(vqa_accuracy("red", ["red", "red", "blue"] + ["green"] * 7), 4)
        0.6
    """
    if isinstance(answers, str):
        raise TypeError("vqa_accuracy(): `answers` must be a sequence of strings, not a string")
    n = len(answers)
    if n == 0:
        raise ValueError("vqa_accuracy(): no gold answers given (empty `answers`)")
    pred = _clean(prediction)
    gold = [_clean(answer) for answer in answers]
    if len(set(gold)) > 1:
        pred = _normalize_cleaned(pred)
        gold = [_normalize_cleaned(answer) for answer in gold]
    return _leave_one_out(pred, gold)


def _leave_one_out(pred: str, gold: Sequence[str]) -> float:
    """``mean over i of min(1, #{j != i : gold[j] == pred} / 3)``, exactly rounded."""
    n = len(gold)
    m = gold.count(pred)
    # Gold answers equal to the prediction see m - 1 matches among the others, the rest see m.
    thirds = m * min(3, m - 1) + (n - m) * min(3, m)
    return thirds / (3 * n)


def _check_answers(answers: Sequence[str], func: str) -> None:
    if isinstance(answers, str):
        raise TypeError(f"{func}(): `answers` must be a sequence of strings, not a string")
    if len(answers) == 0:
        raise ValueError(f"{func}(): no gold answers given (empty `answers`)")


@lru_cache(maxsize=1 << 16)
def normalize_textvqa_answer(text: str) -> str:
    """The TextVQA evaluator's answer normalisation (mmf ``EvalAIAnswerProcessor``).

    Lower-case, delete ``,`` and ``?``, ``'s`` -> `` 's``, strip; then the VQA rules (newlines/tabs,
    punctuation, periods, number words, articles, contractions) as in :func:`normalize_vqa_answer`.

    Examples:
        >>> normalize_textvqa_answer("Coca-Cola")
        'coca cola'
        >>> normalize_textvqa_answer("1,000?")
        '1000'
        >>> normalize_textvqa_answer("McDonald's")
        "mcdonald 's"
    """
    text = text.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
    return _normalize_cleaned(_clean(text))


def textvqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """TextVQA accuracy of ``prediction`` against the gold ``answers`` (normally 10), as the TextVQA
    authors' evaluator (mmf ``TextVQAAccuracyEvaluator``) and lmms-eval compute it.

    Every answer and the prediction are normalised with :func:`normalize_textvqa_answer` (always,
    even when all gold answers are identical), then the leave-one-out mean of
    ``min(1, matches / 3)``.

    Raises:
        ValueError: ``answers`` is empty.
        TypeError: ``answers`` is a single string.

    Examples:
        >>> textvqa_accuracy("coca-cola", ["Coca-Cola"] * 10)  # vqa_accuracy gives 0.0 here
        1.0
        >>> textvqa_accuracy("1,000", ["1000"] * 10)
        1.0
    """
    _check_answers(answers, "textvqa_accuracy")
    gold = [normalize_textvqa_answer(answer) for answer in answers]
    return _leave_one_out(normalize_textvqa_answer(prediction), gold)

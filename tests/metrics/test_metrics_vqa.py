"""VQA accuracy: hand-computed cases and a comparison with an independent reference.

``reference_vqa_accuracy`` below is written from the published definition (the VQA evaluation
page and the official ``vqaEval.py``'s documented behaviour), deliberately in a different style
from ``evalkit.metrics.vqa``: character loops instead of regexes/translate tables, exact fractions,
and the literal average over the n-choose-(n-1) subsets of gold answers.  ``benchmarks/metrics.py``
imports it from this file.
"""

from __future__ import annotations

import random
from fractions import Fraction
from itertools import combinations

import pytest

from evalkit.metrics import normalize_textvqa_answer, normalize_vqa_answer, textvqa_accuracy, vqa_accuracy

# ---------------------------------------------------------------------------------------------
# Independent reference
# ---------------------------------------------------------------------------------------------

REF_PUNCT = [
    ";",
    "/",
    "[",
    "]",
    '"',
    "{",
    "}",
    "(",
    ")",
    "=",
    "+",
    "\\",
    "_",
    "-",
    ">",
    "<",
    "@",
    "`",
    ",",
    "?",
    "!",
]
# Number words become digits: "zero".."ten" by position in the spelled-out list, and "none" -> "0".
REF_NUMBERS = {"none": "0"} | {
    word: str(value)
    for value, word in enumerate("zero one two three four five six seven eight nine ten".split())
}
REF_ARTICLES = ["a", "an", "the"]
# The official contraction map, as (restored form, apostrophe-less spellings...) groups.
REF_CONTRACTION_GROUPS = [
    ("ain't", "aint"),
    ("aren't", "arent"),
    ("can't", "cant"),
    ("could've", "couldve"),
    ("couldn't", "couldnt"),
    ("couldn't've", "couldn'tve", "couldnt've"),
    ("didn't", "didnt"),
    ("doesn't", "doesnt"),
    ("don't", "dont"),
    ("hadn't", "hadnt"),
    ("hadn't've", "hadnt've", "hadn'tve"),
    ("hasn't", "hasnt"),
    ("haven't", "havent"),
    ("he'd", "hed"),
    ("he'd've", "hed've", "he'dve"),
    ("he's", "hes"),
    ("how'd", "howd"),
    ("how'll", "howll"),
    ("how's", "hows"),
    ("I'd've", "Id've", "I'dve"),
    ("I'm", "Im"),
    ("I've", "Ive"),
    ("isn't", "isnt"),
    ("it'd", "itd"),
    ("it'd've", "itd've", "it'dve"),
    ("it'll", "itll"),
    ("let's", "let's"),
    ("ma'am", "maam"),
    ("mightn't", "mightnt"),
    ("mightn't've", "mightnt've", "mightn'tve"),
    ("might've", "mightve"),
    ("mustn't", "mustnt"),
    ("must've", "mustve"),
    ("needn't", "neednt"),
    ("not've", "notve"),
    ("o'clock", "oclock"),
    ("oughtn't", "oughtnt"),
    ("'ow's'at", "ow's'at", "'ows'at", "'ow'sat"),
    ("shan't", "shant"),
    ("she'd've", "shed've", "she'dve"),
    ("she's", "she's"),
    ("should've", "shouldve"),
    ("shouldn't", "shouldnt"),
    ("shouldn't've", "shouldnt've", "shouldn'tve"),
    ("somebodyd", "somebody'd"),
    ("somebody'd've", "somebodyd've", "somebody'dve"),
    ("somebody'll", "somebodyll"),
    ("somebody's", "somebodys"),
    ("someone'd", "someoned"),
    ("someone'd've", "someoned've", "someone'dve"),
    ("someone'll", "someonell"),
    ("someone's", "someones"),
    ("something'd", "somethingd"),
    ("something'd've", "somethingd've", "something'dve"),
    ("something'll", "somethingll"),
    ("that's", "thats"),
    ("there'd", "thered"),
    ("there'd've", "thered've", "there'dve"),
    ("there're", "therere"),
    ("there's", "theres"),
    ("they'd", "theyd"),
    ("they'd've", "theyd've", "they'dve"),
    ("they'll", "theyll"),
    ("they're", "theyre"),
    ("they've", "theyve"),
    ("'twas", "twas"),
    ("wasn't", "wasnt"),
    ("we'd've", "wed've", "we'dve"),
    ("we've", "weve"),
    ("weren't", "werent"),
    ("what'll", "whatll"),
    ("what're", "whatre"),
    ("what's", "whats"),
    ("what've", "whatve"),
    ("when's", "whens"),
    ("where'd", "whered"),
    ("where's", "wheres"),
    ("where've", "whereve"),
    ("who'd", "whod"),
    ("who'd've", "whod've", "who'dve"),
    ("who'll", "wholl"),
    ("who's", "whos"),
    ("who've", "whove"),
    ("why'll", "whyll"),
    ("why're", "whyre"),
    ("why's", "whys"),
    ("won't", "wont"),
    ("would've", "wouldve"),
    ("wouldn't", "wouldnt"),
    ("wouldn't've", "wouldnt've", "wouldn'tve"),
    ("y'all", "yall"),
    ("y'all'll", "yall'll", "y'allll"),
    ("y'all'd've", "yall'd've", "y'alld've", "y'all'dve"),
    ("you'd", "youd"),
    ("you'd've", "youd've", "you'dve"),
    ("you'll", "youll"),
    ("you're", "youre"),
    ("you've", "youve"),
]
REF_CONTRACTIONS = {spelling: group[0] for group in REF_CONTRACTION_GROUPS for spelling in group[1:]}


def _ref_clean(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


def _ref_punctuation(text: str) -> str:
    digit_comma_digit = False
    for i in range(1, len(text) - 1):
        if text[i] == "," and text[i - 1].isdecimal() and text[i + 1].isdecimal():
            digit_comma_digit = True
    out = text
    for p in REF_PUNCT:
        touches_space = (p + " ") in text or (" " + p) in text
        out = out.replace(p, "" if (touches_space or digit_comma_digit) else " ")
    kept = []
    removed = 0
    for i, ch in enumerate(out):
        followed_by_digit = i + 1 < len(out) and out[i + 1].isdecimal()
        if ch == "." and not followed_by_digit and removed < 32:
            removed += 1
            continue
        kept.append(ch)
    return "".join(kept)


def _ref_digits_articles(text: str) -> str:
    words = []
    for word in text.lower().split():
        if word in REF_NUMBERS:
            word = REF_NUMBERS[word]
        if word in REF_ARTICLES:
            continue
        words.append(word)
    return " ".join(REF_CONTRACTIONS.get(w, w) for w in words)


def reference_normalize(text: str) -> str:
    return _ref_digits_articles(_ref_punctuation(_ref_clean(text)))


def reference_vqa_accuracy(prediction: str, answers: list[str]) -> float:
    """Mean over the n-choose-(n-1) subsets of min(1, matches / 3), in exact arithmetic."""
    pred = _ref_clean(prediction)
    gold = [_ref_clean(a) for a in answers]
    if len(set(gold)) > 1:
        pred = _ref_digits_articles(_ref_punctuation(pred))
        gold = [_ref_digits_articles(_ref_punctuation(g)) for g in gold]
    n = len(gold)
    subsets = list(combinations(range(n), n - 1))
    total = Fraction(0)
    for subset in subsets:
        matches = sum(1 for j in subset if gold[j] == pred)
        total += min(Fraction(1), Fraction(matches, 3))
    return float(total / len(subsets))


# ---------------------------------------------------------------------------------------------
# Generated prediction / answer sets
# ---------------------------------------------------------------------------------------------

VOCAB = [
    "yes", "Yes", "yes.", "YES!", " yes\n", "no", "No.", "2", "two", "Two", "TWO.", "10", "ten", "none",
    "0", "zero", "3.5", "3,5", "3 .5", "1,000", "1000", "1 000", "t-shirt", "t shirt", "tshirt",
    "the cat", "a cat", "cat", "cats", "Cat.", "an apple", "apple", "dont", "don't", "do not",
    "youd've", "you'd've", "im", "Im", "I'm", "(yes)", "yes (maybe)", "red/blue", "red blue",
    "red, blue", "red,blue", "e-mail", "email", "a.m.", "am", "U.S.A.", "usa", "12:30", "12 30",
    "what?", "what", "٣", "٣.٥", "3", "rock & roll", "rock and roll", "", " ", "..", "well...done",
    "5.", "5", "$5", "5$", "left-hand side", "left hand side", "x" + "." * 40, "x", "#1", "1",
    "ok!", "ok", "tab\tyes", "tab yes", "oclock", "o'clock", "it's", "its", "a", "the", "an",
]  # fmt: skip


def generated_sets(n: int, seed: int) -> list[tuple[str, list[str]]]:
    rng = random.Random(seed)
    sets = []
    for _ in range(n):
        pool = rng.sample(VOCAB, rng.randint(1, 4))
        size = 10 if rng.random() < 0.8 else rng.randint(1, 12)
        if rng.random() < 0.15:
            answers = [pool[0]] * size  # identical answers: the un-normalised branch
        else:
            answers = [rng.choice(pool) for _ in range(size)]
        prediction = rng.choice(pool) if rng.random() < 0.7 else rng.choice(VOCAB)
        sets.append((prediction, answers))
    return sets


def test_matches_independent_reference_on_generated_sets() -> None:
    sets = generated_sets(3000, seed=1)
    mismatches = [
        (p, a, vqa_accuracy(p, a), reference_vqa_accuracy(p, a))
        for p, a in sets
        if vqa_accuracy(p, a) != reference_vqa_accuracy(p, a)
    ]
    assert not mismatches, mismatches[:5]
    scores = {vqa_accuracy(p, a) for p, a in sets}
    assert {0.0, 1.0, 0.3, 0.6, 0.9} <= scores  # the generator reaches every regime


def test_normalisation_matches_reference_on_vocabulary() -> None:
    rng = random.Random(3)
    texts = VOCAB + [" ".join(rng.sample(VOCAB, 3)) for _ in range(500)]
    assert [normalize_vqa_answer(t) for t in texts] == [reference_normalize(t) for t in texts]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Two dogs!", "2 dogs"),
        ("3.5", "3.5"),
        ("1,000", "1000"),
        ("hello, world", "hello world"),  # comma next to a space: deleted
        ("hello,world", "hello world"),  # glued comma: replaced by a space
        ("1,000 (approx)", "1000 approx"),  # digit,digit anywhere: all punctuation deleted
        ("yes.", "yes"),
        ("3.", "3"),
        ("a.m.", "am"),
        ("U.S.A.", "usa"),
        ("3.5.6", "3.5.6"),
        ("t-shirt", "t shirt"),
        ("dont", "don't"),
        ("youd've", "you'd've"),
        ("Im", "im"),  # the map's capitalised keys never match after lower-casing
        ("The Cat", "cat"),
        ("an apple a day", "apple day"),
        ("None", "0"),
        ("ten", "10"),
        ("eleven", "eleven"),
        ("12:30", "12:30"),  # ':' is not in the official punctuation list
        ("it's", "it's"),
        ("what?", "what"),
        ("  line\nbreak\ttab ", "line break tab"),
        ("x" + "." * 40, "x" + "." * 8),  # at most 32 periods removed (official count=re.UNICODE)
        ("", ""),
    ],
)
def test_normalize_vqa_answer(text: str, expected: str) -> None:
    assert normalize_vqa_answer(text) == expected


@pytest.mark.parametrize(
    ("prediction", "answers", "expected"),
    [
        ("yes", ["yes"] * 10, 1.0),
        ("Yes", ["yes"] * 10, 0.0),  # identical gold answers: no normalisation at all
        ("yes.", ["yes"] * 10, 0.0),
        (" yes\n", ["yes"] * 10, 1.0),  # ...except newline/tab -> space and strip
        ("Yes", ["yes"] * 9 + ["yeah"], 1.0),  # answers differ: everything normalised
        ("two", ["2"] * 3 + ["two"] * 7, 1.0),
        ("red", ["red"] * 1 + ["blue"] * 9, 0.3),
        ("red", ["red"] * 2 + ["blue"] * 8, 0.6),
        ("red", ["red"] * 3 + ["blue"] * 7, 0.9),
        ("red", ["red"] * 4 + ["blue"] * 6, 1.0),
        ("green", ["red"] * 4 + ["blue"] * 6, 0.0),
        ("dont", ["don't"] * 5 + ["dont"] * 5, 1.0),
        ("a cat", ["the cat"] * 4 + ["dog"] * 6, 1.0),
        ("1000", ["1,000"] * 3 + ["thousand"] * 7, 0.9),
        ("3.5", ["3.5"] * 3 + ["3,5"] * 7, 0.9),
        ("cat", ["cat", "cat", "dog"], 4 / 9),  # fewer than 10 answers
        ("cat", ["cat"], 0.0),  # one answer: no "other" answers to match
        ("", ["", "x"], 1 / 6),  # the "x" answer sees one matching other answer
    ],
)
def test_vqa_accuracy_hand_computed(prediction: str, answers: list[str], expected: float) -> None:
    assert vqa_accuracy(prediction, answers) == pytest.approx(expected, abs=1e-15)
    assert reference_vqa_accuracy(prediction, answers) == pytest.approx(expected, abs=1e-15)


def test_empty_answers_raise() -> None:
    with pytest.raises(ValueError):
        vqa_accuracy("yes", [])
    with pytest.raises(TypeError):
        vqa_accuracy("yes", "yes")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# TextVQA (mmf TextVQAAccuracyEvaluator / EvalAIAnswerProcessor): independent reference
# ---------------------------------------------------------------------------------------------


def reference_textvqa_normalize(text: str) -> str:
    """The TextVQA evaluator's processor, step by step: lower, drop ',' and '?', "'s" -> " 's",
    strip, then the VQA punctuation / digit / article / contraction steps."""
    chars = []
    for ch in text.lower():
        if ch in ",?":
            continue
        chars.append(ch)
    text = "".join(chars).replace("'s", " 's").strip()
    return _ref_digits_articles(_ref_punctuation(_ref_clean(text)))


def reference_textvqa_accuracy(prediction: str, answers: list[str]) -> float:
    """Per unique normalised answer: the literal mean over the 10 leave-one-out subsets; the
    prediction scores its answer's value (0 when it is none of them)."""
    gold = [reference_textvqa_normalize(a) for a in answers]
    pred = reference_textvqa_normalize(prediction)
    table = {}
    for unique in set(gold):
        accs = []
        for i in range(len(gold)):
            others = [g for j, g in enumerate(gold) if j != i]
            accs.append(min(Fraction(1), Fraction(others.count(unique), 3)))
        table[unique] = sum(accs, Fraction(0)) / len(accs)
    return float(table.get(pred, Fraction(0)))


def test_textvqa_matches_independent_reference_on_generated_sets() -> None:
    sets = generated_sets(3000, seed=5)
    sets += [(p.upper(), a) for p, a in sets[:300]]
    mismatches = [
        (p, a, textvqa_accuracy(p, a), reference_textvqa_accuracy(p, a))
        for p, a in sets
        if textvqa_accuracy(p, a) != reference_textvqa_accuracy(p, a)
    ]
    assert not mismatches, mismatches[:5]
    # the two rules really differ on this data (identical answers, commas, question marks)
    assert any(textvqa_accuracy(p, a) != vqa_accuracy(p, a) for p, a in sets)


def test_textvqa_normalisation_matches_reference() -> None:
    rng = random.Random(7)
    texts = VOCAB + ["McDonald's", "what's up?", "1,000,000", "Coca-Cola"]
    texts += [" ".join(rng.sample(VOCAB, 3)) for _ in range(500)]
    assert [normalize_textvqa_answer(t) for t in texts] == [reference_textvqa_normalize(t) for t in texts]


@pytest.mark.parametrize(
    ("prediction", "answers", "expected"),
    [
        ("coca-cola", ["Coca-Cola"] * 10, 1.0),  # the case: vqaEval.py gives 0
        ("Yes", ["yes"] * 10, 1.0),
        ("yes.", ["yes"] * 10, 1.0),
        ("what", ["what?"] * 10, 1.0),  # '?' deleted before anything else
        ("1000", ["1,000"] * 3 + ["thousand"] * 7, 0.9),
        ("red,blue", ["redblue"] * 10, 1.0),  # glued comma deleted, not replaced by a space
        ("mcdonald's", ["McDonald's"] * 4 + ["x"] * 6, 1.0),
        ("red", ["red"] * 2 + ["blue"] * 8, 0.6),
        ("green", ["red"] * 4 + ["blue"] * 6, 0.0),
    ],
)
def test_textvqa_accuracy_hand_computed(prediction: str, answers: list[str], expected: float) -> None:
    assert textvqa_accuracy(prediction, answers) == pytest.approx(expected, abs=1e-15)
    assert reference_textvqa_accuracy(prediction, answers) == pytest.approx(expected, abs=1e-15)


def test_textvqa_vs_vqa_on_the_identical_answers_case() -> None:
    assert vqa_accuracy("coca-cola", ["Coca-Cola"] * 10) == 0.0
    assert textvqa_accuracy("coca-cola", ["Coca-Cola"] * 10) == 1.0


def test_textvqa_empty_answers_raise() -> None:
    with pytest.raises(ValueError):
        textvqa_accuracy("yes", [])
    with pytest.raises(TypeError):
        textvqa_accuracy("yes", "yes")  # type: ignore[arg-type]

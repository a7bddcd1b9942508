"""Deterministic option-letter extraction for multiple-choice answers.

Used by RealWorldQA, Video-MME, MVBench, AI2D and any MCQ task.  Never random, never "the first
capital letter anywhere" (VLMEvalKit's fallback, which reads "Based on..." as ``B``).  The rules
are versioned: tasks record :data:`EXTRACTOR_VERSION` next to their accuracy, and any change of
behaviour bumps it.

Rules (``choice-v2``), tried in this order; the first rule that decides wins.  An answer that
names two different options (``"(D) or (A)"``, ``"A rather than C"``) is unparsed (``None``), never
read as the first (or last) of them.

0. Preparation: Unicode NFKC (full-width ``Ｂ``/``（``/``：`` become ASCII), markdown ``*`` and
   backticks removed, whitespace stripped.  Empty text -> ``None``.
1. **Whole answer**: the text is a single valid letter, optionally wrapped in brackets, quotes or
   punctuation (``"B"``, ``"b"``, ``"(B)"``, ``"C."``, ``"[d]"``) -> that letter, any case.
2. **Answer cue**: ``answer`` / ``final answer`` / ``correct answer`` / ``correct option`` /
   ``best option`` / ``答案``, optional fillers (``is``, ``would be``, ``:``, ``=``, ``option``,
   ``choice``, ``letter``, ``是``/``为``...), then a letter: bracketed ``(X)``/``[X]`` (any case),
   a bare upper-case letter, or a bare lower-case letter only when it is followed by punctuation
   or the end of the text (``"Answer: c."`` -> ``C``; ``"the answer is a cat"`` -> no).  A cue
   followed by an alternative (``"answer is A or B"``) is ignored as ambiguous.  If several cues
   name letters, the **last** one wins (the model's final statement).
3. **Leading marker**: the text starts with ``(X)``, ``[X]``, ``X.``, ``X:``, ``X)`` (any case,
   followed by whitespace or the end) or ``X -`` -> ``X`` (``"(B) a cat"``, ``"B. a cat"``) —
   unless an alternative follows the marker (``"(D) or (A)"``, ``"B/C"``) or the rest of the answer
   names another option in brackets (``"(B) a cat, (C) a dog"``): then the answer names two
   options and the later rules see both (``None``).
4. **Option cue**: ``option X`` / ``choice X`` (upper-case or bracketed letter); if all of them
   name the same letter -> that letter.
5. **Stand-alone letters**: valid letters standing alone as a token (bare upper-case, or bracketed
   in any case); not inside words, abbreviations (``U.S.``), contractions (``I'm``, ``A's``) or
   hyphenations (``T-shirt``).  Upper-case ``A`` and ``I`` followed by a lower-case word are
   English words ("A cat...", "I think...") unless that word is a connective such as ``or``,
   ``and``, ``is``, ``because``, ``rather``, ``not`` ("A or B", "A is correct", "A rather than
   C" — the last names two options, so ``None``).  The same holds when the next word is written in
   capitals (``"A BUS"``, ``"I THINK"``: an all-caps answer, not option A) unless it is a
   connective (``"A OR B"``).  Lower-case bare letters in running text are never choices.  Exactly one distinct letter -> it; two or more -> ``None``
   (ambiguous: "I think it is A or B").
6. **Option text** (only when ``options`` is given and rules 1-5 found no letter at all): the
   normalised text (lower-case, collapsed whitespace, trailing ``.``/``!`` removed) equals an
   option's text -> that letter; otherwise the options whose text occurs in the answer as whole
   words, dropping any whose text is part of another matching option's text; exactly one left ->
   it.
7. Otherwise ``None`` (the task counts it as wrong and as "unparsed").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

__all__ = ["extract_choice", "EXTRACTOR_VERSION"]

EXTRACTOR_VERSION = "choice-v2"
"""Version of the extraction rules; recorded by tasks in their results."""

# Words that may follow an upper-case "A"/"I" used as a choice letter ("A or B", "A is right").
_CONNECTIVES = frozenset(
    "or and nor is was are seems appears would should could might must will because since as so "
    "but vs versus matches fits describes best correctly accurately corresponds then which rather "
    "instead not than over".split()
)
_WORD_AFTER = re.compile(r"\s+([a-z][a-z'’]*|[A-Z][A-Z'’]+(?![a-z]))")
_STRIP_CHARS = " \t\r\n\"'“”‘’()[]{}<>.,:;!?-"
_CUE = (
    r"(?<![A-Za-z])(?:final\s+answer|correct\s+answer|best\s+answer|answer|correct\s+option|"
    r"correct\s+choice|best\s+option|best\s+choice|答案)"
)
_FILLER = (
    r"(?:\s*(?:[:=]|is|would\s+be|should\s+be|will\s+be|must\s+be|be|probably|likely|"
    r"definitely|clearly|therefore|option|choice|letter|是|为|為|选|選)(?![A-Za-z]))*"
)


def _letter_class(letters: str) -> str:
    return "[" + "".join(re.escape(c) + re.escape(c.lower()) for c in letters) + "]"


class _Patterns:
    """Regexes for one set of valid letters (cached per letter set)."""

    def __init__(self, letters: str) -> None:
        x = _letter_class(letters)
        form = rf"(?:[(\[]\s*(?P<br>{x})\s*[)\]]|(?P<bare>{x})(?![A-Za-z0-9]))"
        self.whole = re.compile(rf"^[\s\W_]*({x})[\s\W_]*$")
        self.cue = re.compile(rf"{_CUE}{_FILLER}\s*{form}", re.IGNORECASE)
        self.leading = re.compile(
            rf"^(?:[(\[]\s*(?P<a>{x})\s*[)\]]|(?P<b>{x})\s*[.:)\]](?=\s|$)|(?P<c>{x})\s+[-–—]\s)"
        )
        self.option_cue = re.compile(rf"(?<![A-Za-z])(?:option|choice)\s*[:#]?\s*{form}", re.IGNORECASE)
        self.token = re.compile(
            rf"[(\[]\s*(?P<br>{x})\s*[)\]]"
            rf"|(?<![A-Za-z0-9\-])(?<![A-Za-z][.'’])(?P<bare>{x})"
            rf"(?![A-Za-z0-9\-])(?![.'’][A-Za-z])"
        )
        upper = "[" + re.escape(letters) + "]"
        self.alternative = re.compile(
            rf"\s*(?:or|and|/|,|&)\s*(?:[(\[]\s*{x}\s*[)\]]|{upper}(?![A-Za-z0-9]))"
        )


_PATTERN_CACHE: dict[str, _Patterns] = {}


def _patterns(letters: str) -> _Patterns:
    patterns = _PATTERN_CACHE.get(letters)
    if patterns is None:
        patterns = _PATTERN_CACHE[letters] = _Patterns(letters)
    return patterns


def _is_word_use(text: str, letter: str, end: int) -> bool:
    """True if a bare letter is the English word "a"/"A"/"I" rather than a choice."""
    if letter.islower():
        return True
    if letter not in "AI":
        return False
    following = _WORD_AFTER.match(text, end)
    return following is not None and following.group(1).lower() not in _CONNECTIVES


def _lower_is_terminal(text: str, end: int) -> bool:
    """A lower-case letter after an answer cue counts only before punctuation or the end."""
    rest = text[end:]
    return rest.strip() == "" or rest[0] in ".,;:!?)]}\"'’”"


def _normalize_option_text(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".! ")


def _match_option_text(text: str, options: Mapping[str, str], canon: dict[str, str]) -> str | None:
    answer = _normalize_option_text(text)
    found: dict[str, str] = {}
    for key, value in options.items():
        letter = canon.get(str(key).upper())
        option = _normalize_option_text(str(value))
        if letter is None or not option:
            continue
        if answer == option:
            return letter
        if re.search(rf"(?<!\w){re.escape(option)}(?!\w)", answer):
            found[letter] = option
    kept = [
        letter
        for letter, option in found.items()
        if not any(option != other and option in other for other in found.values())
    ]
    return kept[0] if len(set(kept)) == 1 else None


def extract_choice(
    text: str, choices: Sequence[str], *, options: Mapping[str, str] | None = None
) -> str | None:
    """Extract the chosen option letter from a model's answer, deterministically.

    Args:
        text: the model's answer.
        choices: the valid option letters, e.g. ``["A", "B", "C", "D"]`` (single ASCII letters).
        options: optional ``{letter: option text}``; used only when no letter is found at all
            (rule 6 of the module docstring).

    Returns:
        the letter as spelled in ``choices``, or ``None`` when no letter can be extracted or the
        answer is ambiguous.  See the module docstring for the full, versioned rule set
        (:data:`EXTRACTOR_VERSION`).

    Raises:
        ValueError: ``choices`` is empty or holds something other than single ASCII letters.

    Examples:
        >>> extract_choice("Based on the video, the answer is C", ["A", "B", "C", "D"])
        'C'
        >>> extract_choice("A cat is on the table", ["A", "B", "C", "D"]) is None
        True
        >>> extract_choice("It's a dog.", "ABCD", options={"A": "cat", "B": "dog"})
        'B'
    """
    canon: dict[str, str] = {}
    for choice in choices:
        if not (isinstance(choice, str) and len(choice) == 1 and choice.isascii() and choice.isalpha()):
            raise ValueError(f"extract_choice(): choices must be single ASCII letters, got {choice!r}")
        canon[choice.upper()] = choice
    if not canon:
        raise ValueError("extract_choice(): no choices given")
    pat = _patterns("".join(sorted(canon)))

    text = unicodedata.normalize("NFKC", text).replace("*", "").replace("`", "").strip()
    if not text:
        return None

    # 1. The whole answer is one letter.
    whole = pat.whole.match(text)
    if whole:
        return canon[whole.group(1).upper()]

    # 2. Explicit answer cue; the last usable one wins.
    cue_letter = None
    for m in pat.cue.finditer(text):
        if m.group("br"):
            letter, end = m.group("br"), m.end()
        else:
            letter, end = m.group("bare"), m.end("bare")
            if letter.islower() and not _lower_is_terminal(text, end):
                continue
            if letter.isupper() and _is_word_use(text, letter, end):
                continue
        if pat.alternative.match(text, m.end()):
            continue
        cue_letter = letter
    if cue_letter is not None:
        return canon[cue_letter.upper()]

    # 3. Leading option marker (unless the answer goes on to name another option).
    lead = pat.leading.match(text)
    if lead:
        letter = (lead.group("a") or lead.group("b") or lead.group("c")).upper()
        others = {m.group("br").upper() for m in pat.token.finditer(text, lead.end()) if m.group("br")}
        if not pat.alternative.match(text, lead.end()) and not others - {letter}:
            return canon[letter]

    # 4. "option X" / "choice X".
    named = set()
    for m in pat.option_cue.finditer(text):
        letter = m.group("br") or m.group("bare")
        if m.group("bare") and letter.islower():
            continue
        named.add(letter.upper())
    if len(named) == 1:
        return canon[named.pop()]

    # 5. Stand-alone letters.
    seen = set()
    for m in pat.token.finditer(text):
        if m.group("br"):
            seen.add(m.group("br").upper())
            continue
        letter = m.group("bare")
        if not _is_word_use(text, letter, m.end()):
            seen.add(letter)
    if len(seen) == 1:
        return canon[seen.pop()]
    if seen:
        return None

    # 6. Option text.
    if options:
        return _match_option_text(text, options, canon)
    return None

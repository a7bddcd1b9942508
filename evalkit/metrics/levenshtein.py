"""ANLS (Average Normalized Levenshtein Similarity), the DocVQA / InfographicVQA metric, in its two
published forms (``variant=``).

Both normalise the prediction and each gold answer with ``" ".join(s.strip().lower().split())``
(lower-case, strip, collapse every run of Unicode whitespace to one space) and measure the
Levenshtein distance ``d(a, p)`` between the *normalised* strings.  They differ in the length that
divides it and at the threshold:

* ``"rrc"`` (default) — the evaluation script of the DocVQA / InfographicVQA leaderboard (RRC /
  docvqa.org ``infographicsvqa_eval.py``; Qwen-VL's ``eval_mm``, lmms-eval and VLMEvalKit follow
  it), which produced the published leaderboard and val numbers:
  ``NL = d(a, p) / max(len(raw_a.upper()), len(raw_p.upper()))`` with the lengths of the
  **un-normalised** strings (so padding ``"  1998 "`` lowers the score; ``NL`` can exceed 1),
  ``0`` when both raw strings are empty; per question ``s = 1 - min NL``, set to 0 only when
  ``s < threshold`` (``NL = 0.5`` exactly keeps ``0.5``).
* ``"paper"`` — the definition as written in the ST-VQA / DocVQA papers and implemented by the
  PyPI package ``anls`` (bit-identical to ``anls.anls_score``):
  ``NL = d(a, p) / max(len(a.upper()), len(p.upper()))`` on the **normalised** strings, ``0`` when
  both are empty; per question ``s = max over answers of (1 - NL if NL < threshold else 0)``
  (``NL = 0.5`` exactly scores 0).

The threshold is compared with the similarity ``1 - NL`` in ``rrc`` and with the distance ``NL`` in
``paper``: τ = 0.5 is the same cut-off in both (up to the boundary), other values are not
(``rrc`` 0.8 is as strict as ``paper`` 0.2).  Both use *upper-cased* lengths (they differ from the plain lengths for characters such as ``ß`` ->
``SS``).  ANLS = mean of ``s`` over questions (done by the task layer).  The Levenshtein distance is
computed by :mod:`rapidfuzz` (C++), on Unicode code points, exactly as the scripts' pure-Python
dynamic programmes do, with the same float arithmetic (``dist / length`` then ``1 - nl``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rapidfuzz.distance import Levenshtein

__all__ = ["anls", "anls_batch", "ANLS_VARIANTS"]

ANLS_VARIANTS = ("rrc", "paper")
"""The ANLS definitions :func:`anls` implements (see the module docstring)."""

_distance = Levenshtein.distance


def _normalize(text: str) -> str:
    # Same order of operations as the official script: strip, lower, split on whitespace, join.
    return " ".join(text.strip().lower().split())


def _upper_len(text: str) -> int:
    # ASCII strings keep their length when upper-cased; skip the allocation for them.
    return len(text) if text.isascii() else len(text.upper())


def _similarity(pred: str, pred_len: int, gold: str, threshold: float) -> float:
    """``1 - NL`` if ``NL < threshold`` else ``0`` for normalised strings."""
    length = max(pred_len, _upper_len(gold))
    if length == 0:
        nl = 0.0
    else:
        # Early exit: a distance above ``cutoff`` can only give NL > threshold, i.e. a score of 0.
        # rapidfuzz returns ``cutoff + 1`` in that case; the exact distance is returned otherwise.
        cutoff = length if threshold >= 1.0 else max(0, math.ceil(threshold * length) + 1)
        dist = _distance(pred, gold, score_cutoff=cutoff)
        if dist > cutoff:
            return 0.0
        nl = dist / length
    return 1 - nl if nl < threshold else 0.0


def _rrc_similarity(pred: str, raw_pred_len: int, gold_raw: str, threshold: float) -> float:
    """``1 - NL`` (RRC: raw lengths) if ``1 - NL >= threshold`` else 0."""
    length = max(raw_pred_len, _upper_len(gold_raw))
    if length == 0:
        return 1.0 if threshold <= 1.0 else 0.0
    gold = _normalize(gold_raw)
    if threshold > 0.0:
        # a distance above the cutoff gives 1 - NL < threshold (score 0) for sure
        cutoff = max(0, math.ceil((1.0 - threshold) * length) + 1)
        dist = _distance(pred, gold, score_cutoff=cutoff)
        if dist > cutoff:
            return 0.0
    else:
        dist = _distance(pred, gold)
    score = 1 - dist / length
    return 0.0 if score < threshold else score


def anls(prediction: str, answers: Sequence[str], threshold: float = 0.5, variant: str = "rrc") -> float:
    """Per-question ANLS score of ``prediction`` against the gold ``answers``.

    Args:
        prediction: the model's answer.
        answers: the gold answers (any number >= 1).
        threshold: τ (official 0.5).
        variant: ``"rrc"`` (default; the leaderboard's evaluation script: lengths of the raw strings,
            a score ``1 - NL >= τ`` is kept) or ``"paper"`` (the PyPI ``anls`` package: lengths of
            the normalised strings, a distance ``NL >= τ`` scores 0).  See the module docstring.

    Returns:
        ``rrc``: ``1 - min NL`` unless that is below ``threshold`` (then 0); ``paper``:
        ``max over answers of (1 - NL if NL < threshold else 0)``; in ``[0, 1]``.

    Raises:
        ValueError: ``answers`` is empty (the official script crashes on ``max([])``; evalkit's
            task layer turns this into a per-sample error record).
        TypeError: ``answers`` is a single string instead of a sequence of strings.
        ValueError: unknown ``variant``.

    Examples:
        >>> anls("1998", ["1998"])
        1.0
        >>> anls("Strasse", ["straße"])  # 2 edits / max(len("STRASSE"), len("STRASSE")) = 2/7
        0.7142857142857143
        >>> anls("ab", ["abcd"]), anls("ab", ["abcd"], variant="paper")  # NL = 0.5 exactly
        (0.5, 0.0)
        >>> anls(" 1998 ", ["1998"]), anls(" 1998 ", ["1998"], variant="paper")  # raw length 6
        (1.0, 1.0)
        >>> anls(" 199 ", ["1998"])  # 1 edit / raw length 5
        0.8
    """
    if isinstance(answers, str):
        raise TypeError("anls(): `answers` must be a sequence of strings, not a single string")
    if len(answers) == 0:
        raise ValueError("anls(): no gold answers given (empty `answers`)")
    if variant == "rrc":
        pred = _normalize(prediction)
        raw_len = _upper_len(prediction)
        return max(_rrc_similarity(pred, raw_len, answer, threshold) for answer in answers)
    if variant != "paper":
        raise ValueError(f"anls(): unknown variant {variant!r}; expected one of {', '.join(ANLS_VARIANTS)}")
    pred = _normalize(prediction)
    pred_len = _upper_len(pred)
    best = 0.0
    for answer in answers:
        score = _similarity(pred, pred_len, _normalize(answer), threshold)
        if score > best:
            best = score
    return best


def anls_batch(
    predictions: Sequence[str],
    answers_list: Sequence[Sequence[str]],
    threshold: float = 0.5,
    variant: str = "rrc",
) -> list[float]:
    """:func:`anls` for many questions at once (``predictions[i]`` against ``answers_list[i]``).

    Raises:
        ValueError: the two sequences differ in length, or one question has no gold answers.
    """
    if len(predictions) != len(answers_list):
        raise ValueError(f"anls_batch(): {len(predictions)} predictions but {len(answers_list)} answer lists")
    return [anls(p, a, threshold, variant) for p, a in zip(predictions, answers_list, strict=True)]

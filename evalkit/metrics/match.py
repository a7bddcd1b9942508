"""String-matching metrics: exact match (GQA, OCR-VQA, AI2D, RealWorldQA free-form), ChartQA's
relaxed accuracy, and MTVQA's substring match."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "exact_match",
    "normalize_exact_match",
    "relaxed_accuracy",
    "relaxed_accuracy_qwen_vl",
    "mtvqa_match",
]


def _as_targets(targets: str | Sequence[str], func: str, name: str = "targets") -> Sequence[str]:
    if isinstance(targets, str):
        return [targets]
    if len(targets) == 0:
        raise ValueError(f"{func}(): no gold answers given (empty `{name}`)")
    return targets


def normalize_exact_match(text: str) -> str:
    """Normalisation used by :func:`exact_match`.

    Rule (in this order): collapse every run of Unicode whitespace to one space and strip the ends;
    lower-case (``str.lower``); remove *one* trailing period, then strip again.

    Examples:
        >>> normalize_exact_match("  The  Eiffel\\tTower. ")
        'the eiffel tower'
        >>> normalize_exact_match("U.S.")
        'u.s'
    """
    text = " ".join(text.split()).lower()
    if text.endswith("."):
        text = text[:-1].rstrip()
    return text


def exact_match(prediction: str, targets: str | Sequence[str]) -> float:
    """1.0 if the normalised prediction equals a normalised target, else 0.0 (max over targets).

    Normalisation: :func:`normalize_exact_match` (whitespace collapsed, stripped, lower-cased, one
    trailing period removed) on both sides.  This is the protocol's rule for GQA, OCR-VQA and
    AI2D ("exact match after normalisation") and for RealWorldQA's free-form answers
    ("case-insensitive exact match after stripping a trailing period").

    Raises:
        ValueError: ``targets`` is an empty sequence (a single string counts as one target).
    """
    targets = _as_targets(targets, "exact_match")
    pred = normalize_exact_match(prediction)
    return 1.0 if any(pred == normalize_exact_match(t) for t in targets) else 0.0


def _chartqa_float(text: str) -> float | None:
    # ChartQA reference (pix2struct / Qwen-VL `relaxed_correctness`): a trailing "%" (all trailing
    # "%" characters) divides by 100; otherwise Python's float().  Nothing else: "1,000" is not
    # a number for it, "$5" is not either; float() itself accepts " 12 ", "1e3", "1_000", "inf".
    try:
        if text.endswith("%"):
            return float(text.rstrip("%")) / 100.0
        return float(text)
    except ValueError:
        return None


def relaxed_accuracy(prediction: str, targets: str | Sequence[str], tolerance: float = 0.05) -> float:
    """ChartQA relaxed accuracy: 1.0 if the prediction matches one of the targets, else 0.0.

    Per target (the ChartQA reference ``relaxed_correctness`` of pix2struct, as lmms-eval calls
    it; Qwen-VL's ``evaluate_vqa.py`` uses the same function but passes the prediction as the target,
    see :func:`relaxed_accuracy_qwen_vl`):

    * prediction and target are stripped;
    * both are parsed as numbers: a trailing ``%`` means "divide by 100" (``"45%"`` -> 0.45, so
      ``"45%"`` does **not** match ``"45"``); otherwise Python ``float()``.  Thousands separators
      are **not** understood (``"1,000"`` is text, as in the reference);
    * if the prediction is a number and the target a *non-zero* number: correct iff
      ``|pred - target| / |target| <= tolerance``;
    * otherwise (either side not a number, or target zero): case-insensitive exact string match
      (so a target ``"0"`` needs the prediction ``"0"``; ``"0.0"`` does not match it).

    Returns:
        the max over targets (1.0 or 0.0).

    Raises:
        ValueError: ``targets`` is an empty sequence.

    Examples:
        >>> relaxed_accuracy("10.4", ["10"])
        1.0
        >>> relaxed_accuracy("Yes", ["yes"])
        1.0
        >>> relaxed_accuracy("1,000", ["1000"])
        0.0
    """
    targets = _as_targets(targets, "relaxed_accuracy")
    pred = prediction.strip()
    pred_float = _chartqa_float(pred)
    for target in targets:
        target = target.strip()
        target_float = _chartqa_float(target)
        if pred_float is not None and target_float:
            if abs(pred_float - target_float) / abs(target_float) <= tolerance:
                return 1.0
        elif pred.lower() == target.lower():
            return 1.0
    return 0.0


def relaxed_accuracy_qwen_vl(prediction: str, targets: str | Sequence[str], tolerance: float = 0.05) -> float:
    """ChartQA relaxed accuracy as Qwen-VL's ``eval_mm/evaluate_vqa.py`` computes it.

    That script calls ``relaxed_correctness(prediction.strip(), gold)``, i.e. with the arguments
    swapped: per gold answer (**not** stripped), if the gold answer parses as a number and the
    stripped prediction as a *non-zero* number, correct iff
    ``|gold - pred| / |pred| <= tolerance`` (tolerance relative to the prediction); otherwise
    case-insensitive exact match of the stripped prediction with the raw gold answer.  Numbers are
    parsed as in :func:`relaxed_accuracy` (trailing ``%`` = /100, else ``float()``).  Use it only to
    reproduce Qwen-VL's reported ChartQA numbers (``task.metric.variant=qwen_vl``).

    Examples:
        >>> relaxed_accuracy("95.2", ["100"]), relaxed_accuracy_qwen_vl("95.2", ["100"])
        (1.0, 0.0)
        >>> relaxed_accuracy("105.2", ["100"]), relaxed_accuracy_qwen_vl("105.2", ["100"])
        (0.0, 1.0)
        >>> relaxed_accuracy_qwen_vl("0", ["0.01"])  # prediction zero: exact match only
        0.0
    """
    targets = _as_targets(targets, "relaxed_accuracy_qwen_vl")
    pred = prediction.strip()
    pred_float = _chartqa_float(pred)
    for gold in targets:
        gold_float = _chartqa_float(gold)
        if gold_float is not None and pred_float:
            if abs(gold_float - pred_float) / abs(pred_float) <= tolerance:
                return 1.0
        elif pred.lower() == gold.lower():
            return 1.0
    return 0.0


def mtvqa_match(prediction: str, answer: str | Sequence[str]) -> float:
    """MTVQA's official score (``scripts/acc.py`` of bytedance/MTVQA): substring match.

    1.0 iff ``answer.strip().lower()`` is a substring of
    ``prediction.strip().lower().replace(".", "")``, else 0.0.  Periods are removed from the
    prediction only (an answer containing a period can never match); an empty answer always
    matches.  With several answers, the max over them (as the official script does for lists).

    Raises:
        ValueError: ``answer`` is an empty sequence.

    Examples:
        >>> mtvqa_match("Die Antwort ist Berlin.", "berlin")
        1.0
        >>> mtvqa_match("3.5 kg", "3.5")
        0.0
    """
    answers = _as_targets(answer, "mtvqa_match", "answer")
    pred = prediction.strip().lower().replace(".", "")
    return 1.0 if any(a.strip().lower() in pred for a in answers) else 0.0

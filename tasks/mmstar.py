"""MMStar (``mmstar``) and MMT-Bench (``mmt_bench``, ``mmt_bench_test``): single-image multiple choice.

**MMStar** (``Lin-Chen/MMStar``, split ``val``, 1,500 rows): ``index`` (int64), ``question`` (the
options are inside it: ``"...\\nOptions: A: ..., B: ..., C: ..., D: ..."``), ``image``, ``answer``
(a letter), ``category`` (the 6 core capabilities), ``l2_category`` (18 axes), ``meta_info``.
Scorer ``mmstar`` (default) is MMStar's own matching rule: after lower-casing, stripping and
turning newlines into spaces, the prediction is right when its first character is the gold letter,
or it starts with ``(`` followed by the letter, or with ``option `` / ``the answer is `` followed
by the letter; anything else (including an empty prediction) is wrong. Scorer ``extract_choice``
uses evalkit's versioned extractor with the options parsed from the question. Reported:
``accuracy`` (pooled over questions, as VLMEvalKit reports MMStar), ``accuracy_macro_l2`` (mean of
the per-``l2_category`` accuracies, lmms-eval's ``average``) and a breakdown per core capability
and per L2 axis.

**MMT-Bench** (``lmms-lab/MMT-Benchmark``, splits ``val`` with answers, ``test`` hidden): ``index``
(int32), ``question``, ``answer``, options in ``A``-``I`` (unused ones empty/null), ``image``,
``category``, ``l2-category``, ``split``. Accuracy with deterministic letter extraction over the
row's options (lmms-eval draws a random letter when it cannot parse; evalkit never does), broken
down by category and L2 category; ``test`` writes the submission table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from evalkit.plugins.mmbench import ChoiceColumnsTask, present_text
from evalkit.plugins.vqa import PromptedImageQATask

from evalkit.errors import InputError, UsageError
from evalkit.metrics import extract_choice
from evalkit.metrics.choice import EXTRACTOR_VERSION
from evalkit.tasks.base import MetricSpec
from evalkit.types import Sample

_MMSTAR_OPTION = re.compile(r"(?:^|[\s,])([A-F])\s*:\s*(.+?)(?=,\s*[A-F]\s*:|$)", re.DOTALL)


def mmstar_match(prediction: str, gold: str) -> float:
    """MMStar's official rule: 1.0 when the lower-cased, stripped prediction (newlines as spaces)
    starts with the gold letter, with ``(`` + letter, ``option `` + letter or ``the answer is `` +
    letter; otherwise (also for an empty prediction) 0.0."""
    answer = gold.lower().strip().replace("\n", " ")
    pred = (prediction or "").lower().strip().replace("\n", " ")
    if not pred or not answer:
        return 0.0
    candidates = [pred[:1]]
    if pred.startswith("("):
        candidates.append(pred[1:2])
    for prefix in ("option ", "the answer is "):
        if pred.startswith(prefix):
            candidates.append(pred[len(prefix) : len(prefix) + 1])
    return 1.0 if answer in candidates else 0.0


def mmstar_options(question: str) -> dict[str, str]:
    """The ``A: text, B: text`` options of an MMStar question (after its ``Options:`` marker)."""
    _, marker, tail = question.rpartition("Options:")
    if not marker:
        return {}
    out: dict[str, str] = {}
    for letter, text in _MMSTAR_OPTION.findall(tail.strip()):
        out.setdefault(letter, text.strip())
    return out


class MMStarTask(PromptedImageQATask):
    """MMStar val: accuracy (official first-letter rule by default), per core capability."""

    version = "1"
    id_column = "index"
    answer_column = "answer"
    metadata_columns = ("category", "l2_category")
    breakdown_keys = ("category", "l2_category")
    scorer = "exact_match"  # informational; score() applies the configured MMStar scorer
    metrics = {
        "accuracy": MetricSpec(score="accuracy"),
        "accuracy_macro_l2": MetricSpec(score="accuracy", kind="macro", group="l2_category"),
    }
    main_metric = "accuracy"
    scorers: ClassVar[Mapping[str, str]] = {
        "mmstar": "MMStar official: the prediction (lower-cased, stripped) starts with the gold letter, "
        "'(' + letter, 'option ' + letter or 'the answer is ' + letter",
        "extract_choice": "gold letter vs extract_choice(prediction, options parsed from the question)",
    }

    @property
    def variant(self) -> str:
        """``mmstar`` (official) or ``extract_choice``."""
        name = str(self.config.get("scorer", "mmstar"))
        if name not in self.scorers:
            raise UsageError(
                f"task {self.name}: scorer must be one of {', '.join(self.scorers)}, got {name!r}"
            )
        return name

    def _gold(self, sample: Sample) -> str:
        gold = present_text(sample.target)
        if gold is None:
            raise InputError("missing gold letter in 'answer'")
        return gold.strip().upper()

    def check_target(self, sample: Sample) -> list[str]:
        """One gold letter."""
        return [self._gold(sample)]

    def extract(self, sample: Sample, prediction: str) -> str | None:
        """The letter read by :func:`evalkit.metrics.extract_choice` (recorded for both scorers)."""
        options = mmstar_options(self.sample_question(sample) or "")
        letters = tuple(options) or ("A", "B", "C", "D")
        return extract_choice(prediction, letters, options=options or None)

    def score(self, sample: Sample, prediction: str) -> dict[str, float]:
        """``accuracy`` under the configured scorer."""
        try:
            gold = self._gold(sample)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        if self.variant == "mmstar":
            return {"accuracy": mmstar_match(prediction, gold)}
        return {"accuracy": 1.0 if self.extract(sample, prediction) == gold else 0.0}

    def record_extra(self, sample: Sample, prediction: str) -> dict[str, Any]:
        """``extracted``: the letter evalkit's extractor reads (informational under ``mmstar``)."""
        return {"extracted": self.extract(sample, prediction)}

    def protocol(self) -> dict[str, Any]:
        """Records the scorer variant."""
        out = super().protocol()
        out["scorer"] = self.variant
        out["metric"] = self.scorers[self.variant]
        out["extractor_version"] = EXTRACTOR_VERSION
        return out


class MMTBenchTask(ChoiceColumnsTask):
    """MMT-Bench val (accuracy per category) and test (submission table)."""

    version = "1"
    option_letters = "ABCDEFGHI"
    meta_columns = {"category": "category", "l2-category": "l2_category"}
    breakdown_keys = ("category", "l2_category")
    metrics = {"accuracy": MetricSpec(score="accuracy")}
    main_metric = "accuracy"


__all__ = ["MMStarTask", "MMTBenchTask", "mmstar_match", "mmstar_options"]

"""OCRBench (``echo840/OCRBench``, split ``test``, 1,000 questions): the official score out of 1000.

Columns: ``dataset`` (source dataset, e.g. ``IIIT5K``, ``HME100k``), ``question``,
``question_type`` (one of the ten categories below), ``answer`` (a list of accepted answers),
``image``.

Scoring (OCRBench's ``eval.py``; lmms-eval's ``ocrbench`` task): a question scores 1 when one of its
answers is a substring of the prediction, after

* ``HME100k`` (handwritten mathematical expressions): newlines turned into spaces, then every space
  removed, on both sides; case is kept;
* every other dataset: lower-cased, stripped, newlines turned into spaces.

The score is the number of correct questions (out of 1000 on the full benchmark); this task
reports ``score`` = the fraction correct (× ``paper_scale`` 1000 = the official score whenever all
1,000 questions are scored) and ``counts.correct``, with per-category breakdowns and
``points_<category>`` counts. "Text Recognition" is the sum of the first six categories.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evalkit.plugins.vqa import PromptedImageQATask

from evalkit.tasks.base import MetricSpec, TaskResult
from evalkit.types import Record, Sample

#: the ten OCRBench categories (``question_type`` values), in the official order
CATEGORIES: tuple[str, ...] = (
    "Regular Text Recognition",
    "Irregular Text Recognition",
    "Artistic Text Recognition",
    "Handwriting Recognition",
    "Digit String Recognition",
    "Non-Semantic Text Recognition",
    "Scene Text-centric VQA",
    "Doc-oriented VQA",
    "Key Information Extraction",
    "Handwritten Mathematical Expression Recognition",
)
TEXT_RECOGNITION: tuple[str, ...] = CATEGORIES[:6]
HME_DATASET = "HME100k"


def _hme_normalise(text: str) -> str:
    return text.strip().replace("\n", " ").replace(" ", "")


def _default_normalise(text: str) -> str:
    return text.lower().strip().replace("\n", " ")


def ocrbench_match(prediction: str, answers: Sequence[str], dataset: str | None) -> float:
    """1.0 when a normalised answer is a substring of the normalised prediction (HME100k: spaces
    removed, case kept; otherwise lower-cased), else 0.0."""
    norm = _hme_normalise if dataset == HME_DATASET else _default_normalise
    pred = norm(prediction if isinstance(prediction, str) else "")
    return 1.0 if any(norm(a) in pred for a in answers) else 0.0


class OCRBenchTask(PromptedImageQATask):
    """OCRBench: substring match per question (HME100k special case), score out of 1000."""

    version = "1"
    id_column = None
    answer_column = "answer"
    extra_columns = ("dataset", "question_type")
    breakdown_keys = ("category", "dataset")
    metrics = {"score": MetricSpec(score="ocrbench")}
    main_metric = "score"
    paper_scale = 1000.0
    scorer = "exact_match"

    def make_metadata(self, values: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        """``category`` (the question type) and the source ``dataset``."""
        meta = {}
        if values.get("question_type") is not None:
            meta["category"] = str(values["question_type"])
        if values.get("dataset") is not None:
            meta["dataset"] = str(values["dataset"])
        return meta

    def make_target(self, values: dict[str, Any]) -> Any:  # type: ignore[override]
        """The accepted answers (the hub stores a list; a lone string is one answer)."""
        answer = values.get(self.answer_column)
        return [answer] if isinstance(answer, str) else answer

    def score(self, sample: Sample, prediction: str) -> dict[str, float]:
        """OCRBench's substring rule (:func:`ocrbench_match`)."""
        answers = self.scored_answers(sample)
        return {"ocrbench": ocrbench_match(prediction, answers, sample.metadata.get("dataset"))}

    def counts(self, records: Sequence[Record]) -> dict[str, int]:
        """``correct`` (the official score on the scored questions) and ``points_<category>``."""
        scored = [r for r in records if r.error is None and "ocrbench" in r.scores]
        out = {"correct": int(sum(r.scores["ocrbench"] for r in scored))}
        for cat in CATEGORIES:
            out[f"points_{cat}"] = int(
                sum(r.scores["ocrbench"] for r in scored if r.metadata.get("category") == cat)
            )
        out["points_Text Recognition"] = sum(out[f"points_{c}"] for c in TEXT_RECOGNITION)
        return out

    def aggregate(self, records: Sequence[Record]) -> TaskResult:
        """The generic aggregate; a note says errors count as wrong in the official score."""
        result = super().aggregate(records)
        if result.n_errors:
            result.notes["score"] = (
                f"{result.n_errors} question(s) had errors and are excluded from `score`; the official "
                "count (counts.correct) treats them as wrong"
            )
        return result

    def protocol(self) -> dict[str, Any]:
        """The matching rule."""
        out = super().protocol()
        out["metric"] = (
            "OCRBench: an answer is a substring of the prediction (HME100k: newlines->spaces, spaces "
            "removed, case kept; others: lower, strip, newlines->spaces); score = fraction correct x 1000"
        )
        return out

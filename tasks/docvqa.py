"""DocVQA: document visual question answering, scored with ANLS (τ = 0.5).

Data: ``lmms-lab-encoder/DocVQA`` (formerly ``lmms-lab/DocVQA``) config ``DocVQA`` (columns
questionId, question, question_types, image, docId, ucsf_document_id, ucsf_document_page_no,
answers, data_split). The ``validation`` split is scored; ``test`` (answers hidden) writes the
official submission JSON ``[{"questionId": <int>, "answer": <str>}, ...]`` instead of a score, with
every answer stripped (the server's ANLS measures raw lengths, so padding would lower it).

Scorer: ``task.metric.variant=rrc`` (default; the leaderboard's evaluation script, comparable with
published val/test numbers) or ``paper`` (the PyPI ``anls`` package); see
:mod:`evalkit.metrics.levenshtein`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.metrics import anls
from evalkit.tasks.base import MetricSpec, write_submission_json
from evalkit.tasks.image_qa import ImageQATask, anls_description, anls_settings, strip_answer
from evalkit.types import Record, Sample, as_str_list


class DocVQATask(ImageQATask):
    """DocVQA validation (ANLS) / test (submission file)."""

    version = "2"
    metrics = {"anls": MetricSpec(score="anls")}
    main_metric = "anls"
    paper_scale = 100.0
    breakdown_keys = ("question_types",)
    id_column = "questionId"
    answer_column = "answers"
    metadata_columns = ("question_types", "docId")
    cluster_key = "docId"  # several questions per page: intervals resample whole pages

    def __init__(self, config: Any):
        super().__init__(config)
        self.threshold, self.variant = anls_settings(self.config, self.name)

    def score(self, sample: Sample, prediction: str) -> dict[str, float]:
        """ANLS (configured threshold and variant) against all gold answers."""
        return {"anls": anls(prediction, as_str_list(sample.target), self.threshold, self.variant)}

    def write_submission(self, records: Sequence[Record], path: Path) -> Path | None:
        """The official DocVQA submission JSON (questionId as an integer when numeric; answers
        stripped, errors as "")."""
        entries = []
        for r in records:
            qid: Any = int(r.id) if r.id.isdigit() else r.id
            entries.append(
                {"questionId": qid, "answer": strip_answer(r.prediction) if r.error is None else ""}
            )
        return write_submission_json(entries, path)

    def protocol(self) -> dict[str, Any]:
        """Adds the ANLS definition (threshold and variant) to the recorded protocol."""
        out = super().protocol()
        out["metric"] = anls_description(self.threshold, self.variant)
        out["metric_variant"] = self.variant
        return out

"""MM-Vet (``mmvet``): open-ended answers graded 0-1 by an LLM judge against the reference answer.

Data: ``lmms-lab/MMVet`` (split ``test``, 218 questions): ``question_id`` (``v1_0``...), ``image``,
``question``, ``answer`` (the reference; ``<AND>`` joins parts that must all be present, ``<OR>``
alternatives of which one suffices), ``image_source``, ``capability`` (comma-separated: ``rec``,
``ocr``, ``know``, ``gen``, ``spat``, ``math``).

Grading (MM-Vet protocol; the wording of :data:`GRADER_INSTRUCTIONS` and its examples is evalkit's
own): the judge sees the question, the reference (``<AND>``/``<OR>`` spaced out) and the model's
answer as the last row of a small few-shot table and completes that row's correctness cell with one
of 0.0, 0.1, ..., 1.0. The grade is the reply's first space-separated token read as a number in
[0, 1]; a reply that is not one scores 0.0 (the official last resort) and is counted as
``grades_unparsed``; a judge request that fails is the sample's error (retried on the next run).
``grading.repeats`` > 1 grades every answer that many times (repeat *r* > 0 is a distinct request,
OpenAI ``seed`` = *r*, cached on its own) and the sample's grade is the mean; the spread of the
per-run totals is reported as ``score_runs_std``.

Reported: ``score`` = mean grade (x100 in papers), per capability (an answer counts for each of its
capabilities) and per capability combination (``integration``). The judge is required (the task
refuses to run with ``judge=none``); ``judge=gpt-4-turbo`` is the default of the Qwen2-VL report
(MMVet GPT-4-Turbo). The judge identity is recorded in ``protocol.judge`` and in the ``judge`` block.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalkit.plugins.judged import JudgedTaskMixin, JudgedTaskResult, clear_judge_error
from evalkit.plugins.vqa import PromptedImageQATask

from evalkit.errors import InputError, UsageError
from evalkit.tasks.base import MetricSpec, TaskResult
from evalkit.types import Record, Sample

GRADER_PROMPT_VERSION = "mmvet-grader-1"
CAPABILITIES = ("rec", "ocr", "know", "gen", "spat", "math")

GRADER_INSTRUCTIONS = (
    "You grade answers written by AI models. For each question, compare the model's prediction with the "
    "ground truth and give the prediction a correctness score. In a ground truth, <AND> separates parts "
    "that must all appear in the prediction for it to be completely right, and <OR> separates "
    "alternatives of which any single one makes it completely right. The correctness score is one of "
    "0.0 (completely wrong), 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9 or 1.0 (completely right). "
    "Fill in only the empty correctness cell of the last row."
)

#: the few-shot rows (question, ground truth, prediction, correctness); evalkit's own examples
GRADER_EXAMPLES: tuple[tuple[str, str, str, str], ...] = (
    ("Which two numbers are circled?", "3 <AND> 8", "The circled number is 5.", "0.0"),
    ("Which two numbers are circled?", "3 <AND> 8", "The circled number is 3.", "0.5"),
    ("Which two numbers are circled?", "3 <AND> 8", "The numbers 8 and 3 are circled.", "1.0"),
    ("What colour is the bus?", "red <OR> dark red", "It is a red bus.", "1.0"),
    (
        "Why is this comic funny?",
        "The cat sits in the box meant for the new cat bed instead of the bed itself, so the expensive gift "
        "is ignored while the free cardboard box delights it.",
        "The comic shows a cat and a box.",
        "0.3",
    ),
    (
        "Why is this comic funny?",
        "The cat sits in the box meant for the new cat bed instead of the bed itself, so the expensive gift "
        "is ignored while the free cardboard box delights it.",
        "It is funny because the owner bought a fancy bed, but the cat prefers the cardboard box the bed "
        "came in, ignoring the costly present.",
        "1.0",
    ),
)


def spaced_reference(answer: str) -> str:
    """The reference with its ``<AND>``/``<OR>`` markers surrounded by spaces."""
    return answer.replace("<AND>", " <AND> ").replace("<OR>", " <OR> ")


def grader_prompt(question: str, answer: str, prediction: str) -> str:
    """The grading request for one answer: instructions, the few-shot table, the row to complete."""
    lines = [
        GRADER_INSTRUCTIONS,
        "Question | Ground truth | Prediction | Correctness",
        "--- | --- | --- | ---",
    ]
    lines += [" | ".join(row) for row in GRADER_EXAMPLES]
    lines.append(f"{question} | {spaced_reference(answer)} | {prediction} |")
    return "\n".join(lines)


def parse_grade(reply: str) -> float | None:
    """The grade of a judge reply: its first space-separated token as a number in [0, 1], else None."""
    token = (reply or "").strip().split(" ")[0].strip()
    try:
        value = float(token)
    except ValueError:
        return None
    return value if math.isfinite(value) and 0.0 <= value <= 1.0 else None


def split_capabilities(value: Any) -> list[str]:
    """``"ocr,spat"`` (or a list) -> ``["ocr", "spat"]``."""
    if isinstance(value, list | tuple):
        items = [str(v) for v in value]
    else:
        items = str(value or "").split(",")
    return [c.strip() for c in items if c.strip()]


class MMVetResult(JudgedTaskResult):
    """TaskResult plus the ``judge`` block (identity, prompt version, usage, estimated cost)."""


class MMVetTask(JudgedTaskMixin, PromptedImageQATask):
    """MM-Vet: LLM-graded correctness, per capability and capability combination."""

    version = "1"
    id_column = "question_id"
    answer_column = "answer"
    metrics = {"score": MetricSpec(score="score"), "score_runs_std": MetricSpec(kind="corpus")}
    main_metric = "score"
    breakdown_keys = ("capability", "integration")
    judge_suggestion = "judge=gpt-4-turbo (the Qwen2-VL report's grader; or judge=local judge.base_url=<url>)"

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        self.run_totals: list[float] = []

    @property
    def repeats(self) -> int:
        """How many times every answer is graded (``grading.repeats``, default 1)."""
        value = int((self.config.get("grading") or {}).get("repeats", 1))
        if value < 1:
            raise UsageError(f"task {self.name}: grading.repeats must be >= 1, got {value}")
        return value

    def make_metadata(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``capability`` (list) and ``integration`` (the sorted combination, ``ocr_spat``)."""
        caps = split_capabilities(values.get("capability"))
        return {"capability": caps, "integration": "_".join(sorted(caps))} if caps else {}

    def read_columns(self) -> dict[str, list[Any]]:
        cols = super().read_columns()
        cols.update(self._columns(["capability"]))
        return cols

    def check_target(self, sample: Sample) -> list[str]:
        """The reference answer (one non-empty string)."""
        if not isinstance(sample.target, str) or not sample.target.strip():
            raise InputError("missing reference answer in 'answer'")
        return [sample.target]

    def score(self, sample: Sample, prediction: str) -> dict[str, float]:
        """Nothing: MM-Vet is graded by the judge in :meth:`after_generation`."""
        return {}

    # ----------------------------------------------------------------- judge
    def after_generation(
        self, records: list[Record], config: Mapping[str, Any], output_dir: Path
    ) -> list[Record]:
        """Grade every answered sample ``repeats`` times; resumable (durable log + cache)."""
        if self.judge is None:
            self.before_run(config, output_dir)
        assert self.judge is not None
        by_id = {s.id: s for s in self.samples()}
        questions = self._columns([self.question_column])[self.question_column]
        convs, labels, owners = [], [], []
        for pos, rec in enumerate(records):
            clear_judge_error(rec)
            rec.extra.pop("grades", None)
            sample = by_id.get(rec.id)
            if rec.error is not None or sample is None:
                continue
            question = questions[sample.index]
            reference = sample.target
            if not isinstance(reference, str) or not reference.strip():
                rec.error, rec.error_type = "judge: the item has no reference answer", "input"
                continue
            prediction = rec.prediction if isinstance(rec.prediction, str) else ""
            prompt = grader_prompt(str(question or ""), reference, prediction)
            for run in range(self.repeats):
                convs.append(([{"role": "user", "content": prompt}], run))
                labels.append(f"{rec.id}#g{run + 1}")
                owners.append((pos, run))
        judgments: list[Any] = []
        try:
            for run in range(self.repeats):
                idx = [i for i, (_, r) in enumerate(convs) if r == run]
                params = {"seed": run} if run else None
                got = self.judge.judge_many(
                    [convs[i][0] for i in idx], [labels[i] for i in idx], params=params
                )
                judgments.extend(zip(idx, got, strict=True))
        finally:
            usage = self.judge.usage.to_dict()
        judgments.sort(key=lambda t: t[0])
        grades: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for i, j in judgments:
            pos, run = owners[i]
            grade = None if not j.ok else parse_grade(j.text)
            grades[pos].append({"run": run + 1, "reply": j.text, "grade": grade, "source": j.source,
                                "error": j.error, "input_tokens": j.input_tokens,
                                "output_tokens": j.output_tokens})  # fmt: skip
        per_run: dict[int, list[float]] = defaultdict(list)
        for pos, runs in grades.items():
            rec = records[pos]
            rec.extra["grades"] = runs
            failed = [g for g in runs if g["error"] is not None]
            if failed:
                rec.error, rec.error_type = f"judge: {failed[0]['error']}", "score"
                continue
            values = [g["grade"] if g["grade"] is not None else 0.0 for g in runs]
            rec.scores = {"score": sum(values) / len(values)}
            for g, v in zip(runs, values, strict=True):
                per_run[g["run"]].append(v)
        self.run_totals = [sum(v) / len(v) for _, v in sorted(per_run.items()) if v]
        self.finish_judging(usage)
        return records

    # ----------------------------------------------------------------- aggregation
    def aggregate(self, records: Sequence[Record]) -> TaskResult:
        """Mean grade, per capability / combination, counts of unparsed grades, the judge block."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            base = super().aggregate(records)
        if base.n_errors:
            warnings.warn(f"{self.name}: {base.n_errors} of {len(records)} samples had errors (model, input or "
                          "judge) and are excluded from the metrics", stacklevel=2)  # fmt: skip
        graded = [r for r in records if isinstance(r.extra.get("grades"), list)]
        all_grades = [g for r in graded for g in r.extra["grades"] if isinstance(g, Mapping)]
        counts = dict(base.counts)
        counts["grades"] = len(all_grades)
        counts["grades_unparsed"] = sum(
            1 for g in all_grades if g.get("error") is None and g.get("grade") is None
        )
        counts["grades_failed"] = sum(1 for g in all_grades if g.get("error") is not None)
        tokens_in = sum(int(g.get("input_tokens") or 0) for g in all_grades)
        tokens_out = sum(int(g.get("output_tokens") or 0) for g in all_grades)
        counts["judge_input_tokens"], counts["judge_output_tokens"] = tokens_in, tokens_out
        runs: dict[int, list[float]] = defaultdict(list)
        for r in graded:
            if r.error is None:
                for g in r.extra["grades"]:
                    runs[int(g.get("run", 1))].append(float(g.get("grade") or 0.0))
        totals = [sum(v) / len(v) for _, v in sorted(runs.items()) if v]
        base.metrics["score_runs_std"] = statistics.pstdev(totals) if len(totals) > 1 else None
        if base.metrics["score_runs_std"] is None:
            base.notes.pop("score_runs_std", None)
        judge_block = dict(self.judge_summary) or {
            k: (self.config.get("judge") or {}).get(k) for k in ("name", "model")
        }
        cost = None
        if (
            judge_block.get("price_per_1k_input") is not None
            and judge_block.get("price_per_1k_output") is not None
        ):
            cost = (tokens_in * float(judge_block["price_per_1k_input"])
                    + tokens_out * float(judge_block["price_per_1k_output"])) / 1000.0  # fmt: skip
        judge_block.update({"prompt_version": GRADER_PROMPT_VERSION, "repeats": self.repeats,
                            "input_tokens": tokens_in, "output_tokens": tokens_out,
                            "estimated_cost": None if cost is None else round(cost, 6)})  # fmt: skip
        return MMVetResult(
            metrics=base.metrics, main_metric=base.main_metric, paper_scale=base.paper_scale,
            aggregation=base.aggregation, breakdowns=base.breakdowns, n_samples=base.n_samples,
            n_scored=sum(1 for r in records if r.error is None and "score" in r.scores), n_errors=base.n_errors,
            counts=counts, notes=base.notes, task_version=base.task_version, protocol=base.protocol,
            judge=judge_block,
        )  # fmt: skip

    def protocol(self) -> dict[str, Any]:
        """Dataset, prompt, generation, the grading protocol and the judge identity."""
        out = super().protocol()
        judge = self.config.get("judge") or {}
        out["judge"] = {
            "name": judge.get("name"),
            "model": judge.get("model"),
            "prompt_version": GRADER_PROMPT_VERSION,
            "instructions": GRADER_INSTRUCTIONS,
            "repeats": self.repeats,
            "parser": "first space-separated token of the reply as a number in [0, 1]; otherwise 0.0",
        }
        out["metric"] = "MM-Vet: mean LLM grade in [0, 1] (x100), per capability and capability combination"
        return out

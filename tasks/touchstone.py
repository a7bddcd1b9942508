"""TouchStone (English ``touchstone``, Chinese ``touchstone_cn``): open-ended visual dialogue scored by
an LLM judge against GPT-4's reference answers (see :mod:`evalkit.judge.touchstone` for the protocol).

Data: the official TSV (``index``, ``image``, ``question``, ``human_annotation``, ``gpt4_ha_answer``,
``category``, ``task_name``) or a hub dataset with the same columns. ``image`` is a base64 image;
a multi-image item holds a JSON list of base64 strings (a Python-literal list is accepted too) —
evalkit's convention, the official TSV's own multi-image encoding could not be checked. The model
sees all images of an item, in order, then the question.

Scoring happens after generation (:meth:`TouchStoneTask.after_generation`): every answered item is
judged twice with the answers' positions swapped; :meth:`TouchStoneTask.score` returns nothing.
``before_run`` builds and health-checks the judge before any model work; without a judge
(``judge=none``) the task refuses to run.
"""

from __future__ import annotations

import ast
import json
import math
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalkit.plugins.judged import JudgedTaskMixin, JudgedTaskResult, clear_judge_error

from evalkit.errors import InputError
from evalkit.judge.parse_scores import PARSER_VERSION
from evalkit.judge.touchstone import (
    ABILITIES,
    JUDGE_PROMPT_VERSION,
    JUDGE_SYSTEM,
    JUDGE_TEMPLATE,
    ROUND_ORDERS,
    ItemScores,
    ability_of,
    items_from_records_extra,
    pooled_round_score,
    read_round,
    round_messages,
    split_categories,
)
from evalkit.media.image import load_image
from evalkit.tasks.base import MetricSpec, Task, TaskResult, _group_values, _mean, aggregate_metric
from evalkit.types import ImagePart, Record, Request, Sample, user_message


def image_cells(value: Any) -> list[Any]:
    """The images of one ``image`` cell: a list as is, a JSON / Python-literal list of base64 strings,
    or one base64 string (or bytes / path) as a one-element list."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("["):
            try:
                parsed = json.loads(s)
            except json.JSONDecodeError:
                try:
                    parsed = ast.literal_eval(s)
                except (ValueError, SyntaxError):
                    raise InputError(
                        "image cell starts with '[' but is not a list of base64 strings"
                    ) from None
            if not isinstance(parsed, list):
                raise InputError("image cell is not a list of base64 strings")
            return parsed
        return [s] if s else []
    return [value]


def _count_images(value: Any) -> int:
    try:
        return len(image_cells(value))
    except InputError:
        return 0


class TouchStoneResult(JudgedTaskResult):
    """TaskResult plus the ``judge`` block (judge identity, prompt, usage, cost, dropped rounds)."""


class TouchStoneTask(JudgedTaskMixin, Task):
    """TouchStone: answers judged pairwise against the reference, twice with positions swapped."""

    version = "2"
    metrics = {
        # the official eval.py number (pooled over valid rounds): TouchStone's published score
        "score": MetricSpec(kind="corpus"),
        "reference_score": MetricSpec(kind="corpus"),
        "ratio": MetricSpec(kind="corpus"),
        # mean of per-item scores (secondary; differs from `score` only when rounds were dropped)
        "score_item_mean": MetricSpec(score="score"),
        "reference_score_item_mean": MetricSpec(score="reference_score"),
        "position_bias": MetricSpec(score="position_bias"),
    }
    main_metric = "score"
    paper_scale = 1.0
    breakdown_keys = ("ability", "category", "task_name")
    id_column = "index"
    question_column = "question"
    image_column = "image"
    judge_suggestion = "judge=gpt-4 (or judge=local judge.base_url=<url>, judge=qwen-max)"

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        self.output_dir: Path | None = None

    # ----------------------------------------------------------------- data
    def _column(self, name: str) -> list[Any]:
        if name not in self.dataset.column_names:
            return [None] * len(self.dataset)
        return list(self.dataset.select_columns([name])[name])

    def samples(self) -> list[Sample]:
        """One sample per row; id = ``index``; target = the reference answer ``gpt4_ha_answer``."""
        cols = {c: self._column(c) for c in ("index", "gpt4_ha_answer", "category", "task_name")}
        n_images = []
        for start in range(0, len(self.dataset), 64):
            batch = self.dataset[start : start + 64].get(self.image_column) or []
            n_images += [_count_images(v) for v in batch]
        n_images += [0] * (len(self.dataset) - len(n_images))
        overrides = dict(self.config.get("abilities") or {})
        out = []
        for i, idx in enumerate(cols["index"]):
            cats = split_categories(cols["category"][i])
            meta = {
                "category": cats,
                "task_name": "" if cols["task_name"][i] is None else str(cols["task_name"][i]),
                "n_images": n_images[i],
            }
            meta["ability"] = ability_of(meta["task_name"], cats, n_images[i], overrides)
            out.append(Sample(id=str(idx) if idx is not None else f"row-{i}", index=i,
                              target=cols["gpt4_ha_answer"][i], metadata=meta))  # fmt: skip
        return out

    def build_request(self, sample: Sample) -> Request:
        """All images of the item, in order, then the prompt filled with the question."""
        row = self.dataset[sample.index]
        question = row.get(self.question_column)
        if not isinstance(question, str) or not question.strip():
            raise InputError("missing or empty 'question' field")
        cells = image_cells(row.get(self.image_column))
        if not cells:
            raise InputError("item has no image")
        images = [ImagePart(load_image(c)) for c in cells]
        prompt = self.prompt_template().format(question=question)
        return Request(sample.id, (user_message(*images, prompt),), self.generation(), task=self.name)

    def score(self, sample: Sample, prediction: str) -> dict[str, float]:
        """Nothing: TouchStone is scored by the judge in :meth:`after_generation`."""
        return {}

    # ----------------------------------------------------------------- judge
    def before_run(self, config: Mapping[str, Any], output_dir: Path) -> None:
        """Remember the output folder (for the radar plot), then build and health-check the judge."""
        self.output_dir = Path(output_dir)
        super().before_run(config, output_dir)

    def after_generation(
        self, records: list[Record], config: Mapping[str, Any], output_dir: Path
    ) -> list[Record]:
        """Judge every answered item twice (positions swapped) and fill its scores.

        Resumable: judgments are logged durably as they finish and cached by content, so a rerun
        (after a crash or a ``max_cost`` stop) pays only for the judgments not made yet.
        """
        self.output_dir = Path(output_dir)
        if self.judge is None:
            self.before_run(config, output_dir)
        assert self.judge is not None
        by_id = {s.id: s for s in self.samples()}
        questions = self._column(self.question_column)
        descriptions = self._column("human_annotation")
        convs, labels, owners = [], [], []
        for pos, rec in enumerate(records):
            clear_judge_error(rec)
            rec.extra.pop("judge", None)
            if rec.error is not None:
                continue
            sample = by_id.get(rec.id)
            if sample is None:
                continue
            reference = sample.target
            if not isinstance(reference, str) or not reference.strip():
                rec.error, rec.error_type = (
                    "judge: the item has no reference answer (gpt4_ha_answer)",
                    "input",
                )
                continue
            description = descriptions[sample.index]
            if not isinstance(description, str) or not description.strip():
                rec.error, rec.error_type = "judge: the item has no description (human_annotation)", "input"
                continue
            prediction = rec.prediction if isinstance(rec.prediction, str) else ""
            for r, conv in enumerate(round_messages(description, str(questions[sample.index] or ""), reference,
                                                    prediction)):  # fmt: skip
                convs.append(conv)
                labels.append(f"{rec.id}#r{r + 1}")
                owners.append((pos, r))
        try:
            judgments = self.judge.judge_many(convs, labels)
        finally:
            usage = self.judge.usage.to_dict()
        rounds: dict[int, list[Any]] = defaultdict(lambda: [None, None])
        for (pos, r), j in zip(owners, judgments, strict=True):
            rounds[pos][r] = read_round(
                ROUND_ORDERS[r], j.text, j.error, j.source, j.input_tokens, j.output_tokens
            )
        for pos, pair in rounds.items():
            rec = records[pos]
            item = ItemScores(list(pair))
            rec.extra["judge"] = item.to_json()
            rec.scores = item.sample_scores()
            if not item.valid:
                why = "; ".join(f"r{k + 1}: {rr.status}" + (f" ({rr.error})" if rr.error else "")
                                for k, rr in enumerate(item.rounds))  # fmt: skip
                rec.error, rec.error_type = f"judge: no valid round ({why})", "score"
        self.finish_judging(usage)
        return records

    # ----------------------------------------------------------------- aggregation
    def aggregate(self, records: Sequence[Record]) -> TaskResult:
        """Scores (×100), reference score, ratio, position bias, official pooled score; breakdowns by
        ability / category (an item counts for each of its categories) / task_name; dropped rounds
        counted and listed; judge usage and estimated cost; the radar PNG when an output dir is known."""
        n_errors = sum(1 for r in records if r.error is not None)
        if n_errors:
            warnings.warn(
                f"{self.name}: {n_errors} of {len(records)} samples had errors (model, input or no valid "
                "judge round) and are excluded from the metrics",
                stacklevel=2,
            )
        scored = [r for r in records if r.error is None]
        judged = [r for r in records if isinstance(r.extra.get("judge"), Mapping)]
        items = items_from_records_extra([r.extra.get("judge") for r in judged])
        item_of = {r.id: it for r, it in zip(judged, items, strict=True) if r.error is None}
        valid_items = list(item_of.values())
        metrics: dict[str, float | None] = {
            "score": pooled_round_score(valid_items),
            "reference_score": pooled_round_score(valid_items, "reference"),
            "score_item_mean": aggregate_metric(self.metrics["score_item_mean"], scored),
            "reference_score_item_mean": aggregate_metric(self.metrics["reference_score_item_mean"], scored),
            "position_bias": aggregate_metric(self.metrics["position_bias"], scored),
        }
        ref = metrics["reference_score"]
        metrics["ratio"] = metrics["score"] / ref if metrics["score"] is not None and ref else None
        metrics = {k: metrics[k] for k in self.metrics}

        breakdowns: dict[str, dict[str, dict[str, float]]] = {}
        for key in self.breakdown_keys:
            groups: dict[Any, list[Record]] = defaultdict(list)
            for r in scored:
                if "score" in r.scores and key in r.metadata:
                    for g in _group_values(r.metadata[key]):
                        groups[g].append(r)
            order = list(ABILITIES) if key == "ability" else []
            names = [g for g in order if g in groups] + sorted((g for g in groups if g not in order), key=str)
            if names:
                breakdowns[key] = {
                    str(g): {
                        "score": pooled_round_score([item_of[r.id] for r in groups[g] if r.id in item_of]),
                        "reference_score": pooled_round_score(
                            [item_of[r.id] for r in groups[g] if r.id in item_of], "reference"
                        ),
                        "score_item_mean": _mean([r.scores["score"] for r in groups[g]]),
                        "n": len(groups[g]),
                    }  # type: ignore[dict-item]
                    for g in names
                }

        counts: dict[str, int] = defaultdict(int)
        dropped: list[str] = []
        tokens_in = tokens_out = 0
        for r, it in zip(judged, items, strict=True):
            counts["items_judged"] += 1
            if len(it.valid) == 1:
                counts["items_one_round"] += 1
            if not it.valid:
                counts["items_no_valid_round"] += 1
            for k, rr in enumerate(it.rounds):
                counts["rounds"] += 1
                tokens_in += rr.input_tokens or 0
                tokens_out += rr.output_tokens or 0
                if rr.status == "ok":
                    counts["rounds_ok"] += 1
                else:
                    counts["rounds_dropped"] += 1
                    counts["rounds_failed" if rr.status == "error" else "rounds_unparsed"] += 1
                    counts[f"rounds_dropped_{rr.status}"] += 1
                    dropped.append(f"{r.id}#r{k + 1} ({rr.status})")
        for k in (
            "rounds",
            "rounds_ok",
            "rounds_dropped",
            "rounds_failed",
            "rounds_unparsed",
            "items_one_round",
        ):
            counts.setdefault(k, 0)
        counts["judge_input_tokens"] = tokens_in
        counts["judge_output_tokens"] = tokens_out
        counts["unmapped_ability"] = sum(1 for r in records if r.metadata.get("ability") == "unmapped")

        notes: dict[str, str] = {}
        if dropped:
            notes["dropped_rounds"] = ", ".join(dropped)
        if counts["unmapped_ability"]:
            notes["ability"] = (
                f"{counts['unmapped_ability']} item(s) have a task_name no ability rule maps; set "
                "task.abilities={<task_name>: <ability>} (see docs/judge.md)"
            )
        judge_block = dict(self.judge_summary) or {"name": (self.config.get("judge") or {}).get("name")}
        cost = None
        if self.judge_summary.get("price_per_1k_input") is not None:
            cost = (tokens_in / 1000.0 * float(self.judge_summary["price_per_1k_input"])
                    + tokens_out / 1000.0 * float(self.judge_summary["price_per_1k_output"]))  # fmt: skip
        judge_block.update({
            "prompt_version": JUDGE_PROMPT_VERSION,
            "parser": PARSER_VERSION,
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "estimated_cost": None if cost is None else round(cost, 6),
            "dropped_rounds": dropped,
        })  # fmt: skip
        result = TouchStoneResult(
            metrics=metrics,
            breakdowns=breakdowns,
            n_samples=len(records),
            n_scored=len(scored),
            n_errors=n_errors,
            counts=dict(counts),
            notes=notes,
            judge=judge_block,
            **self.result_identity(),
        )
        if self.output_dir is not None and "ability" in breakdowns:
            from evalkit.judge.radar import RADAR_FILE, plot_ability_radar

            model_label = str(self.config.get("model_label") or self.name)
            scores = {a: v.get("score") for a, v in breakdowns["ability"].items()}
            plot_ability_radar({model_label: scores}, self.output_dir / RADAR_FILE,
                               title=f"{self.name}: score {_fmt(metrics['score'])}")  # fmt: skip
            result.notes["radar"] = RADAR_FILE
        return result

    def protocol(self) -> dict[str, Any]:
        """Dataset, prompt, generation, and the judging protocol (prompt text, rounds, parsing)."""
        out = super().protocol()
        out["judge"] = {
            "prompt_version": JUDGE_PROMPT_VERSION,
            "system": JUDGE_SYSTEM,
            "template": JUDGE_TEMPLATE,
            "rounds": list(ROUND_ORDERS),
            "parser": PARSER_VERSION,
            "item_score": "mean of the model's scores over the item's valid rounds, x100 (score_item_mean)",
            "score": "official eval.py pooling: mean of the model's scores over all valid rounds, x100",
            "position_bias": "((model_r2 - model_r1) + (ref_r1 - ref_r2)) / 2, 1-10 points",
        }
        out["metric"] = (
            "TouchStone: official eval.py pooling - mean of the model's scores over all valid rounds x100 "
            "(100-1000), overall and per category/ability; score_item_mean = mean of item scores"
        )
        return out


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"

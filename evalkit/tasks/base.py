"""The Task plugin API.

A task is a small plugin (a :class:`Task` subclass in ``tasks/`` or in a third-party package) plus
its Hydra config (``configs/task/<name>.yaml``). It

1. loads its dataset (:meth:`Task.load`) and lists :class:`~evalkit.types.Sample` objects
   without decoding images (:meth:`Task.samples`);
2. turns one sample into a model-agnostic :class:`~evalkit.types.Request`
   (:meth:`Task.build_request`, raising :class:`~evalkit.errors.InputError` for bad input);
3. scores one prediction with pure metric functions (:meth:`Task.score`);
4. aggregates per-sample scores into metrics (:meth:`Task.aggregate`, generic by default: declare
   :attr:`Task.metrics` and :attr:`Task.breakdown_keys`).

The runner knows nothing else about a task, so new benchmarks never touch the runner.
"""

from __future__ import annotations

import json
import math
import warnings
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from evalkit.errors import UsageError
from evalkit.types import GenerationParams, ModelInput, Record, Request, Sample


@dataclass(frozen=True)
class MetricSpec:
    """How one reported metric is computed from per-sample scores (see docs/results-contract.md).

    kind: ``"mean"`` (mean of ``scores[score]`` over scored samples, optionally restricted by
    ``where`` on metadata), ``"macro"`` (mean over ``metadata[group]`` groups of per-group means) or
    ``"corpus"`` (computed by the task from all predictions at once; no bootstrap interval).
    """

    score: str | None = None
    kind: str = "mean"
    group: str | None = None
    where: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``aggregation`` entry of results.json."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.score is not None:
            out["score"] = self.score
        if self.group is not None:
            out["group"] = self.group
        if self.where:
            out["where"] = dict(self.where)
        return out


def write_submission_json(entries: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Write an official submission file (a JSON list, folders created) and return its path: the
    helper behind :meth:`Task.write_submission` of the tasks whose servers take JSON lists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries, ensure_ascii=False, indent=1))
    return path


@dataclass
class TaskResult:
    """The aggregate of one task, written under ``results.json["tasks"][name]``."""

    metrics: dict[str, float | None]
    main_metric: str
    paper_scale: float
    aggregation: dict[str, dict[str, Any]]
    n_samples: int
    n_scored: int
    n_errors: int
    breakdowns: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    task_version: str = ""
    protocol: dict[str, Any] = field(default_factory=dict)
    submission_file: str | None = None
    #: ``complete``, or ``incomplete`` when the numbers cannot be trusted (see ``status_reason``)
    status: str = "complete"
    status_reason: str | None = None
    errors_by_type: dict[str, int] = field(default_factory=dict)
    #: metadata key whose value identifies a cluster of correlated samples (see Task.cluster_key)
    cluster_key: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict in the results contract layout."""
        return {
            "status": self.status,
            "status_reason": self.status_reason,
            "errors_by_type": self.errors_by_type,
            "metrics": self.metrics,
            "main_metric": self.main_metric,
            "paper_scale": self.paper_scale,
            "aggregation": self.aggregation,
            "breakdowns": self.breakdowns,
            "n_samples": self.n_samples,
            "n_scored": self.n_scored,
            "n_errors": self.n_errors,
            "counts": self.counts,
            "notes": self.notes,
            "task_version": self.task_version,
            "protocol": self.protocol,
            "submission_file": self.submission_file,
            "cluster_key": self.cluster_key,
        }


def _errors_by_type(records: Sequence[Record]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in records:
        if r.error is not None:
            key = str(r.error_type or "other")
            out[key] = out.get(key, 0) + 1
    return out


def _mean(values: Sequence[float]) -> float | None:
    return float(math.fsum(values) / len(values)) if values else None


def _matches(metadata: Mapping[str, Any], where: Mapping[str, Any] | None) -> bool:
    return not where or all(metadata.get(k) == v for k, v in where.items())


def _group_values(value: Any) -> list[Any]:
    """A metadata value used as a group: lists count for each of their items."""
    if isinstance(value, list | tuple):
        return [json.dumps(v) if isinstance(v, dict | list) else v for v in value]
    return [value]


def aggregate_metric(spec: MetricSpec, records: Sequence[Record]) -> float | None:
    """Compute one ``mean`` or ``macro`` metric from scored records (error records are skipped)."""
    scored = [r for r in records if r.error is None and spec.score in r.scores]
    if spec.kind == "mean":
        return _mean([r.scores[spec.score] for r in scored if _matches(r.metadata, spec.where)])
    if spec.kind == "macro":
        groups: dict[Any, list[float]] = defaultdict(list)
        for r in scored:
            if _matches(r.metadata, spec.where):
                for g in _group_values(r.metadata.get(spec.group)):
                    groups[g].append(r.scores[spec.score])
        return _mean([_mean(v) for v in groups.values()])  # type: ignore[misc]
    raise ValueError(f"metric kind {spec.kind!r} must be computed by the task")


class Task(ABC):
    """Base class of every task plugin. Subclasses set the class attributes and implement the
    four abstract methods; :meth:`aggregate` and :meth:`write_submission` have generic defaults."""

    #: version of the task's prompt/scoring logic; recorded in results (bump on any change)
    version: ClassVar[str] = "1"
    #: metric name -> how it is computed from per-sample scores
    metrics: ClassVar[Mapping[str, MetricSpec]] = {}
    #: the metric a leaderboard shows, and the factor papers multiply it by
    main_metric: ClassVar[str] = ""
    paper_scale: ClassVar[float] = 100.0
    #: metadata keys to break the main score down by (languages, durations, subsets...)
    breakdown_keys: ClassVar[Sequence[str]] = ()
    #: metadata key whose value identifies a cluster of samples sharing one image / page / video;
    #: confidence intervals and the gate resample whole clusters (None: samples are independent)
    cluster_key: ClassVar[str | None] = None

    def __init__(self, config: Mapping[str, Any]):
        self.config: dict[str, Any] = dict(config)
        self.name: str = str(self.config["name"])
        self.dataset: Any = None
        self.dataset_info: dict[str, Any] = {}

    # ----------------------------------------------------------------- data
    def load(self) -> None:
        """Load the dataset named by ``config["dataset"]`` (hub id or local path)."""
        from evalkit.tasks.datasets import load_dataset_from_config

        self.dataset, self.dataset_info = load_dataset_from_config(self.config.get("dataset") or {})

    @abstractmethod
    def samples(self) -> list[Sample]:
        """All samples in dataset order, cheap to build (no image decoding)."""

    @property
    def has_targets(self) -> bool:
        """False for splits whose answers are hidden (test): write a submission instead of scores."""
        return True

    # ----------------------------------------------------------------- requests
    @abstractmethod
    def build_request(self, sample: Sample) -> Request:
        """The request for one sample; raise :class:`~evalkit.errors.InputError` on bad input."""

    def generation(self) -> GenerationParams:
        """Generation parameters from ``config["generation"]`` (greedy unless configured)."""
        gen = dict(self.config.get("generation") or {})
        if "stop" in gen:
            gen["stop"] = tuple(gen["stop"] or ())
        return GenerationParams(**gen)

    def prompt_template(self) -> str:
        """The prompt template selected by ``config["prompt"]``: a preset name from
        ``config["prompts"]`` or a literal template containing ``{...}`` fields."""
        choice = str(self.config.get("prompt", "default"))
        presets = self.config.get("prompts") or {}
        if choice in presets:
            return str(presets[choice])
        if "{" in choice:
            return choice
        raise UsageError(
            f"task {self.name}: unknown prompt preset {choice!r}; available: {', '.join(presets) or 'none'} "
            "(or pass a literal template with {question} fields)"
        )

    # ----------------------------------------------------------------- run hooks
    def before_run(self, config: Mapping[str, Any], output_dir: Path) -> None:  # noqa: B027 - optional hook
        """Called once before any model work (e.g. an LLM judge's health check). Default: nothing."""

    def after_generation(
        self, records: list[Record], config: Mapping[str, Any], output_dir: Path
    ) -> list[Record]:
        """Called with all records once generation is complete, before aggregation (e.g. an LLM-judge
        phase that adds scores). Must be resumable on its own. Default: the records unchanged."""
        return records

    # ----------------------------------------------------------------- scoring
    @abstractmethod
    def score(self, sample: Sample, prediction: str) -> dict[str, float]:
        """Per-sample scores of one prediction (pure; raise ValueError if it cannot be scored)."""

    def record_extra(self, sample: Sample, prediction: str) -> dict[str, Any]:
        """Extra per-sample fields to store in the record (e.g. the extracted choice)."""
        return {}

    def score_response(self, sample: Sample, prediction: str, seen: ModelInput) -> dict[str, float]:
        """:meth:`score`, knowing what the backend reported about the model's input (``seen``: the
        sizes the images were given at). Tasks whose answers are in the pixels of the image the
        model saw (``pixel_json`` boxes and clicks) override it; the default ignores ``seen``."""
        return self.score(sample, prediction)

    def record_extra_response(self, sample: Sample, prediction: str, seen: ModelInput) -> dict[str, Any]:
        """:meth:`record_extra`, knowing ``seen`` (see :meth:`score_response`)."""
        return self.record_extra(sample, prediction)

    def aggregate(self, records: Sequence[Record]) -> TaskResult:
        """Aggregate records into metrics, breakdowns and counts (errors excluded, with a warning)."""
        n_errors = sum(1 for r in records if r.error is not None)
        if n_errors:
            warnings.warn(
                f"{self.name}: {n_errors} of {len(records)} samples had errors and are excluded from the metrics",
                stacklevel=2,
            )
        scored = [r for r in records if r.error is None]
        metrics: dict[str, float | None] = {}
        if self.has_targets:
            for name, spec in self.metrics.items():
                # corpus-level metrics are filled in by the task's own aggregate override
                metrics[name] = None if spec.kind == "corpus" else aggregate_metric(spec, scored)
        breakdowns: dict[str, dict[str, dict[str, float]]] = {}
        main = self.metrics.get(self.main_metric)
        if self.has_targets and main is not None and main.score:
            for key in self.breakdown_keys:
                groups: dict[Any, list[float]] = defaultdict(list)
                for r in scored:
                    if key in r.metadata and main.score in r.scores:
                        for g in _group_values(r.metadata[key]):
                            groups[g].append(r.scores[main.score])
                if groups:
                    breakdowns[key] = {
                        str(g): {main.score: _mean(v), "n": len(v)}  # type: ignore[dict-item]
                        for g, v in sorted(groups.items(), key=lambda kv: str(kv[0]))
                    }
        return TaskResult(
            metrics=metrics,
            breakdowns=breakdowns,
            n_samples=len(records),
            n_scored=len(scored),
            n_errors=n_errors,
            errors_by_type=_errors_by_type(records),
            counts=self.counts(records),
            cluster_key=self.cluster_key,
            **self.result_identity(),
        )

    def result_identity(self) -> dict[str, Any]:
        """The :class:`TaskResult` fields that describe the task, not its records: main metric,
        paper scale, metric definitions (``aggregation``), task version and protocol."""
        return {
            "main_metric": self.main_metric,
            "paper_scale": self.paper_scale,
            "aggregation": {k: v.to_json() for k, v in self.metrics.items()},
            "task_version": f"{self.name}-{self.version}",
            "protocol": self.protocol(),
        }

    def counts(self, records: Sequence[Record]) -> dict[str, int]:
        """Task-specific counters (e.g. ``unparsed``) recorded next to the metrics."""
        return {}

    def write_submission(self, records: Sequence[Record], path: Path) -> Path | None:
        """Write the official submission file for a split without answers (default: none)."""
        return None

    def protocol(self) -> dict[str, Any]:
        """Every knob that determines this task's numbers, recorded in results.json."""
        ds = self.config.get("dataset") or {}
        return {
            "dataset": {k: ds.get(k) for k in ("path", "name", "split", "revision")},
            "prompt_preset": self.config.get("prompt", "default"),
            "prompt": self.prompt_template() if self.config.get("prompts") else None,
            "generation": self.generation().to_dict(),
            "task_version": f"{self.name}-{self.version}",
        }


def records_in_order(samples: Iterable[Sample], records: Mapping[str, Record]) -> list[Record]:
    """The records of ``samples`` in sample order (samples without a record are skipped)."""
    return [records[s.id] for s in samples if s.id in records]

"""Read result directories (``results.json`` + ``samples/<task>.jsonl``) into typed objects.

Reports and gates read only these files (``docs/results-contract.md``), never live objects. Every
problem a user can fix (a path that matches nothing, a broken ``results.json``, a sample line that
is not JSON) is raised as :class:`evalkit.errors.UsageError` with the offending path.
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import UsageError

RESULTS_FILE = "results.json"
# Folders inside a result dir that never hold another run.
_SKIP_DIRS = {"samples", "parts", "submission", ".hydra", "thumbs", "__pycache__", ".git"}
# Model fields that are part of how a task was run (a pixel budget changes scores by points).
MODEL_PROTOCOL_KEYS = (
    "backend",
    "pretrained",
    "revision",
    "dtype",
    "min_pixels",
    "max_pixels",
    "box_convention",
    "video",
)


@dataclass(frozen=True)
class SampleRecord:
    """One line of ``samples/<task>.jsonl``."""

    id: str
    prompt: str | None
    prediction: str | None
    target: Any
    scores: dict[str, float | None]
    error: str | None
    error_type: str | None
    metadata: dict[str, Any]
    thumbnail: str | None = None
    #: the request's model-independent text (older files: extracted from ``prompt``)
    question: str | None = None

    @property
    def errored(self) -> bool:
        """Whether the sample failed (it is then excluded from every metric)."""
        return self.error is not None


@dataclass
class TaskResult:
    """One task's entry in ``results.json`` (``tasks[name]``), plus where it came from."""

    name: str
    metrics: dict[str, float | None]
    main_metric: str
    paper_scale: float
    aggregation: dict[str, dict[str, Any]]
    breakdowns: dict[str, dict[str, dict[str, Any]]]
    n_samples: int
    n_scored: int
    n_errors: int
    task_version: str | None
    protocol: dict[str, Any]
    run: RunResult = field(repr=False)
    notes: Any = None
    #: metadata key identifying clusters of correlated samples (intervals resample clusters)
    cluster_key: str | None = None
    _samples: list[SampleRecord] | None = field(default=None, repr=False)

    @property
    def samples_path(self) -> Path:
        """``<run dir>/samples/<task>.jsonl``."""
        return self.run.path / "samples" / f"{self.name}.jsonl"

    @property
    def has_samples(self) -> bool:
        """Whether the per-sample file exists."""
        return self.samples_path.is_file()

    def samples(self) -> list[SampleRecord]:
        """The per-sample records (read once, then cached); ``UsageError`` if the file is missing."""
        if self._samples is None:
            self._samples = read_samples(self.samples_path)
        return self._samples

    def main_score_name(self, metric: str | None = None) -> str | None:
        """The per-sample score behind ``metric`` (default: the main metric), or ``None``."""
        spec = self.aggregation.get(metric or self.main_metric) or {}
        return spec.get("score")

    def protocol_signature(self, with_model: bool) -> dict[str, Any]:
        """What must match for two results of this task to be comparable, as a flat dict.

        Always the task's ``protocol``, ``task_version`` and the run's ``limit`` when set; with
        ``with_model`` (comparing two runs of the same model) also the model fields in
        :data:`MODEL_PROTOCOL_KEYS`.
        """
        sig = flatten({"protocol": self.protocol, "task_version": self.task_version})
        if self.run.limit is not None:  # a subset (the first N samples) is another evaluation
            sig["limit"] = self.run.limit
        if with_model:
            sig.update(flatten({"model": {k: self.run.model.get(k) for k in MODEL_PROTOCOL_KEYS}}))
        return sig


@dataclass
class RunResult:
    """One result directory."""

    path: Path
    model: dict[str, Any]
    tasks: dict[str, TaskResult]
    provenance: dict[str, Any]
    timing: dict[str, Any]
    schema_version: int
    #: the run's ``limit`` (its first N samples only), ``None`` for the whole split
    limit: int | None = None

    @property
    def model_name(self) -> str:
        """``results.json["model"]["name"]`` (falls back to ``pretrained``, then the dir name)."""
        return str(self.model.get("name") or self.model.get("pretrained") or self.path.name)

    @property
    def end_time(self) -> str:
        """ISO end (or start) time from provenance; ``""`` when unknown (sorts first)."""
        return str(self.provenance.get("end_time") or self.provenance.get("start_time") or "")


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``; lists and scalars are leaves."""
    if isinstance(obj, Mapping) and obj:
        out: dict[str, Any] = {}
        for key, value in obj.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: obj} if prefix else {}


def differing_keys(signatures: Sequence[Mapping[str, Any]]) -> list[str]:
    """Dotted keys whose values are not the same in all ``signatures`` (sorted)."""
    keys = set().union(*signatures) if signatures else set()
    return sorted(k for k in keys if len({json.dumps(s.get(k), sort_keys=True) for s in signatures}) > 1)


def _load_json(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise UsageError(f"{path} is not valid JSON ({e.msg} at line {e.lineno})") from e
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from e


def _limit(config: Any) -> int | None:
    limit = config.get("limit") if isinstance(config, Mapping) else None
    return limit if isinstance(limit, int) and not isinstance(limit, bool) else None


def load_run(path: str | os.PathLike[str]) -> RunResult:
    """Load one result dir (or its ``results.json``)."""
    p = Path(path)
    if p.is_dir():
        p = p / RESULTS_FILE
    if not p.is_file():
        raise UsageError(f"no {RESULTS_FILE} at {p}")
    data = _load_json(p)
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), dict):
        raise UsageError(f"{p} has no 'tasks' object; is it an evalkit results.json?")
    run = RunResult(
        path=p.parent,
        model=dict(data.get("model") or {}),
        tasks={},
        provenance=dict(data.get("provenance") or {}),
        timing=dict(data.get("timing") or {}),
        schema_version=int(data.get("schema_version", 1)),
        limit=_limit(data.get("config")),
    )
    for name, entry in data["tasks"].items():
        run.tasks[name] = _task_result(name, entry, run, p)
    return run


def _task_result(name: str, entry: Any, run: RunResult, path: Path) -> TaskResult:
    if not isinstance(entry, dict) or not isinstance(entry.get("metrics"), dict):
        raise UsageError(f"{path}: task {name!r} has no 'metrics' object")
    metrics = {k: (None if v is None else float(v)) for k, v in entry["metrics"].items()}
    # A split without answers (submission only) has no metrics; its cell stays empty.
    main = entry.get("main_metric") or next(iter(metrics), "")
    n_errors = int(entry.get("n_errors") or 0)
    n_samples = int(entry.get("n_samples") or 0)
    return TaskResult(
        name=name,
        metrics=metrics,
        main_metric=main,
        paper_scale=float(entry.get("paper_scale") or 1),
        aggregation=dict(entry.get("aggregation") or {}),
        breakdowns=dict(entry.get("breakdowns") or {}),
        n_samples=n_samples,
        n_scored=int(entry.get("n_scored") if entry.get("n_scored") is not None else n_samples - n_errors),
        n_errors=n_errors,
        task_version=entry.get("task_version"),
        protocol=dict(entry.get("protocol") or {}),
        run=run,
        notes=entry.get("notes"),
        cluster_key=entry.get("cluster_key") or (entry.get("protocol") or {}).get("cluster_key") or None,
    )


def read_samples(path: str | os.PathLike[str]) -> list[SampleRecord]:
    """Read a ``samples/<task>.jsonl`` file."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"missing per-sample file {p}")
    records: list[SampleRecord] = []
    with p.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise UsageError(f"{p}:{lineno} is not valid JSON ({e.msg})") from e
            if not isinstance(row, dict) or "id" not in row:
                raise UsageError(f"{p}:{lineno} is not a sample record (no 'id')")
            records.append(
                SampleRecord(
                    id=str(row["id"]),
                    prompt=row.get("prompt"),
                    prediction=row.get("prediction"),
                    target=row.get("target"),
                    scores=dict(row.get("scores") or {}),
                    error=row.get("error"),
                    error_type=row.get("error_type"),
                    metadata=dict(row.get("metadata") or {}),
                    thumbnail=row.get("thumbnail"),
                    question=question_text(row.get("question"), row.get("prompt")),
                )
            )
    return records


_USER_TURN = re.compile(r"<\|im_start\|>user\s*(.*?)(?:<\|im_end\|>|$)", re.DOTALL)
_VISION_TOKENS = re.compile(r"<\|vision_start\|>.*?<\|vision_end\|>|<\|(?:image|video)_pad\|>", re.DOTALL)


def question_text(question: Any, prompt: Any) -> str | None:
    """What a person reads as the sample's question.

    The record's ``question`` (the request's text parts, model-independent) when present; for
    older files the text of the last user turn of a Qwen chat-template ``prompt``
    (``<|im_start|>user ... <|im_end|>``, vision placeholders removed); else the prompt itself.
    """
    if isinstance(question, str) and question.strip():
        return question
    if not isinstance(prompt, str):
        return None
    turns = _USER_TURN.findall(prompt)
    if turns:
        text = _VISION_TOKENS.sub("", turns[-1]).strip()
        if text:
            return text
    return prompt


def find_result_dirs(patterns: Iterable[str]) -> list[Path]:
    """Expand dirs, ``results.json`` files and globs into result dirs (sorted, de-duplicated).

    A dir holding ``results.json`` is one run; a dir without one is searched recursively for
    runs (skipping ``samples/``, ``parts/``, ``.hydra/``...).
    """
    found: dict[Path, None] = {}
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        hits = 0
        for m in matches:
            p = Path(m)
            if p.is_file() and p.name == RESULTS_FILE:
                found[p.parent.resolve()] = None
                hits += 1
            elif p.is_dir():
                for d in _walk_runs(p):
                    found[d.resolve()] = None
                    hits += 1
        if hits == 0:
            raise UsageError(f"no {RESULTS_FILE} found under {pattern!r}")
    return list(found)


def _walk_runs(root: Path) -> list[Path]:
    if (root / RESULTS_FILE).is_file():
        return [root]
    runs: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        if RESULTS_FILE in filenames:
            runs.append(Path(dirpath))
            dirnames[:] = []
    return runs


def load_runs(patterns: Iterable[str]) -> list[RunResult]:
    """Load every run that ``patterns`` (dirs, ``results.json`` files, globs) point at."""
    return [load_run(d) for d in find_result_dirs(patterns)]

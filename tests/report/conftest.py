"""Helpers that write synthetic result dirs following docs/results-contract.md."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

DEFAULT_PROTOCOL = {
    "dataset": {"path": "synthetic/ds", "name": "default", "split": "validation"},
    "prompt": "{question}\nAnswer the question using a single word or phrase.",
    "generation": {"max_new_tokens": 16, "temperature": 0.0},
    "metric": "accuracy",
}


def sample(
    sid: Any, score: float | None = None, *, name: str = "accuracy", error: str | None = None, **extra: Any
) -> dict[str, Any]:
    """One samples/<task>.jsonl record; ``score=None`` with ``error`` makes an errored sample."""
    rec: dict[str, Any] = {
        "id": str(sid),
        "prompt": extra.pop("prompt", f"question {sid}?"),
        "prediction": extra.pop("prediction", f"pred {sid}"),
        "target": extra.pop("target", [f"gold {sid}"]),
        "scores": {} if score is None else {name: score},
        "error": error,
        "error_type": "model" if error else None,
        "metadata": extra.pop("metadata", {}),
        "fingerprint": f"fp{sid}",
    }
    rec.update(extra)
    return rec


def _mean_of(spec: dict[str, Any], samples: Sequence[dict[str, Any]]) -> float | None:
    if spec.get("kind") == "corpus":
        return None
    vals = []
    groups: dict[str, list[float]] = {}
    for s in samples:
        v = s["scores"].get(spec["score"])
        if v is None:
            continue
        meta = s.get("metadata") or {}
        if any(meta.get(k) != w for k, w in (spec.get("where") or {}).items()):
            continue
        vals.append(v)
        if spec["kind"] == "macro":
            groups.setdefault(meta[spec["group"]], []).append(v)
    if spec["kind"] == "macro":
        return sum(sum(g) / len(g) for g in groups.values()) / len(groups)
    return sum(vals) / len(vals) if vals else None


def write_run(
    path: Path,
    tasks: dict[str, dict[str, Any]],
    *,
    model: str = "tiny",
    model_extra: dict[str, Any] | None = None,
    end_time: str = "2026-11-22T03:20:00+00:00",
    config: dict[str, Any] | None = None,
) -> Path:
    """Write ``path/results.json`` and ``path/samples/<task>.jsonl``.

    Each task dict has ``samples`` and optionally ``aggregation`` (default: mean of
    ``accuracy``), ``metrics`` (default: computed from the samples), ``main_metric``,
    ``paper_scale`` (default 100), ``breakdowns``, ``protocol`` (merged into the default),
    ``cluster_key`` (default none). ``config``: the run's resolved config (e.g. ``{"limit": 3}``).
    """
    path.mkdir(parents=True, exist_ok=True)
    (path / "samples").mkdir(exist_ok=True)
    entries = {}
    for name, spec in tasks.items():
        samples = spec["samples"]
        aggregation = spec.get("aggregation", {"accuracy": {"kind": "mean", "score": "accuracy"}})
        metrics = spec.get("metrics") or {m: _mean_of(a, samples) for m, a in aggregation.items()}
        n_errors = sum(1 for s in samples if s.get("error"))
        protocol = json.loads(json.dumps(DEFAULT_PROTOCOL))
        protocol.update(spec.get("protocol", {}))
        entries[name] = {
            "metrics": metrics,
            "main_metric": spec.get("main_metric", next(iter(metrics))),
            "paper_scale": spec.get("paper_scale", 100),
            "aggregation": aggregation,
            "breakdowns": spec.get("breakdowns", {}),
            "n_samples": len(samples),
            "n_scored": len(samples) - n_errors,
            "n_errors": n_errors,
            "counts": {},
            "task_version": spec.get("task_version", f"{name}-1"),
            "protocol": protocol,
            "submission_file": None,
            "cluster_key": spec.get("cluster_key"),
        }
        with (path / "samples" / f"{name}.jsonl").open("w", encoding="utf-8") as f:
            for s in samples:
                f.write(json.dumps(s, ensure_ascii=False) + "\n")
    model_info = {
        "name": model,
        "backend": "hf",
        "pretrained": f"org/{model}",
        "dtype": "bfloat16",
        "min_pixels": 3136,
        "max_pixels": 200704,
    }
    model_info.update(model_extra or {})
    results = {
        "schema_version": 1,
        "tasks": entries,
        "model": model_info,
        "config": dict(config or {}),
        "provenance": {"evalkit_version": "0.1.0", "git_commit": "abc123", "end_time": end_time},
        "timing": {"total_s": 1.0},
    }
    (path / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    return path


@pytest.fixture
def make_run(tmp_path: Path) -> Callable[..., Path]:
    """``make_run("dir", {task: {...}}, model=...)`` writes a run under tmp_path."""

    def _make(name: str, tasks: dict[str, dict[str, Any]], **kw: Any) -> Path:
        return write_run(tmp_path / name, tasks, **kw)

    return _make


@pytest.fixture
def mk_sample() -> Callable[..., dict[str, Any]]:
    """The :func:`sample` record builder."""
    return sample

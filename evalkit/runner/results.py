"""Turn a task's records into the files of the results contract (docs/results-contract.md)."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import evalkit
from evalkit.redact import redact
from evalkit.runner.store import RecordStore, write_atomic
from evalkit.tasks.base import Task, TaskResult
from evalkit.types import Record

SCHEMA_VERSION = 1
#: the command line as the user typed it (set by the CLI; Hydra rewrites sys.argv)
COMMAND: list[str] = []
_LIBRARIES = ("torch", "torchvision", "transformers", "datasets", "pillow", "numpy", "tokenizers",
              "pycocoevalcap", "rapidfuzz", "av", "vllm", "openai", "hydra-core")  # fmt: skip


def now_iso() -> str:
    """Current UTC time, ISO 8601."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that can change numbers (read from metadata, no import)."""
    out = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def git_state() -> dict[str, Any]:
    """Commit and dirty flag of the evalkit source tree, when it is a git checkout."""
    root = Path(evalkit.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
        return {"git_commit": commit, "git_dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "git_dirty": None}


def provenance(
    model_identity: Mapping[str, Any],
    dataset_info: Mapping[str, Any],
    seed: int,
    start_time: str,
    end_time: str,
) -> dict[str, Any]:
    """Everything needed to trace a number back to code, weights, data and environment."""
    return {
        "evalkit_version": evalkit.__version__,
        **git_state(),
        "model_id": model_identity.get("pretrained")
        or model_identity.get("model")
        or model_identity.get("backend"),
        "model_revision": model_identity.get("revision"),
        "weights_hash": model_identity.get("weights_hash"),
        "dataset_path": dataset_info.get("path"),
        "dataset_name": dataset_info.get("name"),
        "dataset_split": dataset_info.get("split"),
        "dataset_revision": dataset_info.get("resolved_revision") or dataset_info.get("revision"),
        "dataset_fingerprint": dataset_info.get("fingerprint"),
        "dataset_check": dataset_info.get("check"),  # fallback used / pinned revision, fingerprint changed
        "libraries": library_versions(),
        "seed": seed,
        "start_time": start_time,
        "end_time": end_time,
        "hostname": socket.gethostname(),
        "command": " ".join(COMMAND or ["evalkit", *sys.argv[1:]]),
        "pid": os.getpid(),
    }


def finalize_task(task: Task, records: Sequence[Record], output_dir: Path) -> TaskResult:
    """Aggregate, then write ``samples/<task>.jsonl`` (dataset order) and the submission file if any."""
    result = task.aggregate(records)  # may add per-sample scores (e.g. per-image CIDEr) first
    RecordStore(output_dir, task.name).write_samples(records)
    if not task.has_targets:
        path = task.write_submission(records, output_dir / "submission" / f"{task.name}.json")
        result.submission_file = str(path.relative_to(output_dir)) if path else None
    return result


def write_results(
    output_dir: Path,
    task_name: str,
    result: TaskResult,
    model_block: Mapping[str, Any],
    config: Mapping[str, Any],
    prov: Mapping[str, Any],
    timing: Mapping[str, Any],
) -> dict[str, Any]:
    """Write ``results.json`` atomically; other tasks already in the file are kept."""
    path = output_dir / "results.json"
    existing: dict[str, Any] = {}
    if path.exists():
        try:
            existing = json.loads(path.read_text())
        except json.JSONDecodeError:
            existing = {}
    tasks = dict(existing.get("tasks") or {})
    tasks[task_name] = result.to_json()
    data = {
        "schema_version": SCHEMA_VERSION,
        "tasks": tasks,
        "model": dict(model_block),
        "config": dict(config),
        "provenance": dict(prov),
        "timing": dict(timing),
    }
    data = redact(data)
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    write_atomic(path, text, fault="results_write")  # reliability: fault point (issue 9)
    return data

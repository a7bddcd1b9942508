"""Evaluation identity: what makes two runs the *same* evaluation, written to ``run.json``.

A run folder holds exactly one evaluation. Its identity is

* the task: name, plugin version and its whole resolved config (prompt preset and template,
  generation parameters, dataset path/name/split/revision, subset, task-specific knobs) — split into
  the part that shapes the *requests* and the part that only changes *scoring* (``metric``,
  ``choice_fallback``...);
* the dataset actually loaded: the ``datasets`` fingerprint and resolved revision;
* the sample selection: ``limit``;
* the model: its identity hash (backend, checkpoint revision or weight-file hash, dtype, pixel
  budget, chat template) and a readable summary;
* the seed (it matters once decoding samples) and the judge, for judge-scored tasks.

:func:`check_resume` compares the identity of a new run with the one in ``run.json`` *before any
model work* and fails with one line that names what changed. Records additionally carry the request
fingerprint and the model identity they were produced under, and the runner reuses a record only
when both still agree (see :mod:`evalkit.runner.runner`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError

RUN_FILE = "run.json"
IDENTITY_VERSION = 1

#: task config keys that never change a number (labels, grouping)
COSMETIC_TASK_KEYS = frozenset({"description", "area"})
#: task config keys that change scores but not the requests (re-scoring is enough)
SCORING_TASK_KEYS = frozenset({"metric", "choice_fallback", "submission", "abilities"})
#: model config keys that are operational (speed, placement, credentials), not part of the model
OPERATIONAL_MODEL_KEYS = frozenset(
    {
        "description", "batch_size", "cache_dir", "concurrency", "timeout_s", "max_retries",
        "retry_backoff_s", "api_key_env", "api_key", "headers", "device_map", "gpus", "plugin_module",
        "tensor_parallel_size", "gpu_memory_utilization", "enforce_eager", "max_model_len",
        "connect_timeout_s", "max_cost", "probe", "seed", "fit_images",
    }
)  # fmt: skip


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str)


def short_hash(obj: Any, n: int = 8) -> str:
    """The first ``n`` hex digits of the sha256 of ``obj``'s canonical JSON."""
    return hashlib.sha256(_canonical(obj).encode()).hexdigest()[:n]


def _split_task_config(task_cfg: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    requests, scoring = {}, {}
    for k, v in task_cfg.items():
        if k in COSMETIC_TASK_KEYS:
            continue
        (scoring if k in SCORING_TASK_KEYS else requests)[k] = v
    return requests, scoring


def config_identity(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The part of the identity known from the composed config alone (no dataset, no weights).

    Used for the default output folder name, so evaluations that differ land in different folders."""
    task_requests, task_scoring = _split_task_config(dict(cfg.get("task") or {}))
    model = {k: v for k, v in dict(cfg.get("model") or {}).items() if k not in OPERATIONAL_MODEL_KEYS}
    return {
        "task": task_requests,
        "scoring": task_scoring,
        "model": model,
        "limit": cfg.get("limit"),
        "seed": cfg.get("seed"),
    }


def _model_label(cfg: Mapping[str, Any]) -> str:
    m = dict(cfg.get("model") or {})
    name = str(m.get("name") or "model")
    pretrained = m.get("pretrained") or m.get("model")
    if isinstance(pretrained, str) and pretrained and not pretrained.startswith("evalkit://"):
        base = pretrained.rstrip("/").rsplit("/", 1)[-1]
        if base and base != name:
            name = f"{name}-{base}"
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name)[:80]


def default_output_dir(cfg: Mapping[str, Any]) -> str:
    """``outputs/<task>/<model>[-<checkpoint>]-<hash8>``: one folder per distinct evaluation.

    The hash covers :func:`config_identity` (task config, model config less operational keys,
    limit, seed), so a different prompt, checkpoint, pixel budget or limit never shares a folder."""
    task = re.sub(r"[^A-Za-z0-9._+-]", "_", str((cfg.get("task") or {}).get("name") or "task"))
    return f"outputs/{task}/{_model_label(cfg)}-{short_hash(config_identity(cfg))}"


def evaluation_identity(cfg: Mapping[str, Any], task: Any, model: Any) -> dict[str, Any]:
    """The full identity of a run once its dataset is loaded (the model is never loaded for it)."""
    task_requests, task_scoring = _split_task_config(dict(cfg.get("task") or {}))
    info = dict(getattr(task, "dataset_info", {}) or {})
    judge = dict(cfg.get("judge") or {})
    judge_id = {k: judge.get(k) for k in ("name", "model", "base_url", "backend") if judge.get(k)} or None
    return {
        "identity_version": IDENTITY_VERSION,
        "task": {
            "name": task.name,
            "version": f"{task.name}-{task.version}",
            "config": task_requests,
        },
        "scoring": {"config": task_scoring, "judge": judge_id},
        "dataset": {
            "path": info.get("path"),
            "name": info.get("name"),
            "split": info.get("split"),
            "revision": info.get("resolved_revision") or info.get("revision"),
            "fingerprint": info.get("fingerprint"),
        },
        "limit": cfg.get("limit"),
        "seed": cfg.get("seed"),
        "model": {
            "identity": model.identity_hash(),
            "name": (cfg.get("model") or {}).get("name"),
            "pretrained": (cfg.get("model") or {}).get("pretrained") or (cfg.get("model") or {}).get("model"),
            "resolved": model.identity(),
        },
    }


def identity_hash(identity: Mapping[str, Any]) -> str:
    """sha256 of the whole identity."""
    return hashlib.sha256(_canonical(identity).encode()).hexdigest()


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, Mapping) and obj:
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: obj}


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else _canonical(value)
    return text if len(text) <= 40 else text[:37] + "..."


def describe_changes(old: Mapping[str, Any], new: Mapping[str, Any], limit: int = 3) -> list[str]:
    """Human-readable differences, most telling first (``task.prompt: 'default' -> 'qwen_vl'``)."""
    a, b = _flatten(old), _flatten(new)
    changes = []
    for key in sorted(set(a) | set(b)):
        if key.startswith(("model.resolved", "model.identity")) or key == "identity_version":
            continue
        if a.get(key) != b.get(key):
            shown = key.replace("task.config.", "task.").replace("scoring.config.", "task.")
            changes.append(f"{shown}: {_short(a.get(key))} -> {_short(b.get(key))}")
    if (old.get("model") or {}).get("identity") != (new.get("model") or {}).get("identity"):
        ra = _flatten((old.get("model") or {}).get("resolved") or {})
        rb = _flatten((new.get("model") or {}).get("resolved") or {})
        diff = [f"model {k}: {_short(ra.get(k))} -> {_short(rb.get(k))}" for k in sorted(set(ra) | set(rb))
                if ra.get(k) != rb.get(k)]  # fmt: skip
        changes += diff or ["model identity changed"]
    return changes[:limit] + ([f"... {len(changes) - limit} more"] if len(changes) > limit else [])


def _what(identity: Mapping[str, Any]) -> str:
    m = identity.get("model") or {}
    label = m.get("pretrained") or m.get("name") or "?"
    return f"{(identity.get('task') or {}).get('name')} with model {label}"


def code_state() -> dict[str, Any]:
    """The evalkit code that builds requests: version, git commit and dirty flag."""
    import evalkit
    from evalkit.runner.results import git_state

    return {"evalkit_version": evalkit.__version__, **git_state()}


def read_run_file(output_dir: Path) -> dict[str, Any] | None:
    """The identity stored in ``<output_dir>/run.json`` (None when there is none or it is unreadable)."""
    path = Path(output_dir) / RUN_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def has_previous_work(output_dir: Path, task_name: str) -> bool:
    """True when the folder holds records of an earlier attempt for this task."""
    from evalkit.runner.store import _safe

    parts = Path(output_dir) / "parts" / _safe(task_name)
    return parts.exists() and any(p.stat().st_size > 0 for p in parts.glob("rank-*.jsonl"))


def check_resume(output_dir: Path, identity: Mapping[str, Any], resume: bool = True) -> None:
    """Refuse to continue (or overwrite) a different evaluation in ``output_dir``.

    Raises :class:`~evalkit.errors.EvalkitError` with one line naming what changed when the folder's
    ``run.json`` describes another evaluation of the same or another task. ``resume=False``
    (``runner.resume=false``) explicitly starts the folder's evaluation over and is allowed."""
    from evalkit.redact import redact

    stored = read_run_file(output_dir)
    if stored is None or not resume:
        return
    identity = redact(dict(identity))  # run.json stores the redacted identity
    old = stored.get("identity") or {}
    tasks = stored.get("tasks") or {}
    name = identity["task"]["name"]
    if name in tasks:
        old = tasks[name]
    elif old.get("task", {}).get("name") != name:
        return  # a folder may hold several tasks of one model: a new task is a new entry
    if identity_hash(old) == identity_hash(identity):
        return
    changes = describe_changes(old, identity)
    scoring_only = all(
        c.startswith(("task.metric", "task.choice_fallback", "scoring.", "task.submission")) for c in changes
    )
    hint = (
        f"re-score it without the model with `evalkit score {output_dir}` and the new scorer settings, "
        "or use a new output_dir"
        if scoring_only and changes
        else "use a new output_dir, or runner.resume=false to start this folder over"
    )
    raise EvalkitError(
        f"output_dir {output_dir} holds a run of {_what(old)}; this run differs "
        f"({'; '.join(changes) or 'identity changed'}); {hint}"
    )


def write_run_file(output_dir: Path, identity: Mapping[str, Any]) -> Path:
    """Record this run's identity in ``run.json`` (atomically), keeping other tasks' entries."""
    from evalkit.redact import redact
    from evalkit.runner.store import write_atomic

    path = Path(output_dir) / RUN_FILE
    stored = read_run_file(output_dir) or {}
    tasks = dict(stored.get("tasks") or {})
    tasks[identity["task"]["name"]] = dict(identity)
    data = redact(
        {
            "identity_version": IDENTITY_VERSION,
            "identity": dict(identity),
            "tasks": tasks,
            "code": code_state(),
        }
    )
    data["identity_hash"] = identity_hash(data["identity"])
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    return path

"""Optional experiment logging: ``runner.log_to=wandb`` or ``runner.log_to=mlflow`` (off by default).

At the end of a run (after results.json is written) the tracker receives the run's metrics, its
config (secrets redacted) and the samples table (id, question, prediction, target, scores, error),
so an evaluation lands where its users already keep their training runs. The tracker's package is
imported only when asked for (neither is a dependency of evalkit); ``runner.log_project`` names
the wandb project / mlflow experiment (default ``evalkit``). The tracker's usual environment
variables (``WANDB_MODE``, ``WANDB_API_KEY``, ``MLFLOW_TRACKING_URI`` ...) apply.

The choice is checked before any model work (a misspelt name or a missing package is one line);
a tracker that fails while logging (network down) only costs a warning: results.json is written
already and the run's exit status does not change.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.errors import MissingDependencyError, UsageError
from evalkit.types import Record

log = logging.getLogger("evalkit")

TRACKERS = ("wandb", "mlflow")
#: columns of the samples table, in order
SAMPLE_COLUMNS = ("id", "question", "prediction", "target", "scores", "error")


def tracker_name(cfg: Mapping[str, Any]) -> str | None:
    """``runner.log_to`` (None when off)."""
    value = (cfg.get("runner") or {}).get("log_to")
    return None if value in (None, "", "none", "null", False) else str(value)


def check_tracker(cfg: Mapping[str, Any]) -> None:
    """Fail with one line on an unknown ``runner.log_to`` or a tracker package that is not installed."""
    name = tracker_name(cfg)
    if name is None:
        return
    if name not in TRACKERS:
        raise UsageError(
            f"runner.log_to={name!r} is not a tracker evalkit knows; use one of: {', '.join(TRACKERS)}"
        )
    _import(name)


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise MissingDependencyError(
            f"runner.log_to={name} needs the {name} package, which is not installed: pip install {name}"
        ) from exc


def flat_metrics(results: Mapping[str, Any]) -> dict[str, float]:
    """``<task>/<metric>`` → value for every numeric metric of results.json (None values dropped)."""
    out: dict[str, float] = {}
    for task, block in (results.get("tasks") or {}).items():
        for metric, value in (block.get("metrics") or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[f"{task}/{metric}"] = float(value)
        for key in ("n_samples", "n_errors"):
            if isinstance(block.get(key), int):
                out[f"{task}/{key}"] = float(block[key])
    return out


def flat_params(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """The config as ``a.b.c`` → text (what mlflow's parameters take)."""
    out: dict[str, str] = {}
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flat_params(value, f"{name}."))
        else:
            out[name] = (
                json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else value
            )
    return out


def sample_rows(records: Iterable[Record]) -> list[list[Any]]:
    """One row per record, columns :data:`SAMPLE_COLUMNS` (target and scores as JSON text)."""
    rows = []
    for r in records:
        rows.append(
            [
                r.id,
                r.extra.get("question"),
                r.prediction,
                json.dumps(r.target, ensure_ascii=False, default=str),
                json.dumps(r.scores, ensure_ascii=False),
                r.error,
            ]
        )
    return rows


def log_run(
    cfg: Mapping[str, Any], results: Mapping[str, Any], records: Sequence[Record], output_dir: Path
) -> None:
    """Send metrics, config and samples to the configured tracker (a no-op when ``runner.log_to`` is off)."""
    name = tracker_name(cfg)
    if name is None:
        return
    from evalkit.redact import redact

    config = redact(dict(results.get("config") or cfg))
    project = str((cfg.get("runner") or {}).get("log_project") or "evalkit")
    run_name = Path(str(cfg.get("output_dir") or output_dir)).name
    try:
        module = _import(name)
        logger = _log_wandb if name == "wandb" else _log_mlflow
        logger(
            module,
            TrackedRun(project, run_name, config, flat_metrics(results), sample_rows(records), output_dir),
        )
    except MissingDependencyError:
        raise
    except Exception as exc:  # noqa: BLE001 - a tracker outage must not fail a finished run
        log.warning(
            "runner.log_to=%s: logging failed (%s: %s); results.json is written",
            name,
            type(exc).__name__,
            exc,
        )


@dataclass(frozen=True)
class TrackedRun:
    """What a tracker receives about one finished run."""

    #: wandb project / mlflow experiment (``runner.log_project``)
    project: str
    #: the run folder's name
    run_name: str
    #: the run's config, secrets redacted
    config: Mapping[str, Any]
    #: flat ``<task>/<metric>`` numbers (:func:`flat_metrics`)
    metrics: Mapping[str, float]
    #: the samples table, one row per record in :data:`SAMPLE_COLUMNS` order
    rows: list[list[Any]]
    #: the run folder (holds results.json)
    output_dir: Path


def _log_wandb(wandb: Any, tracked: TrackedRun) -> None:
    run = wandb.init(
        project=tracked.project,
        name=tracked.run_name,
        config=dict(tracked.config),
        dir=str(tracked.output_dir),
        reinit=True,
    )
    try:
        run.log(dict(tracked.metrics))
        for key, value in tracked.metrics.items():
            run.summary[key] = value
        run.log({"samples": wandb.Table(columns=list(SAMPLE_COLUMNS), data=tracked.rows)})
    finally:
        run.finish()


def _log_mlflow(mlflow: Any, tracked: TrackedRun) -> None:
    mlflow.set_experiment(tracked.project)
    with mlflow.start_run(run_name=tracked.run_name):
        params = {k: v[:500] for k, v in flat_params(tracked.config).items()}  # mlflow caps parameter values
        mlflow.log_params(params)
        mlflow.log_metrics(dict(tracked.metrics))
        columns = {c: [row[i] for row in tracked.rows] for i, c in enumerate(SAMPLE_COLUMNS)}
        mlflow.log_table(data=columns, artifact_file="samples.json")
        results = tracked.output_dir / "results.json"
        if results.exists():
            mlflow.log_artifact(str(results))

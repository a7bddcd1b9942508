"""The one place a run is orchestrated: prepare → run → finish.

::

    cli.py (evalkit run) ─┐
    api.py (evaluate)  ───┼─► pipeline.run_from_config ─► prepare (task, model objects: no weights)
                          │        │                   ─► open_evaluation (dataset, run.json, config.yaml)
                          │        ├─ one rank ────────► Runner.run (build ▸ prepare ▸ generate ▸ score ▸ write)
                          │        └─ ranks ───────────► runner.distributed.run_distributed(cfg, STAGES)
                          │                            ─► finish (aggregate, results.json, tracker)
    evalkit score ────────┘  (runner.rescore: the same prepare / mark_health, model stage skipped)

Nothing below this module imports it: the multi-rank launcher receives the stages it runs as an
argument (:data:`STAGES`), and the spawned rank's entry point (``runner/distributed_worker``)
hands them in. See docs/architecture.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.models.base import Model, build_model
from evalkit.runner.distributed import Stages
from evalkit.runner.results import finalize_task, now_iso, provenance, write_results
from evalkit.runner.runner import BackgroundLoad, Runner, RunnerOptions, RunStats
from evalkit.runner.store import OutputLock
from evalkit.tasks.base import Task
from evalkit.tasks.registry import build_task
from evalkit.types import Record

log = logging.getLogger("evalkit")


class IncompleteRunError(EvalkitError):
    """The run finished but its results cannot be trusted (nothing scored, too many errors).

    ``results`` holds what was written to results.json (marked ``status: "incomplete"``)."""

    def __init__(self, message: str, results: dict[str, Any]):
        super().__init__(message)
        self.results = results


def runner_options(cfg: Mapping[str, Any], rank: int = 0, world_size: int = 1) -> RunnerOptions:
    """Runner options from the top-level overrides and the ``runner`` group."""
    r = dict(cfg.get("runner") or {})
    limit = cfg.get("limit")
    verify = r.get("verify_resumed", "auto")
    return RunnerOptions(
        batch_size=int(cfg["batch_size"]) if cfg.get("batch_size") else None,
        limit=None if limit is None else int(limit),
        cache=bool(r.get("cache", True)),
        cache_dir=str(cfg.get("cache_dir") or "~/.cache/evalkit"),
        progress=bool(r.get("progress", True)),
        thumbnails=int(r.get("thumbnails", 200)),
        window_batches=int(r.get("window_batches", 8)),
        sort_by_length=bool(r.get("sort_by_length", True)),
        max_consecutive_model_errors=int(r.get("max_consecutive_model_errors", 50)),
        max_error_rate=float(r.get("max_error_rate", DEFAULT_MAX_ERROR_RATE)),
        verify_resumed=True if verify == "auto" else bool(verify),
        workers=None if r.get("workers") is None else int(r["workers"]),
        prefetch_batches=None if r.get("prefetch_batches") is None else int(r["prefetch_batches"]),
        generate_threads=None if r.get("generate_threads") is None else int(r["generate_threads"]),
        rank=rank,
        world_size=world_size,
    )


#: default ``runner.max_error_rate``: more errors than this share make the run fail
DEFAULT_MAX_ERROR_RATE = 0.05


def save_config(cfg: Mapping[str, Any], output_dir: Path) -> Path:
    """Write the resolved config, secrets redacted, to ``<output_dir>/config.yaml`` (atomically)."""
    import yaml

    from evalkit.redact import redact
    from evalkit.runner.store import write_atomic

    path = output_dir / "config.yaml"
    write_atomic(path, yaml.safe_dump(redact(dict(cfg)), sort_keys=False, allow_unicode=True))
    return path


def prepare(cfg: Mapping[str, Any]) -> tuple[Task, Model]:
    """Build the task and model objects (cheap: no weights, dataset not loaded)."""
    from evalkit.runner.distributed import import_plugins

    import_plugins(cfg)  # model.plugin_module: third-party backends register themselves on import
    task = build_task(cfg["task"])
    model_cfg = dict(cfg["model"])
    model_cfg.setdefault("cache_dir", cfg.get("cache_dir"))
    model_cfg.setdefault("seed", cfg.get("seed", 0))
    if cfg.get("batch_size") and not model_cfg.get("batch_size"):
        model_cfg["batch_size"] = cfg["batch_size"]
    return task, build_model(model_cfg)


def model_block(model: Model, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The ``model`` block of results.json."""
    m = dict(cfg.get("model") or {})
    ident = model.identity()
    keep = ("name", "backend", "pretrained", "revision", "dtype", "min_pixels", "max_pixels", "box_convention",
            "base_url", "video")  # fmt: skip
    out = {k: m.get(k) for k in keep if k in m}
    if "base_url" in ident:  # the sanitised endpoint (no credentials or query secrets)
        out["base_url"] = ident["base_url"]
    out.update({"identity": model.identity_hash(), "resolved": ident})
    return out


def run_from_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Run one task with one model as configured; returns the results.json content.

    With ``runner.nproc > 1``, or under ``torchrun`` (``WORLD_SIZE > 1``), the work is sharded over
    data-parallel ranks by :mod:`evalkit.runner.distributed`.
    """
    from evalkit.config_check import validate_config
    from evalkit.redact import register_config_secrets

    cfg = dict(cfg)
    validate_config(cfg)
    register_config_secrets(cfg)
    from evalkit import warmup

    # the backend's libraries were imported in the background while the config was composed; from
    # here on the main thread may import them too (a half-imported torch or transformers breaks
    # its importers, `datasets` among them): wait for that import to complete
    warmup.wait()
    if not cfg.get("output_dir"):
        from evalkit.runner.identity import default_output_dir

        cfg["output_dir"] = default_output_dir(cfg)
    from evalkit.runner.distributed import distributed_requested, run_distributed

    if distributed_requested(cfg):
        return run_distributed(cfg, STAGES)
    output_dir = Path(str(cfg["output_dir"])).expanduser()
    t0 = time.perf_counter()
    start = now_iso()
    task, model = prepare(cfg)
    with OutputLock(output_dir):
        loading = start_load_ahead(cfg, model, output_dir)
        try:
            options = open_evaluation(cfg, task, model, output_dir)
            runner = Runner(task, model, output_dir, options)
            runner.loading = loading
            runner.stats.extra["load_ahead"] = loading is not None
            # building task and model, the lock, the dataset, the identity check, run.json
            runner.stats.extra["open_s"] = round(time.perf_counter() - t0, 4)
            records = runner.run()
        except BaseException:
            # a failure (no dataset, another evaluation in the folder, an interrupt) is reported
            # now, not once the weights have loaded: the load thread is a daemon, and the model
            # is not closed while it loads
            raise
        if loading is not None:
            loading.wait_quietly()  # never close (or drop) a model while it is being loaded
        model.close()
        records = task.after_generation(records, cfg, output_dir)
        return finish(cfg, task, model, records, runner.stats, start, time.perf_counter() - t0)


def start_load_ahead(cfg: Mapping[str, Any], model: Model, output_dir: Path) -> BackgroundLoad | None:
    """Start loading the weights now, in the background, when the run will certainly need them:
    a fresh output folder (nothing to resume) and no response of this model in the response cache
    (or the cache off). Loading then overlaps loading the dataset and building the first requests.

    Only for backends whose heavy imports are known (``Model.warm_modules``): those imports are
    complete before the load starts and before ``datasets`` is touched (see :mod:`evalkit.warmup`). A rerun
    that may be served from the cache or resumed keeps the lazy load (the model is loaded at the
    first request that misses the cache, or never). A model still to be built (the tiny model's
    first use) is built after the dataset has opened, in the main thread."""
    from evalkit import warmup

    if not type(model).warm_modules or model.loaded:
        return None
    if (output_dir / "parts").exists() or (output_dir / "samples").exists():
        return None  # a resumed run: maybe nothing is left to generate
    if not model.resolves_cheaply():
        # a model yet to be made (the tiny model's first build and training): the dataset is opened
        # first, so that a bad path is said before that, and no build is left behind by a failure
        return None
    runner_cfg = dict(cfg.get("runner") or {})
    if runner_cfg.get("cache", True):
        from evalkit.runner.cache import open_cache

        cache_dir = Path(str(cfg.get("cache_dir") or "~/.cache/evalkit")).expanduser()
        cache, _ = open_cache(cache_dir / "responses.sqlite")
        if cache is not None:
            try:
                if cache.has_model(model.identity_hash()):
                    return None  # maybe everything is cached: load only when a request misses
            finally:
                cache.close()
    warmup.start(str((cfg.get("model") or {}).get("backend") or "hf"))
    warmup.wait()  # the load thread then imports nothing the main thread could meet half-imported
    return BackgroundLoad(model)


def open_evaluation(cfg: Mapping[str, Any], task: Task, model: Model, output_dir: Path) -> RunnerOptions:
    """Everything between taking the output lock and the first model call, in order: load the
    dataset, check that ``output_dir`` holds no other evaluation (``run.json``), clear it when
    ``runner.resume=false``, write ``run.json`` and the redacted ``config.yaml``, run the task's
    ``before_run`` hook (e.g. a judge health check). Returns the runner options."""
    from evalkit.runner.identity import (
        check_resume,
        code_state,
        evaluation_identity,
        read_run_file,
        write_run_file,
    )
    from evalkit.tracking import check_tracker

    check_tracker(cfg)  # a misspelt or missing tracker fails now, not after the run
    resume = bool((cfg.get("runner") or {}).get("resume", True))
    task.load()
    identity = evaluation_identity(cfg, task, model)
    check_resume(output_dir, identity, resume=resume)
    previous = read_run_file(output_dir)
    if not resume and (output_dir / "parts").exists():
        import shutil

        shutil.rmtree(output_dir / "parts")  # only once the lock is ours
    options = runner_options(cfg)
    if (cfg.get("runner") or {}).get("verify_resumed", "auto") == "auto":
        # records made by this very code for an identical evaluation need no rebuild to be trusted
        same_code = previous is not None and _same_code(previous.get("code") or {}, code_state())
        options.verify_resumed = not same_code
    write_run_file(output_dir, identity)
    save_config(cfg, output_dir)
    task.before_run(cfg, output_dir)
    return options


def finish(
    cfg: Mapping[str, Any],
    task: Task,
    model: Model,
    records: list[Record],
    stats: RunStats,
    start: str,
    total_s: float,
) -> dict[str, Any]:
    """Aggregate the records, write samples/submission/results.json; returns the results dict."""
    output_dir = Path(str(cfg.get("output_dir") or "outputs")).expanduser()
    result = finalize_task(task, records, output_dir)
    n_done = stats.n_generated + stats.n_cached + stats.n_input_errors + stats.n_model_errors
    timing = {
        "total_s": round(total_s, 4),
        "model_s": round(stats.model_s, 4),
        "load_s": round(stats.load_s, 4),
        "samples_per_s": round(n_done / total_s, 4) if total_s > 0 else None,
        "n_generated": stats.n_generated,
        "n_cached": stats.n_cached,
        "n_resumed": stats.n_resumed,
        "model_loaded": stats.model_loaded,
        **stats.extra,
    }
    if stats.n_stale:
        timing["n_stale_redone"] = stats.n_stale
    if stats.n_truncated:
        result.counts["truncated"] = result.counts.get("truncated", 0) + stats.n_truncated
    if stats.cache_problem:
        timing["cache_disabled"] = stats.cache_problem
    max_rate = float((cfg.get("runner") or {}).get("max_error_rate", DEFAULT_MAX_ERROR_RATE))
    problem = mark_health(result, max_rate)
    prov = provenance(model.identity(), task.dataset_info, int(cfg.get("seed") or 0), start, now_iso())
    results = write_results(output_dir, task.name, result, model_block(model, cfg), dict(cfg), prov, timing)
    from evalkit.tracking import log_run

    log_run(cfg, results, records, output_dir)  # runner.log_to=wandb|mlflow; off by default
    if problem:
        raise IncompleteRunError(
            f"{task.name}: {problem}; results written to {output_dir} (marked incomplete)", results
        )
    return results


def _same_code(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Same evalkit version and git commit (uncommitted edits do not count: set
    ``runner.verify_resumed=true`` while changing request-building code)."""
    return all(old.get(k) == new.get(k) for k in ("evalkit_version", "git_commit"))


def mark_health(result: Any, max_error_rate: float) -> str | None:
    """Set ``result.status`` to ``complete`` or ``incomplete`` (with the reason) and return the reason
    when the numbers cannot be trusted: no record, nothing scored, or more errors than
    ``max_error_rate`` of the samples (``runner.max_error_rate``)."""
    n, n_err = result.n_samples, result.n_errors
    problem = None
    if n == 0:
        problem = "no sample was evaluated"
    elif n_err == n:
        problem = f"every sample failed ({n_err} of {n} are error records)"
    elif result.n_scored == 0 and result.metrics:
        problem = f"no sample was scored ({n_err} of {n} are error records)"
    elif n_err / n > max_error_rate:
        problem = (
            f"{n_err} of {n} samples ({n_err / n:.1%}) are error records, more than "
            f"runner.max_error_rate={max_error_rate:g}; the metrics cover only the other {n - n_err}"
        )
    result.status = "incomplete" if problem else "complete"
    result.status_reason = problem
    return problem


#: the stages handed to the multi-rank launcher (:mod:`evalkit.runner.distributed`)
STAGES = Stages(
    prepare=prepare, open_evaluation=open_evaluation, runner_options=runner_options, finish=finish
)

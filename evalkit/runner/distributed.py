"""Data-parallel runs: one model replica per rank, each evaluating its shard (issue 6).

Two ways to get ranks:

* **Launcher** (``runner=multigpu runner.nproc=n``, no ``torchrun``): this process becomes the
  coordinator. It takes the output-directory lock, repairs torn part files, spawns ``n`` worker
  processes (``python -m evalkit.runner.distributed_worker``) with ``RANK``/``WORLD_SIZE``/
  ``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT`` set, its own GPUs (``CUDA_VISIBLE_DEVICES`` =
  ``runner.gpus_per_rank`` GPUs per rank) or, without GPUs, ``cores // n`` CPU threads each, and
  waits for them. When a worker exits non-zero it terminates the others at once and fails with
  ``rank N failed while processing sample <id>``. A watchdog kills a rank that makes no progress
  (its status and part files unchanged) for ``runner.rank_timeout_s`` — a hung or stopped
  process — and fails the run the same way, naming the rank and the sample it was on. Once every worker has exited cleanly it merges
  all part files and scores (the pipeline's ``finish`` stage).
* **torchrun** (``WORLD_SIZE > 1`` in the environment, single- or multi-node): every process is a
  rank. ``torch.distributed`` (gloo on CPU, nccl on GPU, plus a gloo group for control messages)
  carries the lock decision from rank 0 to all ranks, the final barrier (``monitored_barrier``
  with ``runner.timeout_s``, naming a rank that never arrives) and the per-rank statistics. Rank 0
  alone holds the output lock, merges and scores. A crashed rank is handled by torchrun's agent,
  which tears the group down; the status files still say which sample the rank was on.

Every rank appends its finished records to ``parts/<task>/rank-<r>.jsonl`` (written out per batch,
fsynced within a second) and, before each batch, writes the ids it is working on to
``parts/<task>/status/rank-<r>.json``.
Sharding is over the *pending* samples (``index % world_size == rank``), so a run stopped under one
world size resumes under any other and does exactly the missing samples. The pending list is
snapshotted once, by the launcher or torchrun's rank 0, before any rank starts: were every rank to
list the finished samples itself, a rank starting late would see what a fast rank had already
written and shard a shorter list, so samples would fall between the shards.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError, UsageError
from evalkit.models.base import Model
from evalkit.runner.runner import Runner, RunStats
from evalkit.runner.store import OutputLock, RecordStore, _safe, read_jsonl_records
from evalkit.tasks.base import Task
from evalkit.types import Record, Sample

log = logging.getLogger("evalkit")

#: environment variable carrying the rank's JSON config path from the launcher to a worker
CONFIG_ENV = "EVALKIT_DIST_CONFIG"


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class DistSettings:
    """The ``runner`` keys that shape a data-parallel run."""

    nproc: int = 1
    gpus_per_rank: int = 1
    backend: str = "auto"
    timeout_s: float = 1800.0
    master_port: int | None = None
    #: launcher mode: kill a rank whose status/part files have not changed for this long (0: never)
    rank_timeout_s: float = 1800.0

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> DistSettings:
        """Read ``runner.nproc``, ``gpus_per_rank``, ``backend``, ``timeout_s``, ``master_port``,
        ``rank_timeout_s``."""
        r = dict(cfg.get("runner") or {})
        port = r.get("master_port")
        rank_timeout = r.get("rank_timeout_s")
        settings = cls(
            nproc=int(r.get("nproc") or 1),
            gpus_per_rank=int(r.get("gpus_per_rank") or 1),
            backend=str(r.get("backend") or "auto"),
            timeout_s=float(r.get("timeout_s") or 1800.0),
            master_port=int(port) if port else None,
            rank_timeout_s=1800.0 if rank_timeout is None else float(rank_timeout),
        )
        if settings.rank_timeout_s < 0:
            raise UsageError("runner.rank_timeout_s must be >= 0 (0 disables the rank watchdog)")
        if settings.nproc < 1 or settings.gpus_per_rank < 1:
            raise UsageError("runner.nproc and runner.gpus_per_rank must be >= 1")
        if settings.backend not in ("auto", "gloo", "nccl"):
            raise UsageError(f"runner.backend={settings.backend!r}; use auto, gloo or nccl")
        return settings


def distributed_requested(cfg: Mapping[str, Any]) -> bool:
    """True for ``runner.nproc > 1`` or when launched by torchrun with ``WORLD_SIZE > 1``."""
    nproc = int((cfg.get("runner") or {}).get("nproc") or 1)
    return nproc > 1 or int(os.environ.get("WORLD_SIZE", "1")) > 1


def under_torchrun() -> bool:
    """True when this process is one rank of a group started by torchrun (or a compatible agent)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def import_plugins(cfg: Mapping[str, Any]) -> None:
    """Import ``model.plugin_module`` (one module name or a list) so that backends it registers
    with :func:`evalkit.models.base.register_backend` exist in this process and in every rank."""
    mods = (cfg.get("model") or {}).get("plugin_module") or []
    for name in [mods] if isinstance(mods, str) else list(mods):
        try:
            importlib.import_module(str(name))
        except ImportError as exc:
            raise UsageError(f"model.plugin_module={name!r} cannot be imported: {exc}") from exc


def output_dir_of(cfg: Mapping[str, Any]) -> Path:
    """The run's output directory (``output_dir``, user-expanded)."""
    return Path(str(cfg.get("output_dir") or "outputs")).expanduser()


def _task_name(cfg: Mapping[str, Any]) -> str:
    return str((cfg.get("task") or {}).get("name") or "task")


# --------------------------------------------------------------------------- status files
def status_path(output_dir: Path, task: str, rank: int) -> Path:
    """``parts/<task>/status/rank-<r>.json``: what rank ``r`` is doing (see :class:`RankStatus`)."""
    return Path(output_dir) / "parts" / _safe(task) / "status" / f"rank-{rank}.json"


@dataclass
class RankStatus:
    """A rank's small status file: its state and the samples of the batch in flight.

    Written (atomically, without fsync: it only has to survive the process, not the machine)
    before every batch, so whoever notices a dead rank can name the sample it died on.
    """

    rank: int
    world_size: int
    state: str = "starting"  # starting | loading | working | done | failed
    samples: list[str] = field(default_factory=list)
    error: str | None = None
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    stats: dict[str, Any] | None = None

    def write(self, path: Path) -> None:
        """Replace the status file with this status."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(asdict(self)), encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: Path) -> RankStatus | None:
        """The status in ``path``, or None when there is none (yet) or it is unreadable."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None


def describe_failure(status: RankStatus | None, rank: int, how: str, finished: Collection[str] = ()) -> str:
    """``rank N failed while processing sample <id>`` (or what else is known), plus ``how``.

    ``finished``: ids the rank's part file already holds. A rank stopped after writing a batch but
    before its status names the next one is said to have failed between batches, not on samples
    that are in fact finished."""
    if status is None or status.state in ("starting", "loading"):
        stage = "while starting up" if status is None or status.state == "starting" else "while loading"
        return f"rank {rank} failed {stage} ({how})"
    if status.state == "done":
        return f"rank {rank} failed after finishing its shard ({how})"
    done = set(finished)
    ids = [i for i in status.samples if i not in done]
    if status.samples and not ids:
        last = status.samples[-1]
        msg = f"rank {rank} failed between batches, after finishing sample {last} ({how})"
    else:
        what = f"sample {ids[0]}" if len(ids) == 1 else f"batch of samples {', '.join(ids)}"
        msg = f"rank {rank} failed while processing {what} ({how})"
    if status.error:
        msg += f": {status.error}"
    return msg


def _finished_ids(output_dir: Path, task: str, rank: int) -> set[str]:
    """Ids in rank ``rank``'s part file (empty when it has none or it cannot be read)."""
    part = Path(output_dir) / "parts" / _safe(task) / f"rank-{rank}.jsonl"
    try:
        return {rec.id for rec in read_jsonl_records(part)}
    except (OSError, ValueError):
        return set()


# --------------------------------------------------------------------------- one rank
def rank_device_env(settings: DistSettings, local_rank: int, gpus: Sequence[str]) -> dict[str, str]:
    """Environment for one rank: its ``gpus_per_rank`` GPUs, or its share of the CPU cores."""
    k = settings.gpus_per_rank
    if gpus:
        mine = list(gpus[local_rank * k : (local_rank + 1) * k])
        if len(mine) < k:
            raise UsageError(
                f"rank {local_rank} needs GPUs {local_rank * k}..{(local_rank + 1) * k - 1} but only "
                f"{len(gpus)} are visible; lower runner.nproc (local ranks x gpus_per_rank <= GPUs)"
            )
        return {"CUDA_VISIBLE_DEVICES": ",".join(mine)}
    return {"OMP_NUM_THREADS": str(cpu_threads_per_rank(settings.nproc))}


def cpu_threads_per_rank(local_world_size: int) -> int:
    """``usable cores // local ranks`` (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, local_world_size))


def visible_gpus() -> list[str]:
    """The GPU ids this process may hand out (``CUDA_VISIBLE_DEVICES`` or all), without creating a
    CUDA context (NVML-based count), so the value can still be narrowed for this process."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip() and g.strip() != "-1"]
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    try:
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # pragma: no cover - broken CUDA install: run on CPU
        n = 0
    return [str(i) for i in range(n)]


def rank_model_config(cfg: Mapping[str, Any], settings: DistSettings, on_gpu: bool) -> dict[str, Any]:
    """The config a rank runs: its replica on its own GPU(s) (``device_map=auto`` over them when
    ``gpus_per_rank > 1``); CPU-pinned models (``model.device=cpu``) stay on the CPU."""
    out = dict(cfg)
    model = dict(out.get("model") or {})
    if on_gpu and str(model.get("device") or "auto") != "cpu":
        if settings.gpus_per_rank > 1 and not model.get("device_map"):
            model["device_map"] = "auto"
        elif not model.get("device_map"):
            model["device"] = "cuda:0"  # the first (only) GPU of CUDA_VISIBLE_DEVICES
    out["model"] = model
    return out


@dataclass(frozen=True)
class Stages:
    """The stages of :mod:`evalkit.pipeline` that ranks and the coordinator run, handed in as
    arguments: nothing below the pipeline imports it (no import circle)."""

    #: ``cfg -> (task, model)``: build the objects (no weights, no data)
    prepare: Callable[[Mapping[str, Any]], tuple[Task, Model]]
    #: ``(cfg, task, model, output_dir) -> RunnerOptions``: identity check, run.json, config.yaml
    open_evaluation: Callable[..., Any]
    #: ``(cfg, rank=0, world_size=1) -> RunnerOptions``
    runner_options: Callable[..., Any]
    #: ``(cfg, task, model, records, stats, start, total_s) -> results``: aggregate and write
    finish: Callable[..., dict[str, Any]]


class ShardRunner(Runner):
    """A Runner whose shard is fixed by the coordinator's snapshot of the pending samples."""

    def __init__(self, *args: Any, shard: Sequence[str] = (), **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.shard = frozenset(shard)

    def pending(self, samples: Sequence[Sample], done: Mapping[str, Record]) -> list[Sample]:
        """This rank's samples (``done`` was already taken into account by the snapshot)."""
        return [s for s in samples if s.id in self.shard]


def shard_of(pending_ids: Sequence[str], rank: int, world_size: int) -> list[str]:
    """Rank ``rank``'s share of the pending sample ids: every ``world_size``-th, from ``rank``."""
    return [sid for i, sid in enumerate(pending_ids) if i % world_size == rank]


def run_rank(
    cfg: Mapping[str, Any], rank: int, world_size: int, pending_ids: Sequence[str], stages: Stages
) -> RunStats:
    """Evaluate rank ``rank``'s shard of ``pending_ids`` (the coordinator's snapshot of the
    unfinished samples, in dataset order); returns its statistics.

    Writes the status file before loading and before every batch; on an exception the status
    becomes ``failed`` with the error and the exception propagates."""
    output_dir = output_dir_of(cfg)
    path = status_path(output_dir, _task_name(cfg), rank)
    status = RankStatus(rank=rank, world_size=world_size, state="loading")
    status.write(path)
    try:
        task, model = stages.prepare(cfg)
        task.load()

        def working_on(requests: list[Any]) -> None:  # before every model call: what this rank does
            status.state, status.samples = "working", [r.sample_id for r in requests]
            status.write(path)

        runner = ShardRunner(
            task, model, output_dir, stages.runner_options(cfg, rank, world_size),
            shard=shard_of(pending_ids, rank, world_size), on_generate=working_on,
        )  # fmt: skip
        runner.run()
        model.close()
    except BaseException as exc:
        status.state = "failed"
        status.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        status.write(path)
        raise
    stats = runner.stats
    status.state, status.samples, status.stats = "done", [], asdict(stats)
    status.write(path)
    return stats


# --------------------------------------------------------------------------- merge
def repair_parts(output_dir: Path, task: str) -> None:
    """Cut torn trailing lines off every part file (only while no rank is running)."""
    parts = Path(output_dir) / "parts" / _safe(task)
    for part in sorted(parts.glob("rank-*.jsonl")):
        read_jsonl_records(part, repair=True)


def sum_stats(per_rank: Sequence[Mapping[str, Any]]) -> RunStats:
    """Add the ranks' counters and seconds (``model_s``/``load_s`` are summed over ranks)."""
    total = RunStats()
    for s in per_rank:
        for key in ("n_generated", "n_cached", "n_input_errors", "n_model_errors"):
            setattr(total, key, getattr(total, key) + int(s.get(key) or 0))
        total.model_s += float(s.get("model_s") or 0.0)
        total.load_s += float(s.get("load_s") or 0.0)
        total.model_loaded = total.model_loaded or bool(s.get("model_loaded"))
    return total


def coordinator_setup(cfg: Mapping[str, Any], stages: Stages) -> tuple[Task, Model, int, list[str]]:
    """The coordinator's preparation, under the output lock, before any rank starts: the task's
    ``before_run`` hook, the dataset, and the snapshot of unfinished samples that all ranks shard.

    Returns (task, model, number of samples already finished, ids still to do in dataset order)."""
    output_dir = output_dir_of(cfg)
    task, model = stages.prepare(cfg)
    options = stages.open_evaluation(cfg, task, model, output_dir)  # identity check, run.json, config.yaml
    runner = Runner(task, model, output_dir, options)
    samples = runner.select_samples()
    done = runner.store.load(repair=False, prefer_model=model.identity_hash())
    todo = [s.id for s in runner.pending(samples, done)]
    return task, model, len(samples) - len(todo), todo


def merge_and_finish(
    cfg: Mapping[str, Any],
    task: Task,
    model: Model,
    per_rank: Sequence[Mapping[str, Any]],
    n_resumed: int,
    world_size: int,
    start: str,
    t0: float,
    stages: Stages,
) -> dict[str, Any]:
    """Merge the part files of all ranks, check every sample is there, score and write results."""
    output_dir = output_dir_of(cfg)
    samples = Runner(task, model, output_dir, stages.runner_options(cfg)).select_samples()
    found = RecordStore(output_dir, task.name).load(repair=False, prefer_model=model.identity_hash())
    missing = [s.id for s in samples if s.id not in found]
    if missing:
        raise EvalkitError(
            f"{len(missing)} sample(s) have no record after all ranks finished (first: {missing[0]}); "
            "rerun the same command to resume"
        )
    records = [found[s.id] for s in samples]
    stats = sum_stats(per_rank)
    stats.n_total, stats.n_resumed = len(samples), n_resumed
    stats.extra.update(world_size=world_size, ranks=[dict(s) for s in per_rank])
    records = task.after_generation(records, cfg, output_dir)
    return stages.finish(cfg, task, model, records, stats, start, time.perf_counter() - t0)


def _clear_parts_if_no_resume(cfg: Mapping[str, Any], output_dir: Path) -> None:
    if not (cfg.get("runner") or {}).get("resume", True) and (output_dir / "parts").exists():
        import shutil

        shutil.rmtree(output_dir / "parts")


# --------------------------------------------------------------------------- launcher mode
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Workers:
    """The spawned rank processes: start, wait for the first exit, terminate the rest."""

    def __init__(self) -> None:
        self.procs: dict[int, subprocess.Popen] = {}
        self.exits: queue.Queue[tuple[int, int]] = queue.Queue()

    def start(self, rank: int, env: Mapping[str, str]) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-m", "evalkit.runner.distributed_worker"],
            env=dict(env),
            stdin=subprocess.DEVNULL,
        )
        self.procs[rank] = proc
        threading.Thread(target=lambda: self.exits.put((rank, proc.wait())), daemon=True).start()

    def next_exit(self, timeout_s: float = 1.0) -> tuple[int, int] | None:
        """Wait up to ``timeout_s`` for a worker to exit; (rank, exit code), or None.

        A short timed wait keeps Ctrl-C responsive in the main thread and lets the caller run the
        watchdog between waits."""
        try:
            return self.exits.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def kill(self, rank: int) -> None:
        """SIGKILL one worker (works on a stopped process too) and reap it."""
        proc = self.procs[rank]
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    def stop_all(self, grace_s: float = 10.0) -> None:
        """SIGTERM every live worker, SIGKILL what is still alive after ``grace_s``."""
        live = [p for p in self.procs.values() if p.poll() is None]
        for p in live:
            p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for p in live:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class RankWatchdog:
    """Notices ranks that make no progress: neither their status file (written before every
    batch) nor their part file (appended after every batch) changed for ``timeout_s`` seconds.

    A rank that is computing one batch for longer than ``timeout_s`` looks the same as a hung one,
    so ``runner.rank_timeout_s`` must exceed the longest model load or batch. Until a rank has
    written its first status file (interpreter start and imports, before any evalkit code runs)
    it gets at least :attr:`startup_grace_s`."""

    #: the least time a rank is given to write its first status file
    startup_grace_s: float = 300.0

    def __init__(
        self, output_dir: Path, task: str, ranks: Sequence[int], timeout_s: float, clock: Any = time.monotonic
    ) -> None:
        self.output_dir, self.task, self.timeout_s, self.clock = Path(output_dir), task, timeout_s, clock
        now = clock()
        self._seen: dict[int, tuple[Any, ...]] = {r: self._signature(r) for r in ranks}
        self._since: dict[int, float] = dict.fromkeys(ranks, now)

    def _signature(self, rank: int) -> tuple[Any, ...]:
        part = Path(self.output_dir) / "parts" / _safe(self.task) / f"rank-{rank}.jsonl"
        out: list[Any] = []
        for path in (status_path(self.output_dir, self.task, rank), part):
            try:
                st = path.stat()
                out.append((st.st_mtime_ns, st.st_size))
            except OSError:
                out.append(None)
        return tuple(out)

    def forget(self, rank: int) -> None:
        """Stop watching ``rank`` (it exited)."""
        self._seen.pop(rank, None)
        self._since.pop(rank, None)

    def stalled(self) -> list[tuple[int, float]]:
        """The watched ranks without progress for ``timeout_s``: (rank, seconds since progress)."""
        if self.timeout_s <= 0:
            return []
        now, out = self.clock(), []
        for rank in list(self._seen):
            sig = self._signature(rank)
            if sig != self._seen[rank]:
                self._seen[rank], self._since[rank] = sig, now
                continue
            limit = self.timeout_s if sig[0] is not None else max(self.timeout_s, self.startup_grace_s)
            if now - self._since[rank] >= limit:
                out.append((rank, now - self._since[rank]))
        return out


def _exit_how(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def launch_local(cfg: Mapping[str, Any], settings: DistSettings, stages: Stages) -> dict[str, Any]:
    """Launcher mode: spawn ``nproc`` ranks on this machine, supervise them, merge and score."""
    from evalkit.runner.results import now_iso

    t0, start = time.perf_counter(), now_iso()
    output_dir = output_dir_of(cfg)
    task_name = _task_name(cfg)
    n = settings.nproc
    with OutputLock(output_dir):
        _clear_parts_if_no_resume(cfg, output_dir)
        repair_parts(output_dir, task_name)
        task, model, n_resumed, pending_ids = coordinator_setup(cfg, stages)
        gpus = visible_gpus() if str((cfg.get("model") or {}).get("device") or "auto") != "cpu" else []
        for r in range(n):
            path = status_path(output_dir, task_name, r)
            path.unlink(missing_ok=True)
        if not pending_ids:  # everything is finished already: merge and score, no ranks to start
            return merge_and_finish(cfg, task, model, [], n_resumed, n, start, t0, stages)
        rank_cfg = rank_model_config(cfg, settings, on_gpu=bool(gpus))
        cfg_path = output_dir / "parts" / _safe(task_name) / "status" / "run.json"
        _write_private(cfg_path, json.dumps({"config": rank_cfg, "pending": pending_ids}, default=str))
        port = settings.master_port or _free_port()
        log.info("launching %d ranks for %s (%s)", n, task_name, "GPU" if gpus else "CPU")
        workers = _Workers()
        try:
            for r in range(n):
                env = dict(os.environ)
                env.update(rank_device_env(settings, r, gpus))
                env.update(
                    RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(n), LOCAL_WORLD_SIZE=str(n),
                    MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), EVALKIT_LAUNCHER_PID=str(os.getpid()),
                    **{CONFIG_ENV: str(cfg_path)},
                )  # fmt: skip
                workers.start(r, env)
            watchdog = RankWatchdog(output_dir, task_name, range(n), settings.rank_timeout_s)
            kept = f"finished samples are kept in {output_dir / 'parts' / _safe(task_name)}"
            running = n
            while running:
                exited = workers.next_exit(timeout_s=min(1.0, max(0.05, settings.rank_timeout_s / 4 or 1.0)))
                if exited is None:
                    for rank, idle in watchdog.stalled():
                        workers.kill(rank)
                        workers.stop_all()
                        status = RankStatus.read(status_path(output_dir, task_name, rank))
                        how = f"no progress for {idle:.0f}s > runner.rank_timeout_s={settings.rank_timeout_s:g}; killed"
                        raise EvalkitError(
                            describe_failure(status, rank, how, _finished_ids(output_dir, task_name, rank))
                            + f"; the other ranks were stopped; {kept} — rerun the same command to resume"
                        )
                    continue
                rank, code = exited
                running -= 1
                watchdog.forget(rank)
                if code != 0:
                    workers.stop_all()
                    status = RankStatus.read(status_path(output_dir, task_name, rank))
                    raise EvalkitError(
                        describe_failure(
                            status, rank, _exit_how(code), _finished_ids(output_dir, task_name, rank)
                        )
                        + f"; the other ranks were stopped; {kept} — rerun the same command to resume"
                    )
        except BaseException:
            workers.stop_all()
            raise
        finally:
            cfg_path.unlink(missing_ok=True)
        per_rank = []
        for r in range(n):
            status = RankStatus.read(status_path(output_dir, task_name, r))
            if status is None or status.state != "done" or status.stats is None:
                raise EvalkitError(f"rank {r} exited without finishing its shard (status: {status})")
            per_rank.append(status.stats)
        return merge_and_finish(cfg, task, model, per_rank, n_resumed, n, start, t0, stages)


def _write_private(path: Path, data: str) -> None:
    """Write ``data`` to ``path`` readable by this user only (the unredacted config for the ranks)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(data)
    os.replace(tmp, path)


def worker_main(stages: Stages) -> int:
    """Entry of a spawned rank (``python -m evalkit.runner.distributed_worker``)."""
    _die_with_parent()
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    spec = json.loads(Path(os.environ[CONFIG_ENV]).read_text(encoding="utf-8"))
    cfg, pending_ids = spec["config"], spec["pending"]
    logging.basicConfig(level=logging.INFO, format=f"[rank {rank}][%(levelname)s] %(message)s")
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads and "CUDA_VISIBLE_DEVICES" not in os.environ:
        import torch

        torch.set_num_threads(int(threads))
    import_plugins(cfg)
    try:
        run_rank(cfg, rank, world_size, pending_ids, stages)
    except EvalkitError as exc:
        print(f"evalkit: error: rank {rank}: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when the launcher dies (no orphaned ranks)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        return
    launcher = os.environ.get("EVALKIT_LAUNCHER_PID")
    if launcher and os.getppid() != int(launcher):  # the launcher died before prctl took effect
        os._exit(1)


# --------------------------------------------------------------------------- torchrun mode
def _init_process_group(settings: DistSettings, on_gpu: bool) -> Any:
    """Initialise the default group (gloo / nccl) and return a gloo group for control messages."""
    from datetime import timedelta

    import torch.distributed as dist

    backend = settings.backend if settings.backend != "auto" else ("nccl" if on_gpu else "gloo")
    timeout = timedelta(seconds=settings.timeout_s)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=timeout)
    return dist.new_group(backend="gloo", timeout=timeout) if backend != "gloo" else dist.group.WORLD


def run_torchrun_rank(cfg: Mapping[str, Any], settings: DistSettings, stages: Stages) -> dict[str, Any]:
    """torchrun mode: this process is one rank; rank 0 locks, merges and scores."""
    import torch.distributed as dist

    from evalkit.runner.results import now_iso

    t0, start = time.perf_counter(), now_iso()
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_ws = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
    if settings.nproc > 1 and settings.nproc != world_size:
        log.warning("runner.nproc=%d ignored: torchrun started %d ranks", settings.nproc, world_size)
    cpu_model = str((cfg.get("model") or {}).get("device") or "auto") == "cpu"
    gpus = [] if cpu_model else visible_gpus()
    if gpus:
        os.environ.update(rank_device_env(DistSettings(local_ws, settings.gpus_per_rank), local_rank, gpus))
    else:
        import torch

        torch.set_num_threads(cpu_threads_per_rank(local_ws))
    group = _init_process_group(settings, on_gpu=bool(gpus))
    output_dir, task_name = output_dir_of(cfg), _task_name(cfg)
    lock: OutputLock | None = None
    try:
        # rank 0 takes the lock and prepares the directory; the others wait for its verdict
        verdict: list[Any] = [None]
        setup_error: Exception | None = None
        if rank == 0:
            try:
                lock = OutputLock(output_dir).acquire()
                _clear_parts_if_no_resume(cfg, output_dir)
                repair_parts(output_dir, task_name)
                task, model, n_resumed, pending_ids = coordinator_setup(cfg, stages)
                verdict[0] = {"ok": True, "pending": (n_resumed, pending_ids)}
            except Exception as exc:  # any failure must reach the other ranks, or they wait
                setup_error = exc
                verdict[0] = {"ok": False, "error": f"{exc}" if isinstance(exc, EvalkitError) else repr(exc)}
        dist.broadcast_object_list(verdict, src=0, group=group)
        if setup_error is not None:
            raise setup_error
        if not verdict[0]["ok"]:
            raise EvalkitError(f"rank 0 could not prepare the run: {verdict[0]['error']}")
        rank_cfg = rank_model_config(cfg, settings, on_gpu=bool(gpus))
        _install_sigterm_report(output_dir, task_name, rank, world_size)
        n_resumed, pending_ids = verdict[0]["pending"]
        stats = run_rank(rank_cfg, rank, world_size, pending_ids, stages)
        try:
            dist.monitored_barrier(group=group, timeout=_td(settings.timeout_s), wait_all_ranks=True)
        except RuntimeError as exc:
            raise EvalkitError(_barrier_failure(output_dir, task_name, world_size, exc)) from None
        gathered: list[Any] = [None] * world_size if rank == 0 else []
        dist.gather_object(asdict(stats), gathered if rank == 0 else None, dst=0, group=group)
        if rank != 0:
            return {}
        return merge_and_finish(cfg, task, model, gathered, n_resumed, world_size, start, t0, stages)
    finally:
        if lock is not None:
            lock.release()
        if dist.is_initialized():
            dist.destroy_process_group()


def _td(seconds: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=seconds)


def _barrier_failure(output_dir: Path, task: str, world_size: int, exc: Exception) -> str:
    """Name the ranks that did not reach the final barrier and what their status files say."""
    parts = []
    for r in range(world_size):
        st = RankStatus.read(status_path(output_dir, task, r))
        if st is None or st.state != "done":
            parts.append(describe_failure(st, r, "did not reach the final barrier"))
    detail = "; ".join(parts) or str(exc).splitlines()[0]
    return f"{detail}; finished samples are kept — rerun the same command to resume"


def _install_sigterm_report(output_dir: Path, task: str, rank: int, world_size: int) -> None:
    """When torchrun's agent tears the group down after a rank failure, say which rank and sample."""
    if rank != 0 or threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: Any) -> None:  # noqa: ARG001
        failed = []
        for r in range(world_size):
            st = RankStatus.read(status_path(output_dir, task, r))
            if r != rank and st is not None and st.state in ("failed", "working", "loading"):
                failed.append(describe_failure(st, r, f"status {st.state} on {st.host}, pid {st.pid}"))
        print(
            "evalkit: error: the launcher stopped this run; "
            + ("; ".join(failed) if failed else "no rank reported a failure")
            + " — finished samples are kept; rerun the same command to resume",
            file=sys.stderr,
        )
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


# --------------------------------------------------------------------------- entry
def run_distributed(cfg: Mapping[str, Any], stages: Stages) -> dict[str, Any]:
    """Run the configured evaluation over several ranks with the pipeline's ``stages``; returns
    results.json (``{}`` on ranks other than 0 under torchrun)."""
    cfg = dict(cfg)
    settings = DistSettings.from_config(cfg)
    import_plugins(cfg)
    if under_torchrun():
        return run_torchrun_rank(cfg, settings, stages)
    return launch_local(cfg, settings, stages)

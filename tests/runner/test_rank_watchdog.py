"""The launcher's rank watchdog (issue 13): a rank stopped with SIGSTOP is killed after
``runner.rank_timeout_s`` without progress; the run fails with one line naming the rank and the
sample it was on, finished samples are kept, and the rerun finishes exactly the rest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from evalkit.runner.distributed import RankWatchdog, status_path
from evalkit.runner.store import read_jsonl_records
from tests.conftest import REPO, read_samples, run_cli

FAKE = ("task=docvqa_mini", "model=tiny", "runner.cache=false", "runner.progress=false", "batch_size=1",
        "model.backend=fake", "+model.answer=x", "limit=16", "runner=multigpu", "runner.nproc=2")  # fmt: skip
ENV = {"PYTHONPATH": str(REPO)}


def _finished(out: Path) -> list[str]:
    parts = sorted((out / "parts" / "docvqa_mini").glob("rank-*.jsonl"))
    return [rec.id for p in parts for rec in read_jsonl_records(p)]


def test_watchdog_counts_from_the_last_change(tmp_path: Path) -> None:
    now = [0.0]
    status_path(tmp_path, "t", 0).parent.mkdir(parents=True)
    status_path(tmp_path, "t", 0).write_text("{}")  # rank 0 has started; rank 1 not yet
    dog = RankWatchdog(tmp_path, "t", [0, 1], timeout_s=10, clock=lambda: now[0])
    dog.startup_grace_s = 10
    now[0] = 9.0
    assert dog.stalled() == []
    status_path(tmp_path, "t", 1).write_text("{}")  # rank 1 makes progress, seen at the t=12 check
    now[0] = 12.0
    assert dog.stalled() == [(0, 12.0)]
    now[0] = 21.0
    assert [r for r, _ in dog.stalled()] == [0]
    now[0] = 22.5
    assert [r for r, _ in dog.stalled()] == [0, 1]
    dog.forget(0)
    assert [r for r, _ in dog.stalled()] == [1]
    assert RankWatchdog(tmp_path, "t", [0], timeout_s=0, clock=lambda: 1e9).stalled() == []
    # a rank that never wrote a status file gets the startup grace (here 300 s > 10 s)
    now[0] = 0.0
    late = RankWatchdog(tmp_path, "t", [5], timeout_s=10, clock=lambda: now[0])
    now[0] = 299.0
    assert late.stalled() == []
    now[0] = 301.0
    assert late.stalled() == [(5, 301.0)]


def test_sigstopped_rank_is_killed_named_and_the_run_resumes(tmp_path: Path) -> None:
    out = tmp_path / "hang"
    proc = subprocess.Popen(
        [sys.executable, "-m", "evalkit.cli", "run", *FAKE, "+model.delay_s=0.2", "runner.rank_timeout_s=12",
         f"output_dir={out}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **ENV},
        start_new_session=True,
    )  # fmt: skip
    victim_pid = None
    try:
        status_file = status_path(out, "docvqa_mini", 1)
        while victim_pid is None:
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            try:
                st = json.loads(status_file.read_text())
            except (OSError, ValueError):
                st = {}
            if st.get("state") == "working" and len(_finished(out)) >= 2:
                os.kill(int(st["pid"]), signal.SIGSTOP)
                # the rank may have written its batch between our read and the stop, before its
                # status named the next one: then let it go on and stop it on a later sample
                frozen = json.loads(status_file.read_text())
                if any(s in _finished(out) for s in frozen["samples"]):
                    os.kill(int(st["pid"]), signal.SIGCONT)
                    time.sleep(0.05)
                    continue
                victim_pid = int(st["pid"])
            else:
                time.sleep(0.02)
        t_stop = time.monotonic()
        _, stderr = proc.communicate(timeout=300)
        waited = time.monotonic() - t_stop
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        if victim_pid is not None:
            try:
                os.kill(victim_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert proc.returncode != 0
    lines = [line for line in stderr.splitlines() if line.startswith("evalkit: error:")]
    assert len(lines) == 1, stderr[-3000:]
    stopped_on = json.loads(status_file.read_text())["samples"]
    assert len(stopped_on) == 1
    assert f"rank 1 failed while processing sample {stopped_on[0]}" in lines[0]
    assert "runner.rank_timeout_s=12" in lines[0] and "rerun the same command to resume" in lines[0]
    assert "Traceback" not in stderr
    assert waited >= 12  # not before the timeout
    # the stopped rank was really killed (no process left behind, stopped or not)
    try:
        os.kill(victim_pid, 0)
        alive = Path(f"/proc/{victim_pid}/stat").read_text().split()[2] not in ("Z", "X")
    except (ProcessLookupError, FileNotFoundError):
        alive = False
    assert not alive
    finished = _finished(out)
    assert stopped_on[0] not in finished and 2 <= len(finished) < 16
    assert not (out / "results.json").exists()

    rerun = run_cli("run", *FAKE, f"output_dir={out}", env=ENV)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    res = json.loads((out / "results.json").read_text())
    assert res["timing"]["n_resumed"] == len(finished)
    assert res["timing"]["n_generated"] == 16 - len(finished)
    rows = read_samples(out / "samples" / "docvqa_mini.jsonl")
    assert len(rows) == len({r["id"] for r in rows}) == 16


def test_failure_between_batches_does_not_name_finished_samples() -> None:
    from evalkit.runner.distributed import RankStatus, describe_failure

    st = RankStatus(rank=1, world_size=2, state="working", samples=["a", "b"])
    assert (
        describe_failure(st, 1, "killed") == "rank 1 failed while processing batch of samples a, b (killed)"
    )
    assert describe_failure(st, 1, "killed", {"a"}) == "rank 1 failed while processing sample b (killed)"
    assert describe_failure(st, 1, "killed", {"a", "b"}) == (
        "rank 1 failed between batches, after finishing sample b (killed)"
    )

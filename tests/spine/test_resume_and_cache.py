"""Resume after SIGKILL equals an uninterrupted run; a fully cached rerun never loads the model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from evalkit.runner.store import read_jsonl_records
from tests.conftest import read_samples
from tests.conftest import run_cli_here as run_cli

TASK_ARGS = ("task=docvqa_mini", "model=tiny", "runner.cache=false", "runner.progress=false", "batch_size=1")


def _comparable(rows: list[dict]) -> list[tuple]:
    return [(r["id"], r["prediction"], r["scores"], r["error"], r["prompt"]) for r in rows]


def _spawn(out_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "evalkit.cli", "run", *TASK_ARGS, f"output_dir={out_dir}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ),
    )


def _kill_after(proc: subprocess.Popen, part: Path, n_lines: int, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if part.exists() and part.read_bytes().count(b"\n") >= n_lines:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return
        if proc.poll() is not None:
            raise AssertionError(f"run ended before the kill point: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.002)
    proc.kill()
    raise AssertionError("kill point not reached in time")


def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path):
    reference = tmp_path / "reference"
    proc = run_cli("run", *TASK_ARGS, f"output_dir={reference}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    ref_rows = read_samples(reference / "samples" / "docvqa_mini.jsonl")
    ref_results = json.loads((reference / "results.json").read_text())
    total = len(ref_rows)

    killed = tmp_path / "killed"
    part = killed / "parts" / "docvqa_mini" / "rank-0.jsonl"
    for kill_at in (5, 17):  # kill twice at different points; each rerun must pick up from there
        p = _spawn(killed)
        _kill_after(p, part, kill_at)
        assert p.returncode == -signal.SIGKILL
    finished_before = len(read_jsonl_records(part))
    assert 17 <= finished_before < total, "the kill must land mid-run"

    proc = run_cli("run", *TASK_ARGS, f"output_dir={killed}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((killed / "results.json").read_text())
    # only the unfinished samples were generated again
    assert results["timing"]["n_generated"] == total - finished_before
    assert results["timing"]["n_resumed"] == finished_before
    rows = read_samples(killed / "samples" / "docvqa_mini.jsonl")
    assert _comparable(rows) == _comparable(ref_rows)
    assert results["tasks"] == ref_results["tasks"]
    # the work log holds each sample exactly once
    ids = [r.id for r in read_jsonl_records(part)]
    assert len(ids) == len(set(ids)) == total


def test_sigterm_says_so_in_one_line_exits_143_and_the_rerun_resumes(tmp_path):
    """A scheduler's pre-emption (SIGTERM) stops a run like Ctrl-C: one line, exit 128 + 15, the
    finished samples kept; the rerun generates only the rest."""
    out = tmp_path / "run"
    part = out / "parts" / "docvqa_mini" / "rank-0.jsonl"
    proc = _spawn(out)
    deadline = time.time() + 300
    while not (part.exists() and part.read_bytes().count(b"\n") >= 3):
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "no record in time"
        time.sleep(0.002)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()[-2000:]
    last = err.decode().strip().splitlines()[-1]
    assert (
        last == "evalkit: terminated (SIGTERM); finished samples are saved — rerun the same command to resume"
    )
    assert "evalkit: error" not in err.decode()
    assert "Traceback" not in err.decode()
    kept = len(read_jsonl_records(part))
    assert kept >= 3 and not (out / "results.json").exists()
    again = run_cli("run", *TASK_ARGS, f"output_dir={out}")
    assert again.returncode == 0, again.stderr[-2000:]
    timing = json.loads((out / "results.json").read_text())["timing"]
    assert timing["n_resumed"] == kept and timing["n_resumed"] + timing["n_generated"] == len(
        read_samples(out / "samples" / "docvqa_mini.jsonl")
    )


def test_truncated_trailing_record_is_redone(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("run", *TASK_ARGS, "limit=6", f"output_dir={out}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    part = out / "parts" / "docvqa_mini" / "rank-0.jsonl"
    data = part.read_bytes()
    lines = data.splitlines(keepends=True)
    part.write_bytes(b"".join(lines[:4]) + lines[4][: len(lines[4]) // 2])  # crash mid-write of record 5
    proc = run_cli("run", *TASK_ARGS, "limit=6", f"output_dir={out}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert results["timing"]["n_generated"] == 2 and results["timing"]["n_resumed"] == 4
    assert len(read_jsonl_records(part)) == 6


def test_cached_rerun_does_not_load_the_model(tmp_path):
    args = ("task=docvqa_mini", "model=tiny", "limit=8", "batch_size=4", "runner.progress=false")
    cache = {"EVALKIT_CACHE_DIR": str(tmp_path / "cache")}
    first = run_cli("run", *args, f"output_dir={tmp_path / 'a'}", env=cache)
    assert first.returncode == 0, first.stderr[-2000:]
    second = run_cli("run", *args, f"output_dir={tmp_path / 'b'}", env=cache)
    assert second.returncode == 0, second.stderr[-2000:]
    r1 = json.loads((tmp_path / "a" / "results.json").read_text())
    r2 = json.loads((tmp_path / "b" / "results.json").read_text())
    assert r1["timing"]["model_loaded"] is True and r1["timing"]["n_generated"] == 8
    assert r2["timing"]["model_loaded"] is False and r2["timing"]["n_cached"] == 8
    assert r2["timing"]["n_generated"] == 0 and r2["timing"]["load_s"] == 0
    assert "loaded evalkit://tiny" in first.stderr + first.stdout
    assert "loaded evalkit://tiny" not in second.stderr + second.stdout
    s1 = read_samples(tmp_path / "a" / "samples" / "docvqa_mini.jsonl")
    s2 = read_samples(tmp_path / "b" / "samples" / "docvqa_mini.jsonl")
    assert [(r["id"], r["prediction"], r["prompt"]) for r in s1] == [
        (r["id"], r["prediction"], r["prompt"]) for r in s2
    ]
    assert all(r["cached"] for r in s2) and not any(r["cached"] for r in s1)
    assert r1["tasks"] == r2["tasks"]


def test_cache_key_changes_with_generation_params(tmp_path):
    args = ("task=docvqa_mini", "model=tiny", "limit=3", "runner.progress=false")
    cache = {"EVALKIT_CACHE_DIR": str(tmp_path / "cache")}
    assert run_cli("run", *args, f"output_dir={tmp_path / 'a'}", env=cache).returncode == 0
    proc = run_cli(
        "run", *args, "task.generation.max_new_tokens=5", f"output_dir={tmp_path / 'b'}", env=cache
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    r2 = json.loads((tmp_path / "b" / "results.json").read_text())
    assert r2["timing"]["n_cached"] == 0 and r2["timing"]["n_generated"] == 3

"""A full disk stops the run with one clear message; the rerun resumes with nothing lost (issue 9)."""

from __future__ import annotations

import json

import pytest

from evalkit.errors import EvalkitError
from evalkit.runner.store import RecordStore, read_jsonl_records, write_atomic
from evalkit.types import Record
from tests.reliability._bench import bench

MESSAGE = "disk full while writing"


@pytest.mark.parametrize(
    ("fault", "nth", "message"),
    [
        ("enospc", 3, MESSAGE),  # a record append
        ("enospc", 11, MESSAGE),  # the samples merge
        ("enospc", 12, MESSAGE),  # results.json
        ("eio", 3, "cannot write"),  # a failing disk: a record append, the samples merge
        ("eio", 11, "cannot write"),
    ],
)
def test_a_failed_write_stops_cleanly_and_resumes(tmp_path, fault, nth, message):
    """A full disk, or one that fails with an I/O error: one line naming the file, exit 1, every
    batch written before it kept, and the rerun finishes with the clean run's results."""
    data, table = bench.make_fixture(tmp_path, 40)
    ref = bench.reference_run(tmp_path, data, table)
    # writes through the store, in order: [run.json, config.yaml,] 10 record batches, samples merge,
    # results.json
    offset = sum((ref / name).exists() for name in ("run.json", "config.yaml"))
    out = tmp_path / "full"
    part = out / "parts" / "docvqa" / "rank-0.jsonl"
    import subprocess

    proc = subprocess.run(bench.run_args(data, table, out), capture_output=True, text=True,
                          env=bench._env(f"{fault}:{nth + offset}"))  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-1500:]
    assert f"evalkit: error: {message}" in proc.stderr and "rerun the same command" in proc.stderr
    assert "Traceback" not in proc.stderr and "bad override" not in proc.stderr
    if fault == "eio":  # the file that failed, and why
        assert ("rank-0.jsonl" if nth == 3 else "docvqa.jsonl") in proc.stderr
        assert "Input/output error" in proc.stderr
    kept = read_jsonl_records(part)
    assert len(kept) == min(40, (nth - 1) * 4)  # every batch written before the full disk is kept
    assert not list(out.rglob(".*.tmp-*"))
    proc = subprocess.run(bench.run_args(data, table, out), capture_output=True, text=True, env=bench._env())
    assert proc.returncode == 0, proc.stderr[-1500:]
    report = bench.compare(ref, out, [], 0, [])
    assert report.tasks_equal and report.samples_bytes_equal and report.lost == 0 and report.duplicated == 0
    assert json.loads((out / "results.json").read_text())["timing"]["n_resumed"] == len(kept)


def test_real_enospc_from_the_kernel(tmp_path):
    """/dev/full returns ENOSPC on write: the store turns it into the clear error."""
    store = RecordStore(tmp_path, "t")
    store.append([Record("1", "p", "a", ["a"])])
    store._fh.close()
    store._fh = open("/dev/full", "a", encoding="utf-8")
    with pytest.raises(EvalkitError, match=MESSAGE):
        store.append([Record("2", "p", "b" * 20000, ["b"])])
    store.close()
    assert list(RecordStore(tmp_path, "t").load()) == ["1"]


def test_atomic_write_on_full_disk_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    write_atomic(path, '{"old": true}\n')
    monkeypatch.setenv("EVALKIT_FAULT", "enospc:1")
    with pytest.raises(EvalkitError, match=MESSAGE):
        write_atomic(path, '{"new": true}\n')
    assert path.read_text() == '{"old": true}\n' and not list(tmp_path.glob(".*.tmp-*"))

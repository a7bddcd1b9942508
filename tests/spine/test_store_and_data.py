"""Record store durability and locking; dataset loading from every supported source."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from datasets import Dataset, DatasetDict

from evalkit.api import evaluate
from evalkit.errors import EvalkitError, UsageError
from evalkit.runner.store import OutputLock, RecordStore, read_jsonl_records
from evalkit.tasks.datasets import check_local_dataset_path, load_dataset_from_config
from evalkit.testing.docvqa import docvqa_features, make_docvqa_rows
from evalkit.types import Record


def _rec(i: int) -> Record:
    return Record(id=str(i), prompt="p", prediction=f"answer {i}", target=["x"], scores={"anls": 0.5})


class _ManualTimer:
    """threading.Timer stand-in that the test fires by hand."""

    made: list[_ManualTimer] = []

    def __init__(self, interval, function):  # noqa: ANN001
        self.interval, self.function, self.cancelled, self.daemon = interval, function, False, False
        _ManualTimer.made.append(self)

    def start(self) -> None:
        pass

    def cancel(self) -> None:
        self.cancelled = True


def test_store_writes_every_batch_out_and_fsyncs_within_a_second(tmp_path, monkeypatch):
    """Each append reaches the file before it returns (a new reader sees it: no process crash can
    lose it); fsyncs are grouped to one per FSYNC_INTERVAL_S: a later append or a timer fsyncs
    what the fast batches left, and close fsyncs the rest."""
    import evalkit.runner.store as store_module

    clock = [100.0]
    synced: list[int] = []
    monkeypatch.setattr(store_module.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(store_module.threading, "Timer", _ManualTimer)
    _ManualTimer.made = []
    real_fsync = store_module.os.fsync
    monkeypatch.setattr(store_module.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    store = RecordStore(tmp_path, "t")
    for i in range(5):  # five fast batches: the first is fsynced, the rest wait for one timer
        store.append([_rec(i)])
        assert sorted(RecordStore(tmp_path, "t").load()) == [str(k) for k in range(i + 1)]
    assert len(synced) == 1 and len(_ManualTimer.made) == 1
    assert _ManualTimer.made[0].interval == store_module.FSYNC_INTERVAL_S
    _ManualTimer.made[0].function()  # a second later: the timer fsyncs the four batches
    assert len(synced) == 2
    clock[0] += store_module.FSYNC_INTERVAL_S  # a slow batch: fsynced on its own
    store.append([_rec(5)])
    assert len(synced) == 3
    store.append([_rec(6)])  # fast again: a new timer
    assert len(synced) == 3 and len(_ManualTimer.made) == 2
    store.close()  # what is not fsynced yet is fsynced before the handle closes; the timer stops
    assert len(synced) == 4 and _ManualTimer.made[1].cancelled
    _ManualTimer.made[1].function()  # a timer that fires anyway after close does nothing
    store.close()
    assert len(synced) == 4


def test_a_failed_timer_fsync_is_raised_by_the_next_append(tmp_path, monkeypatch):
    import errno

    import evalkit.runner.store as store_module

    monkeypatch.setattr(store_module.threading, "Timer", _ManualTimer)
    _ManualTimer.made = []
    store = RecordStore(tmp_path, "t")
    store.append([_rec(1)])
    store.append([_rec(2)])

    def full(fd):  # noqa: ANN001, ANN202
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module.os, "fsync", full)
    _ManualTimer.made[0].function()  # in the timer thread: kept, not raised there
    with pytest.raises(EvalkitError, match="disk"):
        store.append([_rec(3)])
    store.close()


def test_store_roundtrip_and_last_record_wins(tmp_path):
    store = RecordStore(tmp_path, "t")
    store.append([_rec(1), _rec(2)])
    redo = _rec(2)
    redo.prediction = "again"
    store.append([redo])
    store.close()
    found = RecordStore(tmp_path, "t").load()
    assert set(found) == {"1", "2"} and found["2"].prediction == "again"


def test_store_repairs_partial_and_corrupt_tail(tmp_path):
    store = RecordStore(tmp_path, "t")
    store.append([_rec(i) for i in range(5)])
    store.close()
    with open(store.part_path, "ab") as f:
        f.write(b'{"id": "5", "predic')  # killed mid-write
    assert len(read_jsonl_records(store.part_path)) == 5
    store2 = RecordStore(tmp_path, "t")
    assert len(store2.load(repair=True)) == 5
    store2.append([_rec(5)])
    store2.close()
    assert [r.id for r in read_jsonl_records(store.part_path)] == [str(i) for i in range(6)]


def test_store_merges_parts_of_all_ranks(tmp_path):
    for rank in range(3):
        s = RecordStore(tmp_path, "t", rank=rank)
        s.append([_rec(rank * 10 + k) for k in range(2)])
        s.close()
    assert len(RecordStore(tmp_path, "t", rank=0).load()) == 6


def test_output_lock_refuses_a_second_holder(tmp_path):
    with OutputLock(tmp_path):
        with pytest.raises(EvalkitError, match="in use by another evalkit run"):
            OutputLock(tmp_path).acquire()
    OutputLock(tmp_path).acquire().release()  # free again afterwards


def test_concurrent_run_on_same_output_dir_fails_at_once(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import time; from evalkit.runner.store import OutputLock; l = OutputLock(__import__('pathlib').Path({str(tmp_path)!r})).acquire(); print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        out = subprocess.run([sys.executable, "-m", "evalkit.cli", "run", "task=docvqa_mini", "model=tiny", f"output_dir={tmp_path}"],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
        assert out.returncode == 1
        assert "is in use by another evalkit run (pid" in out.stderr and "Traceback" not in out.stderr
    finally:
        holder.kill()


@pytest.fixture(scope="module")
def small_ds():
    return Dataset.from_dict(make_docvqa_rows(6, seed=5), features=docvqa_features())


def test_load_save_to_disk_folder_and_dict(tmp_path, small_ds):
    small_ds.save_to_disk(str(tmp_path / "single"))
    ds, info = load_dataset_from_config({"path": str(tmp_path / "single"), "split": "validation"})
    assert len(ds) == 6 and info["fingerprint"]
    DatasetDict({"validation": small_ds, "test": small_ds.select(range(2))}).save_to_disk(
        str(tmp_path / "dict")
    )
    ds, _ = load_dataset_from_config({"path": str(tmp_path / "dict"), "split": "test"})
    assert len(ds) == 2
    with pytest.raises(UsageError, match="split 'train' not found .* available splits: validation, test"):
        load_dataset_from_config({"path": str(tmp_path / "dict"), "split": "train"})


def test_load_parquet_file_jsonl_and_hub_layout(tmp_path, small_ds, docvqa_dir):
    small_ds.to_parquet(str(tmp_path / "d.parquet"))
    ds, _ = load_dataset_from_config({"path": str(tmp_path / "d.parquet")})
    assert ds.features["image"].__class__.__name__ == "Image"
    ds, _ = load_dataset_from_config({"path": str(docvqa_dir), "name": "DocVQA", "split": "validation"})
    assert len(ds) == 30
    rows = [{"questionId": "1", "question": "q?", "answers": ["a"]}]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ds, _ = load_dataset_from_config({"path": str(tmp_path / "d.jsonl")})
    assert ds[0]["question"] == "q?"
    with pytest.raises(UsageError, match="no parquet files for config 'DocVQA' split 'nope'"):
        load_dataset_from_config({"path": str(docvqa_dir), "name": "DocVQA", "split": "nope"})


@pytest.mark.parametrize(
    "fallback", [None, "lmms-lab/DocVQA", "/no/such/fallback", "SELF", "EXISTS"], ids=str
)
def test_missing_local_path_precheck_says_what_the_loader_says(tmp_path, small_ds, fallback):
    """The check run before any import (``evalkit run``) raises exactly the loader's error, and
    only where the loader raises it."""
    existing = tmp_path / "ds"
    small_ds.save_to_disk(str(existing))
    missing = str(tmp_path / "no-such-folder")
    cfg = {"path": missing, "split": "train"}
    if fallback is not None:
        cfg["fallback_path"] = {"SELF": missing, "EXISTS": str(existing)}.get(fallback, fallback)
    try:
        load_dataset_from_config(cfg)
        loader_error = None
    except UsageError as exc:
        loader_error = str(exc)
    try:
        check_local_dataset_path(cfg)
        precheck_error = None
    except UsageError as exc:
        precheck_error = str(exc)
    assert precheck_error == loader_error
    assert (loader_error is None) == (fallback == "EXISTS")
    check_local_dataset_path({"path": "lmms-lab/DocVQA"})  # a hub id is the loader's to judge
    check_local_dataset_path({"path": str(existing)})


def test_unreachable_hub_dataset_is_a_clear_error():
    # offline (the test session sets HF_HUB_OFFLINE=1): the one line says what to do
    with pytest.raises(UsageError, match="dataset someone/not-a-dataset is not in the local cache"):
        load_dataset_from_config({"path": "someone/not-a-dataset", "split": "validation"})


def test_limit_and_resume_false(tmp_path, docvqa_dir):
    base = [
        f"task.dataset.path={docvqa_dir}",
        f"output_dir={tmp_path}",
        "model.backend=fake",
        "runner.progress=false",
    ]
    r = evaluate("docvqa", "tiny", [*base, "limit=4"])
    assert r["tasks"]["docvqa"]["n_samples"] == 4
    r = evaluate("docvqa", "tiny", [*base, "limit=4", "runner.resume=false", "runner.cache=false"])
    assert r["timing"]["n_generated"] == 4 and r["timing"]["n_resumed"] == 0

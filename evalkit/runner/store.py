"""Durable per-sample records: the append-only work log behind resume, and the final samples file.

Layout under ``output_dir`` (see docs/results-contract.md):

* ``parts/<task>/rank-<r>.jsonl`` — each rank appends finished records, one JSON line each, and
  writes them out (flush) after every batch: from then on no crash of the process (SIGKILL, OOM,
  Ctrl-C) can lose them. The file is fsynced at most :data:`FSYNC_INTERVAL_S` after a write (by
  the next append, a timer, or when the store closes), so a crash of the machine itself loses at
  most the last second's batches. A record is durable once its line
  ends with a newline; a partially written trailing line (a crash mid-write) is detected on load
  and cut off, so that sample is simply redone.
* ``samples/<task>.jsonl`` — the merged records in dataset order, written atomically
  (temp file + rename) when the task finishes.

An exclusive ``fcntl`` lock on ``<output_dir>/.evalkit.lock`` stops two runs from writing into the
same output directory; the kernel releases it when a process dies, so a killed run never leaves
a stale lock behind.
"""

from __future__ import annotations

import errno
import json
import os
import re
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

from evalkit.errors import EvalkitError
from evalkit.runner import faults  # reliability: fault points (issue 9)
from evalkit.types import Record


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name)


def thumbnail_relpath(task: str, sample_id: str) -> Path:
    """``thumbs/<task>/<readable id>-<hash>.jpg``: a file name per sample id that never collides
    (``a/b`` and ``a_b`` differ in their hash) and stays short for 100 kB ids."""
    import hashlib

    digest = hashlib.sha256(sample_id.encode("utf-8", "backslashreplace")).hexdigest()[:10]
    return Path("thumbs") / _safe(task) / f"{_safe(sample_id)[:60]}-{digest}.jpg"


# --- reliability (issue 9): a full / read-only disk is one clear error, never a traceback
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)

#: the longest written records wait for an fsync; an fsync per batch cost 13 ms on a busy ext4
#: disk (the journal commit takes the thumbnails along), 0.9 s of a 14 s run at batch size 1
FSYNC_INTERVAL_S = 1.0


def disk_full_error(path: Path) -> EvalkitError:
    """The error raised when a write fails because the disk is full (or quota / read-only)."""
    return EvalkitError(
        f"disk full while writing {path}; free space and rerun the same command to resume "
        "— finished samples are kept"
    )


def write_error(path: Path, exc: OSError) -> EvalkitError:
    """The error raised when a write fails for another reason than a full disk (an I/O error of
    the disk or the network file system): what failed, on which file, and that nothing is lost."""
    what = exc.strerror or str(exc) or type(exc).__name__
    return EvalkitError(
        f"cannot write {path} ({what}); check that disk and rerun the same command to resume "
        "— finished samples are kept"
    )


def write_atomic(path: Path, data: str, fault: str = "") -> None:
    """Write text to ``path`` atomically (temp file in the same folder, fsync, rename).

    ``fault`` names the :mod:`evalkit.runner.faults` point of this write (tests only). A full disk
    raises :func:`disk_full_error`; the previous ``path`` is then left untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            faults.write(f, data, fault)  # reliability: fault point (f.write(data) when unarmed)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in _DISK_FULL:
            raise disk_full_error(path) from None
        if isinstance(exc, PermissionError):
            raise EvalkitError(
                f"cannot write {path} ({exc.strerror}); choose another output_dir=<folder>"
            ) from None
        raise write_error(path, exc) from None
    os.replace(tmp, path)
    for stale in path.parent.glob(f".{path.name}.tmp-*"):  # reliability: left by a killed run
        stale.unlink(missing_ok=True)


class OutputLock:
    """Exclusive lock on an output directory for the lifetime of a run."""

    def __init__(self, output_dir: Path):
        self.path = Path(output_dir) / ".evalkit.lock"
        self._fh: IO[str] | None = None

    def acquire(self) -> OutputLock:
        """Take the lock or fail at once with a clear message."""
        import fcntl

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(self.path, "a+", encoding="utf-8")
        except OSError as exc:
            if exc.errno in _DISK_FULL and exc.errno != errno.EROFS:
                raise disk_full_error(self.path) from None
            raise EvalkitError(
                f"output_dir {self.path.parent} is not writable ({exc.strerror or exc}); "
                "choose another output_dir=<folder>"
            ) from None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise EvalkitError(
                f"output_dir {self.path.parent} is in use by another evalkit run ({holder}); "
                "wait for it to finish or choose another output_dir"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        """Release the lock (also released automatically when the process exits)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _json_line(record: Record, work_log: bool = True) -> str:
    """One record as a JSON line; hostile text (lone surrogates, bytes) is escaped, never fatal.

    The append time ``written_at`` is kept in the work log only, so that ``samples/<task>.jsonl``
    of two identical runs are byte-identical."""
    obj = record.to_json()
    if not work_log:
        obj.pop("written_at", None)
    try:
        line = json.dumps(obj, ensure_ascii=False)
        line.encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError):
        from evalkit.types import json_safe

        line = json.dumps(json_safe(obj), ensure_ascii=False)
    return line + "\n"


def read_jsonl_records(path: Path, repair: bool = False) -> list[Record]:
    """Read a JSONL record file; a truncated or corrupt trailing line is dropped (and cut off the
    file when ``repair`` is true, so appends continue on a clean line boundary)."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    records: list[Record] = []
    good_end = 0
    pos = 0
    while pos < len(raw):
        nl = raw.find(b"\n", pos)
        if nl < 0:
            break  # no newline: partially written last line
        line = raw[pos:nl]
        try:
            if line.strip():
                records.append(Record.from_json(json.loads(line)))
        except (json.JSONDecodeError, KeyError, UnicodeDecodeError):
            break  # corrupt line: everything from here on is redone
        pos = nl + 1
        good_end = pos
    if repair and good_end < len(raw):
        with open(path, "r+b") as f:
            f.truncate(good_end)
            f.flush()
            os.fsync(f.fileno())
    return records


class RecordStore:
    """Append-only durable store of one task's records in one output directory."""

    def __init__(self, output_dir: str | os.PathLike[str], task: str, rank: int = 0):
        self.output_dir = Path(output_dir)
        self.task = task
        self.rank = rank
        self.parts_dir = self.output_dir / "parts" / _safe(task)
        self.part_path = self.parts_dir / f"rank-{rank}.jsonl"
        self.samples_path = self.output_dir / "samples" / f"{_safe(task)}.jsonl"
        self._fh: IO[str] | None = None
        self._synced_at = 0.0  # time.monotonic() of the last fsync (0: none yet)
        self._unsynced = False
        self._sync_lock = threading.Lock()
        self._timer: threading.Timer | None = None  # fsyncs what the last appends left
        self._sync_error: OSError | None = None

    def load(self, repair: bool = True, prefer_model: str | None = None) -> dict[str, Record]:
        """All records written so far by any rank of any earlier attempt, one per id.

        Several attempts (under different world sizes) may have written the same id into different
        part files; the record kept is the best by (made by ``prefer_model``, not an error, written
        last — the ``written_at`` stamp), so a redone sample always beats its stale or failed
        predecessor. Only this rank's own part file is repaired (others may belong to live ranks)."""
        found: dict[str, Record] = {}
        best: dict[str, tuple[bool, bool, float]] = {}
        if self.parts_dir.exists():
            for part in sorted(self.parts_dir.glob("rank-*.jsonl")):
                for rec in read_jsonl_records(part, repair=repair and part == self.part_path):
                    when = rec.extra.get("written_at")
                    rank = (
                        prefer_model is not None and rec.model_identity == prefer_model,
                        rec.error is None,
                        float(when) if isinstance(when, int | float) else 0.0,
                    )
                    if rec.id not in best or rank >= best[rec.id]:
                        found[rec.id], best[rec.id] = rec, rank
        return found

    def append(self, records: Iterable[Record]) -> None:
        """Append records and write them out before returning (flush: safe from any crash of the
        process). They are fsynced now if the last fsync is :data:`FSYNC_INTERVAL_S` old, else
        within that interval by a timer (or by :meth:`close`, whichever comes first)."""
        if self._fh is None:
            self.parts_dir.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.part_path, "a", encoding="utf-8")
        now = round(time.time(), 6)
        for r in records:
            r.extra["written_at"] = now
        lines = "".join(_json_line(r) for r in records)
        if not lines:
            return
        with self._sync_lock:
            try:
                if self._sync_error is not None:  # the timer's fsync failed: say it now
                    raise self._sync_error
                faults.write(self._fh, lines, "record_write_mid")  # reliability: fault point
                self._fh.flush()
                self._unsynced = True
                if time.monotonic() - self._synced_at >= FSYNC_INTERVAL_S:
                    self._sync()
                elif self._timer is None:
                    self._timer = threading.Timer(FSYNC_INTERVAL_S, self._sync_when_due)
                    self._timer.daemon = True
                    self._timer.start()
            except OSError as exc:  # reliability: a torn tail is cut off and redone on resume
                self._failed(exc)
        faults.point("after_batch")  # reliability: fault point

    def _sync(self) -> None:
        assert self._fh is not None
        os.fsync(self._fh.fileno())
        self._synced_at, self._unsynced = time.monotonic(), False

    def _sync_when_due(self) -> None:
        """The timer: fsync what the appends since the last fsync left (a failure is raised by the
        next append or close, in the run's thread)."""
        with self._sync_lock:
            self._timer = None
            if self._fh is not None and self._unsynced:
                try:
                    self._sync()
                except OSError as exc:
                    self._sync_error = exc

    def _failed(self, exc: OSError) -> None:
        """Close the append handle after a failed write or fsync and raise one line: a full disk,
        or the I/O error (the torn tail, if any, is cut off on resume)."""
        self._sync_error = None
        fh, self._fh = self._fh, None
        try:
            if fh is not None:
                fh.close()  # a failing flush of the buffered rest still closes the file
        except OSError:
            pass
        if exc.errno in _DISK_FULL:
            raise disk_full_error(self.part_path) from None
        raise write_error(self.part_path, exc) from None

    def write_samples(self, records: Sequence[Record]) -> Path:
        """Write the final ``samples/<task>.jsonl`` atomically, in the given (dataset) order."""
        data = "".join(_json_line(r, work_log=False) for r in records)
        write_atomic(self.samples_path, data, fault="merge")  # reliability: fault point
        return self.samples_path

    def close(self) -> None:
        """fsync what is not yet, and close the append handle."""
        with self._sync_lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._fh is not None:
                try:
                    if self._sync_error is not None:
                        raise self._sync_error
                    if self._unsynced:
                        self._sync()
                except OSError as exc:
                    self._failed(exc)
                self._fh.close()
                self._fh = None

"""Fault injection for the crash-consistency tests (``tests/reliability``, ``benchmarks/reliability.py``).

Inert unless the environment variable ``EVALKIT_FAULT`` is set, e.g.::

    EVALKIT_FAULT=after_batch:3          # SIGKILL right after the 3rd batch was made durable
    EVALKIT_FAULT=record_write_mid:2     # 2nd record append: write half of it, flush, fsync, SIGKILL
    EVALKIT_FAULT=merge:1                # SIGKILL half-way through writing samples/<task>.jsonl
    EVALKIT_FAULT=results_write:1        # SIGKILL half-way through writing results.json
    EVALKIT_FAULT=enospc:4               # the 4th durable write (and every later one) raises ENOSPC
    EVALKIT_FAULT=eio:4                  # the same with EIO (a failing disk or network file system)

Several faults may be given, comma-separated. ``<point>:<n>`` fires the *n*-th time ``<point>`` is
reached in this process (counting from 1). Kills use ``SIGKILL`` on the process itself, so no
``finally`` block, ``atexit`` hook or buffered write runs: exactly what a power cut or the OOM
killer does to the process (the page cache survives, as it does for a process crash).

Points (where they are called):

* ``record_write_mid`` — :meth:`evalkit.runner.store.RecordStore.append`: every record line of
  the batch but the last is written whole, the last one only half, then flush + fsync + kill;
* ``after_batch`` — the end of :meth:`RecordStore.append`, after the flush (and fsync, if due);
* ``merge`` — :func:`evalkit.runner.store.write_atomic` writing ``samples/<task>.jsonl``;
* ``results_write`` — :func:`write_atomic` writing ``results.json``;
* ``enospc`` — any write through :func:`write` (record appends, samples, results.json);
* ``eio`` — the same writes, failing with ``EIO`` instead.
"""

from __future__ import annotations

import errno
import os
import signal
from typing import IO

ENV = "EVALKIT_FAULT"
POINTS = ("record_write_mid", "after_batch", "merge", "results_write", "enospc", "eio")
_WRITE_POINTS = ("record_write_mid", "merge", "results_write")
_counts: dict[str, int] = {}


def armed() -> dict[str, int]:
    """The faults requested by ``EVALKIT_FAULT``: ``{point: n}`` (empty when unset)."""
    spec = os.environ.get(ENV, "").strip()
    out: dict[str, int] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        point, _, n = item.partition(":")
        if point not in POINTS:
            raise ValueError(f"{ENV}: unknown fault point {point!r}; points: {', '.join(POINTS)}")
        out[point] = int(n or 1)
    return out


def _reached(point: str) -> bool:
    """Count one arrival at ``point``; true when this arrival is the armed one."""
    faults = armed()
    if point not in faults:
        return False
    _counts[point] = _counts.get(point, 0) + 1
    if point in ("enospc", "eio"):
        return _counts[point] >= faults[point]  # a full (or failing) disk stays so
    return _counts[point] == faults[point]


def kill_self() -> None:
    """SIGKILL this process (no cleanup of any kind runs)."""
    os.kill(os.getpid(), signal.SIGKILL)


def point(name: str) -> None:
    """A fault point with no write attached (``after_batch``): SIGKILL when armed for this arrival."""
    if name in POINTS and _reached(name):
        kill_self()


def write(fh: IO[str], data: str, name: str) -> None:
    """``fh.write(data)`` with the fault points ``name`` (a write point), ``enospc`` and ``eio``.

    When ``name`` fires: the data up to the middle of its last line is written, flushed and
    fsynced, then the process is SIGKILLed, leaving a torn line on disk. When ``enospc`` (``eio``)
    fires: ``OSError(ENOSPC)`` (``EIO``) is raised before anything is written.
    """
    for fault, code in (("enospc", errno.ENOSPC), ("eio", errno.EIO)):
        if _reached(fault):
            raise OSError(code, os.strerror(code))
    if name in _WRITE_POINTS and _reached(name):
        body = data[:-1] if data.endswith("\n") else data
        last_start = body.rfind("\n") + 1
        cut = last_start + max(1, (len(body) - last_start) // 2)
        fh.write(data[:cut])
        fh.flush()
        os.fsync(fh.fileno())
        kill_self()
    fh.write(data)

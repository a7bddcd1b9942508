"""Content-addressed response cache (SQLite, never pickle).

Key = sha256(key version, model identity hash, request fingerprint). The model identity covers the backend,
checkpoint (hub revision or weight-file hash), dtype, pixel budget and chat template; the request
fingerprint covers the messages (text and image pixel digests) and the generation parameters. A
rerun whose requests are all cached never loads the model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from evalkit.types import Response

log = logging.getLogger("evalkit")


#: version of the key scheme; bumped whenever the request fingerprint is computed differently
#: (2: pixels hashed with XXH3-128 instead of sha256), so that no stale entry can ever be served.
#: The cache stays valid across evalkit versions only through this field.
CACHE_KEY_VERSION = 2


def cache_key(model_hash: str, request_fingerprint: str) -> str:
    """The cache key of one (model, request) pair (includes :data:`CACHE_KEY_VERSION`)."""
    return hashlib.sha256(f"v{CACHE_KEY_VERSION}:{model_hash}:{request_fingerprint}".encode()).hexdigest()


def open_cache(path: str | os.PathLike[str]) -> tuple[ResponseCache | None, str | None]:
    """Open the response cache, or disable it with one warning when it is unusable (unwritable
    folder, a file that is not a database, a full disk): ``(cache or None, problem or None)``.

    A broken cache never stops a run; it only costs the reuse of earlier responses."""
    try:
        return ResponseCache(path), None
    except (OSError, sqlite3.Error) as exc:
        problem = f"response cache {path} is unusable ({type(exc).__name__}: {exc}); running without it"
        log.warning("%s", problem)
        return None, problem


class ResponseCache:
    """A small SQLite key/value store of responses, safe for several processes.

    Unreadable rows are skipped and counted (``corrupt_rows``); a failing write disables the cache
    for the rest of the run with one warning (``disabled``) instead of failing the run."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(os.path.expanduser(str(path)))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.corrupt_rows = 0
        self.disabled: str | None = None
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), timeout=60, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        # the models with at least one stored response: a run can tell up front that it will need
        # the weights (nothing cached for this model) and load them while the data loads
        self._db.execute("CREATE TABLE IF NOT EXISTS models (model TEXT PRIMARY KEY)")
        self._db.commit()
        self._noted: set[str] = set()

    def get_many(self, keys: Iterable[str]) -> dict[str, Response]:
        """Cached responses for the given keys (missing keys are absent from the result)."""
        keys = list(keys)
        out: dict[str, Response] = {}
        if self.disabled:
            return out
        with self._lock:
            try:
                for i in range(0, len(keys), 500):
                    chunk = keys[i : i + 500]
                    q = f"SELECT key, value FROM responses WHERE key IN ({','.join('?' * len(chunk))})"
                    for key, value in self._db.execute(q, chunk):
                        try:
                            out[key] = _decode(value)
                        except (ValueError, TypeError, KeyError, AttributeError):
                            self.corrupt_rows += 1  # that request is simply generated again
            except sqlite3.Error as exc:
                self._disable(f"cannot read: {exc}")
        return out

    def put_many(self, items: Iterable[tuple[str, Response]], model: str | None = None) -> None:
        """Store successful responses (responses with an error are never cached), noting ``model``
        (its identity hash) as having responses here (:meth:`has_model`)."""
        rows = [(k, _encode(r)) for k, r in items if r.error is None]
        if not rows or self.disabled:
            return
        with self._lock:
            try:
                self._db.executemany("INSERT OR REPLACE INTO responses (key, value) VALUES (?, ?)", rows)
                if model is not None and model not in self._noted:
                    self._db.execute("INSERT OR IGNORE INTO models (model) VALUES (?)", (model,))
                    self._noted.add(model)
                self._db.commit()
            except sqlite3.Error as exc:  # read-only, full disk, locked for too long
                self._disable(f"cannot write: {exc}")

    def has_model(self, model: str) -> bool:
        """Whether responses of ``model`` (identity hash) were ever stored here."""
        if self.disabled:
            return False
        with self._lock:
            try:
                row = self._db.execute("SELECT 1 FROM models WHERE model = ? LIMIT 1", (model,)).fetchone()
            except sqlite3.Error:
                return False
        return row is not None

    def _disable(self, why: str) -> None:
        self.disabled = why
        log.warning("response cache %s %s; continuing without it", self.path, why)

    def problems(self) -> dict[str, Any]:
        """Counters for results.json (empty when the cache worked)."""
        out: dict[str, Any] = {}
        if self.corrupt_rows:
            out["cache_corrupt_rows"] = self.corrupt_rows
        if self.disabled:
            out["cache_disabled"] = self.disabled
        return out

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error:  # pragma: no cover - closing a broken database
                pass


def _encode(r: Response) -> str:
    return json.dumps(
        {
            "text": r.text,
            "prompt": r.prompt,
            "input_tokens": r.input_tokens,
            "output_tokens": r.output_tokens,
            "extra": r.extra,
        },
        ensure_ascii=False,
    )


def _decode(value: str) -> Response:
    d: dict[str, Any] = json.loads(value)
    if not isinstance(d, dict) or not isinstance(d.get("text"), str):
        raise ValueError("not a cached response")
    return Response(
        text=d["text"],
        prompt=d.get("prompt"),
        input_tokens=d.get("input_tokens"),
        output_tokens=d.get("output_tokens"),
        extra=d.get("extra") or {},
    )

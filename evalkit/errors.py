"""Exceptions that evalkit turns into one clear line on the command line.

Every error a user can cause or fix (a wrong name, a missing file, a missing optional dependency)
is raised as a subclass of :class:`EvalkitError`; the CLI prints ``evalkit: error: <message>`` and
exits non-zero, showing a traceback only with ``--debug`` / ``EVALKIT_DEBUG=1``.
"""

from __future__ import annotations

import re
from typing import Any

#: ``<_io.BytesIO object at 0x7f3f50f7b100>``: an object's repr with its memory address
_ADDRESS_REPR = re.compile(r"<([A-Za-z_][\w.]*) object at 0x[0-9A-Fa-f]+>")


def stable_message(message: str) -> str:
    """``message`` without memory addresses in object reprs (``<_io.BytesIO object at 0x7f..>``
    becomes ``<_io.BytesIO object>``), so that a per-sample error record reads the same in every
    run and two runs' records compare equal."""
    return _ADDRESS_REPR.sub(r"<\1 object>", message)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's pre-emption, a CI time limit, ``kill``) during a command: raised in
    the main thread like Ctrl-C, so that a run stops the same way (finished samples are saved) and
    the command says so in one line and exits 143 (128 + SIGTERM)."""


class EvalkitError(Exception):
    """A failure with a message that tells the user what went wrong and what to do."""

    exit_code: int = 1


class UsageError(EvalkitError):
    """The command line or configuration is wrong (unknown name, missing file, bad value)."""

    exit_code = 2


class MissingDependencyError(EvalkitError):
    """An optional dependency (vLLM, Java, CoreNLP, a video decoder...) is not installed."""


class InputError(EvalkitError):
    """One sample's input is unusable (corrupt image, missing field); recorded per sample."""


class ModelError(EvalkitError):
    """A backend failed to produce a response for a request (recorded per sample, retried on resume)."""


class BackendFatalError(EvalkitError):
    """The backend cannot serve any request (rejected key, no permission): the run stops at once.

    The runner keeps the samples finished so far; fixing the cause and rerunning resumes. A backend
    that answers a whole window at once (``Model.takes_windows``) puts the answers it already
    received (and paid for) into ``partial`` (position in the call's request list → Response); the
    runner writes and caches them before it stops."""

    def __init__(self, message: str = "", partial: dict[int, Any] | None = None):
        super().__init__(message)
        self.partial: dict[int, Any] = dict(partial or {})


class InternalError(EvalkitError):
    """An exception evalkit did not foresee (a bug, or an operating-system failure such as an I/O
    error), turned into one line by :func:`as_evalkit_error`."""


def as_evalkit_error(exc: BaseException, resumable: bool = True) -> EvalkitError:
    """One clear line for an exception that escaped a command.

    An :class:`EvalkitError` is returned as is. An ``OSError`` (an I/O error, a permission, a
    missing file) names the file and what to do; anything else is an internal error that points to
    ``--debug`` for the traceback. ``resumable`` (a run): samples already written are kept in every
    case, so the message says that rerunning the same command resumes; other commands (report,
    gate...) have nothing to resume and say what to check only."""
    if isinstance(exc, EvalkitError):
        return exc
    kept = "finished samples are kept; rerunning the same command resumes"
    resume = f" — {kept}" if resumable else ""
    if isinstance(exc, OSError):
        what = exc.strerror or str(exc) or type(exc).__name__
        where = f" on {exc.filename}" if exc.filename else ""
        return InternalError(
            f"{what}{where} (errno {exc.errno}); check that path's disk, space and permissions{resume}"
            if exc.errno is not None
            else f"{type(exc).__name__}: {what}{where}{resume}"
        )
    if isinstance(exc, MemoryError):
        advice = "; lower batch_size=<n> (or runner.window_batches)" if resumable else ""
        return InternalError(f"out of memory{advice}{resume}")
    text = str(exc).splitlines()[0] if str(exc) else ""
    return InternalError(
        f"internal error: {type(exc).__name__}{': ' + text if text else ''} — rerun with --debug for "
        f"the traceback and report it{'; ' + kept if resumable else ''}"
    )

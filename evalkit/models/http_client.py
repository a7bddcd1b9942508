"""A reusable client for OpenAI-compatible chat-completions endpoints.

One client serves every evalkit component that talks to an API model — the ``openai`` model
backend (:mod:`evalkit.models.openai_api`) and the LLM judge — so concurrency, retries, timeouts,
key handling and token accounting live in one place. It speaks plain chat messages (OpenAI JSON
dicts) in and :class:`ChatResult` (text + usage + attempts) out; it knows nothing of evalkit
Requests.

Transport: the ``openai`` SDK (imported lazily, at the first request), with its own retries turned
off (``max_retries=0``) so that this module owns the retry policy and can count attempts. The SDK is
evalkit's declared dependency (``openai>=1.40``); the HTTP library under it changed name across
SDK majors (``httpx`` → ``httpx2``), so depending on it directly would be fragile. The SDK gives
connection pooling, Bearer auth under ``base_url`` and typed errors (status, connection, timeout).
Requests go through its generic ``client.post("/chat/completions", body=..., cast_to=object)``
(the SDK's documented way to call an endpoint directly) rather than ``chat.completions.create``:
the JSON body is sent verbatim — server-specific fields (vLLM's ``top_k``, DashScope's
``enable_thinking``) need no special casing — and the SDK's per-request walk of the messages
against its typed schemas (≈ 5 ms of CPU per image-bearing request, under the GIL) is skipped,
which matters at high concurrency.

Policy:

* ``concurrency`` requests in flight at most (a thread pool; a semaphore bounds in-flight HTTP
  calls across all callers of one client).
* Retries (``max_retries`` after the first attempt) on 408/409/429/5xx, connection errors and
  timeouts, with exponential backoff and full jitter (``uniform(0, min(backoff_max_s,
  backoff_base_s * 2**k))``). A ``Retry-After``/``retry-after-ms`` header (seconds or HTTP date) is
  honoured: the wait is at least its value; a value beyond ``retry_after_max_s`` fails at once.
* 400/422 and other 4xx fail that request at once (its sample gets an error record); 429
  ``insufficient_quota`` too (waiting does not add credit). 401/403/404 mean the key, permission or
  endpoint is wrong for every request: :class:`FatalChatError` (a
  :class:`~evalkit.errors.BackendFatalError`) stops the run at once.
* A ``200`` whose body is not a usable chat completion is a per-request :class:`ChatError`, never
  an exception of another type (which would make the runner re-send the whole batch). An error
  object in a 200, truncated/unparseable JSON and ``choices: []`` look transient and are retried like
  a 5xx; a body of the wrong shape (``choices`` not a list, ``message`` not an object, not JSON
  at all) fails that request at once.
* ``timeout_s`` bounds each *attempt as a whole* — connect, send, headers and body — not each
  read: every socket operation of the attempt gets at most the time left until its deadline
  (see :func:`install_attempt_deadlines`), so a server dripping one byte at a time cannot hold a
  request longer than ``timeout_s``. One request therefore takes at most
  ``(max_retries + 1) * timeout_s`` plus its backoff waits (each at most ``backoff_max_s``, or a
  ``Retry-After`` of at most ``retry_after_max_s``).
* The API key is read from the environment variable *named* in config (``api_key_env``) and is
  never logged; every message this module produces goes through :func:`redact`.
"""

from __future__ import annotations

import email.utils
import importlib
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from evalkit.errors import BackendFatalError, ModelError, UsageError

log = logging.getLogger(__name__)

#: A chat conversation in OpenAI JSON form: ``[{"role": "user", "content": ...}, ...]``.
Messages = Sequence[Mapping[str, Any]]

MASK = "***"
#: status codes worth retrying (rate limits, server errors, request timeout, conflict/lock timeout)
RETRYABLE_STATUS = frozenset({408, 409, 429})
#: status codes that mean the endpoint itself is misconfigured (key, permission, model/path)
FATAL_STATUS = frozenset({401, 403, 404})
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',;}]+")
_SK_KEY = re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}")
_MAX_MESSAGE = 400


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every secret value, Bearer token and ``sk-...`` key replaced by ``***``.

    Secrets shorter than 4 characters are ignored (masking them would mangle ordinary text).
    """
    for s in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(s, MASK)
    text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    return _SK_KEY.sub(MASK, text)


def one_line(text: str, limit: int = _MAX_MESSAGE) -> str:
    """Collapse whitespace to single spaces and cut to ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def public_url(url: str) -> str:
    """``url`` without user info, query string or fragment (where credentials sometimes hide)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def url_secrets(url: str) -> list[str]:
    """Credential-looking pieces of ``url`` (password, user, query values) to redact in messages."""
    parts = urlsplit(url)
    out = [parts.password or "", parts.username or ""]
    for pair in parts.query.split("&"):
        if "=" in pair:
            out.append(pair.split("=", 1)[1])
    return [s for s in out if s]


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if not headers:
        return None
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    ms = lower.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = lower.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


# --------------------------------------------------------------------------- attempt deadlines
_ATTEMPT = threading.local()


@contextmanager
def attempt_deadline(seconds: float) -> Iterator[None]:
    """Within this block, every socket operation of this thread ends ``seconds`` from now at the
    latest (on clients prepared by :func:`install_attempt_deadlines`)."""
    previous = getattr(_ATTEMPT, "deadline", None)
    _ATTEMPT.deadline = time.monotonic() + seconds
    try:
        yield
    finally:
        _ATTEMPT.deadline = previous


def _time_left(timeout: float | None, expired: type[Exception]) -> float | None:
    """``timeout`` cut to the time left before this thread's attempt deadline; raises ``expired``
    when it has passed."""
    deadline = getattr(_ATTEMPT, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the request's total time limit was reached")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream:
    """A network stream whose reads and writes never outlast the current attempt's deadline."""

    def __init__(self, inner: Any, errors: Any) -> None:
        self._inner = inner
        self._errors = errors

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _time_left(timeout, self._errors.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _time_left(timeout, self._errors.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> Any:
        tls = self._inner.start_tls(
            ssl_context, server_hostname, _time_left(timeout, self._errors.ConnectTimeout)
        )
        return _DeadlineStream(tls, self._errors)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend:
    """A network backend (connection factory) whose connections obey the attempt deadline."""

    def __init__(self, inner: Any, errors: Any) -> None:
        self._inner = inner
        self._errors = errors

    def connect_tcp(
        self, host: str, port: int, timeout: float | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        t = _time_left(timeout, self._errors.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_tcp(host, port, t, *args, **kwargs), self._errors)

    def connect_unix_socket(self, path: str, timeout: float | None = None, *args: Any, **kwargs: Any) -> Any:
        t = _time_left(timeout, self._errors.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_unix_socket(path, t, *args, **kwargs), self._errors)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def install_attempt_deadlines(sdk: Any) -> bool:
    """Make the connections of an ``openai.OpenAI`` client obey :func:`attempt_deadline`.

    The SDK's HTTP library bounds each socket read, never a whole request; its connection pools
    accept a *network backend* (the factory of their connections), so each pool's backend is
    wrapped in one whose reads, writes and connects are cut to the time left before the calling
    thread's deadline. Proxy pools set up from the environment are wrapped too. Returns False
    (the per-read timeout alone then applies) when the client is not built the expected way.
    """
    http = getattr(sdk, "_client", None)
    transports = [getattr(http, "_transport", None), *dict(getattr(http, "_mounts", None) or {}).values()]
    wrapped = False
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        inner = getattr(pool, "_network_backend", None)
        if inner is None or isinstance(inner, _DeadlineBackend):
            continue
        try:
            errors = importlib.import_module(type(pool).__module__.split(".")[0])
            _ = (errors.ReadTimeout, errors.WriteTimeout, errors.ConnectTimeout)
        except (ImportError, AttributeError):
            continue
        pool._network_backend = _DeadlineBackend(inner, errors)
        wrapped = True
    if not wrapped:
        log.warning("model.timeout_s bounds each read only: the HTTP client has no pool to wrap")
    return wrapped


class ChatError(ModelError):
    """A chat request failed (after retries, or at once when retrying cannot help).

    Attributes:
        status: the HTTP status, or ``None`` for connection errors and timeouts.
        retryable: whether the failure was of a transient kind.
        fatal: the endpoint is misconfigured (401/403/404): every other request will fail too.
        attempts: how many HTTP attempts were made.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        fatal: bool = False,
        attempts: int = 0,
        kind: str = "http",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.fatal = fatal
        self.attempts = attempts
        self.kind = kind


class FatalChatError(ChatError, BackendFatalError):
    """401/403/404: the key, permission or endpoint is wrong, so every request would fail.

    A :class:`~evalkit.errors.BackendFatalError`: the run stops at once with this one line."""


def _chat_error(message: str, **kwargs: Any) -> ChatError:
    """A :class:`FatalChatError` when ``fatal`` is set, else a :class:`ChatError`."""
    return (FatalChatError if kwargs.get("fatal") else ChatError)(message, **kwargs)


class _MalformedReply(Exception):
    """A 200 answer that is not a usable chat completion (carries how to treat it)."""

    def __init__(self, failure: _Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@dataclass
class ChatResult:
    """The outcome of one chat request.

    ``error`` is ``None`` on success; otherwise ``text`` is empty and ``error`` holds one redacted
    line (:meth:`ChatClient.complete_many` returns failures this way instead of raising).
    """

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    attempts: int = 0
    latency_s: float = 0.0
    finish_reason: str | None = None
    model: str | None = None
    system_fingerprint: str | None = None
    error: str | None = None
    error_kind: str | None = None  # "http", "connection", "timeout", "malformed", "input", "cancelled"
    status: int | None = None

    @property
    def ok(self) -> bool:
        """True when the request succeeded."""
        return self.error is None


@dataclass
class _Failure:
    message: str
    retryable: bool
    status: int | None = None
    retry_after: float | None = None
    kind: str = "http"


#: :class:`ChatClient` arguments a flat config may set: concurrency, timeout, retries and backoff
CLIENT_TUNING_KEYS = (
    "concurrency",
    "timeout_s",
    "max_retries",
    "backoff_base_s",
    "backoff_max_s",
    "retry_after_max_s",
)


def client_tuning(config: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`CLIENT_TUNING_KEYS` that ``config`` sets (keys holding None are left out)."""
    return {name: config[name] for name in CLIENT_TUNING_KEYS if config.get(name) is not None}


def api_key_from_env(env: Any, missing: Callable[[str], str]) -> str | None:
    """The API key held by the environment variable named ``env`` (None when ``env`` is empty:
    no authentication).

    Raises:
        UsageError: the variable is not set; the message is ``missing(<variable name>)``.
    """
    if not env:
        return None
    key = os.environ.get(str(env))
    if not key:
        raise UsageError(missing(str(env)))
    return key


@dataclass
class ChatUsage:
    """Running totals of one client (thread-safe through the client's lock)."""

    requests: int = 0
    failed: int = 0
    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, int]:
        """JSON-ready totals."""
        return {
            "requests": self.requests,
            "failed": self.failed,
            "attempts": self.attempts,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }


class ChatClient:
    """Concurrent, retrying client for one model on one OpenAI-compatible endpoint.

    Args:
        model: the model name sent with every request.
        base_url: the endpoint root, e.g. ``https://api.openai.com/v1``.
        api_key: the key itself (prefer :meth:`from_config`, which reads it from the environment).
            ``None`` sends the placeholder ``EMPTY`` (local servers without auth).
        api_key_env: the name of the variable the key came from (for messages only).
        concurrency: requests in flight at most.
        timeout_s: timeout of each attempt.
        max_retries: retries after the first attempt.
        backoff_base_s, backoff_max_s: exponential backoff with full jitter.
        retry_after_max_s: a ``Retry-After`` longer than this fails the request at once.
        extra_body: JSON merged into every request body (server-specific parameters).
        default_params: chat-completions parameters for every request (``temperature``...).
    """

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        api_key: str | None = None,
        api_key_env: str | None = None,
        concurrency: int = 4,
        timeout_s: float = 60.0,
        max_retries: int = 5,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        retry_after_max_s: float = 300.0,
        extra_body: Mapping[str, Any] | None = None,
        default_params: Mapping[str, Any] | None = None,
    ) -> None:
        if not model:
            raise UsageError("chat client: no model name (set model.name=<model>)")
        if not base_url or not str(base_url).startswith(("http://", "https://")):
            raise UsageError(f"chat client: base_url must be an http(s) URL, got {base_url!r}")
        if int(concurrency) < 1 or int(max_retries) < 0 or float(timeout_s) <= 0:
            raise UsageError("chat client: need concurrency >= 1, max_retries >= 0 and timeout_s > 0")
        self.model = str(model)
        self.base_url = str(base_url).rstrip("/")
        self.display_url = public_url(self.base_url)
        self.api_key_env = api_key_env
        self._api_key = api_key or None
        self.concurrency = int(concurrency)
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_base_s = float(backoff_base_s)
        self.backoff_max_s = float(backoff_max_s)
        self.retry_after_max_s = float(retry_after_max_s)
        self.extra_body = dict(extra_body or {})
        self.default_params = dict(default_params or {})
        self._secrets = [s for s in [self._api_key, *url_secrets(self.base_url)] if s]
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._usage = ChatUsage()
        self._sdk: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._rng = random.Random()

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **overrides: Any) -> ChatClient:
        """Build from a flat config (``name``, ``base_url``, ``api_key_env``, ``concurrency``,
        ``timeout_s``, ``max_retries``, ``backoff_base_s``, ``backoff_max_s``, ``retry_after_max_s``,
        ``extra_body``), reading the key from the environment variable named by ``api_key_env``.

        Raises:
            UsageError: the config holds a key itself, or the named variable is not set.
        """
        if config.get("api_key"):
            raise UsageError(
                "put the API key in an environment variable and name it with api_key_env, "
                "never in the config (it would be written to results)"
            )
        env = config.get("api_key_env")
        key = api_key_from_env(
            env,
            lambda name: (
                f"environment variable {name} is not set: export {name}=<your API key> "
                f"(or set model.api_key_env=null for a server without authentication)"
            ),
        )
        kwargs: dict[str, Any] = {
            "api_key": key,
            "api_key_env": str(env) if env else None,
            "extra_body": _plain(config.get("extra_body") or {}),
            **client_tuning(config),
        }
        kwargs.update(overrides)
        return cls(str(config.get("name") or ""), str(config.get("base_url") or ""), **kwargs)

    def __repr__(self) -> str:
        return (
            f"ChatClient(model={self.model!r}, base_url={self.display_url!r}, concurrency={self.concurrency})"
        )

    # ------------------------------------------------------------------ public API
    @property
    def usage(self) -> dict[str, int]:
        """Totals so far: requests, failed, attempts, prompt_tokens, completion_tokens."""
        with self._lock:
            return self._usage.to_dict()

    def redact(self, text: str) -> str:
        """:func:`redact` with this client's secrets (key, URL credentials)."""
        return redact(text, self._secrets)

    def complete(
        self,
        messages: Messages,
        params: Mapping[str, Any] | None = None,
        *,
        max_retries: int | None = None,
        cancel: threading.Event | None = None,
    ) -> ChatResult:
        """Send one conversation, retrying transient failures; returns text and usage.

        Args:
            messages: OpenAI chat messages.
            params: chat-completions parameters (``temperature``, ``max_tokens``, ``top_p``,
                ``stop``, ``seed``...; an ``extra_body`` dict is merged over the client's).
            max_retries: override the client's retry count for this call.
            cancel: when set, no further attempt is made.

        Raises:
            ChatError: after the last attempt, at once for non-retryable errors.
        """
        merged = {**self.default_params, **dict(params or {})}
        extra_body = {**self.extra_body, **dict(merged.pop("extra_body", None) or {})}
        body = {"model": self.model, **merged, **extra_body}
        retries = self.max_retries if max_retries is None else int(max_retries)
        sdk = self._client()
        t0 = time.perf_counter()
        attempt = 0
        while True:
            if cancel is not None and cancel.is_set():
                raise ChatError(
                    "cancelled: the endpoint failed for another request", kind="cancelled", attempts=attempt
                )
            attempt += 1
            try:
                with self._slots, attempt_deadline(self.timeout_s):
                    resp = sdk.post(
                        "/chat/completions",
                        body={**body, "messages": list(messages)},
                        cast_to=object,
                        options={"timeout": self.timeout_s},
                    )
                result = self._parse(resp, attempt, time.perf_counter() - t0)
            except _MalformedReply as bad:
                failure = bad.failure
            except Exception as exc:  # noqa: BLE001 - classified below, re-raised as ChatError
                failure = self._classify(exc)
            else:
                self._count(
                    failed=False,
                    attempts=attempt,
                    prompt=result.prompt_tokens,
                    completion=result.completion_tokens,
                )
                return result
            if not failure.retryable or attempt > retries:
                self._count(failed=True, attempts=attempt)
                suffix = f" after {attempt} attempts" if attempt > 1 else ""
                raise _chat_error(
                    self.redact(one_line(failure.message + suffix)),
                    status=failure.status,
                    retryable=failure.retryable,
                    fatal=failure.status in FATAL_STATUS,
                    attempts=attempt,
                    kind=failure.kind,
                ) from None
            wait = self._backoff(attempt, failure.retry_after)
            log.info(
                "%s; retry %d/%d in %.2fs", self.redact(one_line(failure.message)), attempt, retries, wait
            )
            if cancel is not None:
                cancel.wait(wait)
            else:
                time.sleep(wait)

    def complete_many(
        self,
        conversations: Sequence[Messages | Callable[[], Messages]],
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        stop_on_fatal: bool = True,
    ) -> list[ChatResult]:
        """Send many conversations concurrently; results in input order, failures as results.

        A conversation may be given as a callable that builds it (it then runs in a worker thread:
        image encoding overlaps with the network). If it raises, that result has
        ``error_kind="input"``. ``params`` is one dict for all, or one per conversation.

        Raises:
            ChatError: with ``stop_on_fatal``, the first 401/403/404 (remaining requests are
                cancelled): the endpoint is misconfigured and every request would fail. Its
                ``partial`` maps the positions of the requests answered before the stop to their
                :class:`ChatResult`.
        """
        n = len(conversations)
        if params is None or isinstance(params, Mapping):
            per = [params or {}] * n
        else:
            per = list(params)
            if len(per) != n:
                raise ValueError(f"{len(per)} params for {n} conversations")
        cancel = threading.Event()

        def one(i: int) -> ChatResult:
            conv = conversations[i]
            try:
                messages = conv() if callable(conv) else conv
            except Exception as exc:  # noqa: BLE001 - a bad input fails its own request only
                return ChatResult(
                    text="",
                    error=self.redact(one_line(f"could not build the request: {type(exc).__name__}: {exc}")),
                    error_kind="input",
                )
            try:
                return self.complete(messages, per[i], cancel=cancel)
            except ChatError as exc:
                if exc.fatal and stop_on_fatal:
                    cancel.set()
                    raise
                return ChatResult(
                    text="", error=str(exc), error_kind=exc.kind, status=exc.status, attempts=exc.attempts
                )

        if n == 1:
            return [one(0)]
        futures = [self._executor().submit(one, i) for i in range(n)]
        results: list[ChatResult] = []
        fatal: ChatError | None = None
        for f in futures:
            try:
                results.append(f.result())
            except ChatError as exc:
                fatal = fatal or exc
                results.append(ChatResult(text="", error=str(exc), error_kind=exc.kind, status=exc.status))
        if fatal is not None:
            # the answers received before the stop were served (and paid for): hand them back
            fatal.partial = {i: r for i, r in enumerate(results) if r.ok}
            raise fatal
        return results

    def health_check(self) -> None:
        """One tiny request (``max_tokens=1``) that proves the endpoint, key and model work.

        Raises:
            ChatError: one clear line for an unreachable, unauthorised or misconfigured endpoint.
        """
        try:
            self.complete(
                [{"role": "user", "content": "ping"}], {"max_tokens": 1}, max_retries=min(1, self.max_retries)
            )
        except ChatError as exc:
            raise FatalChatError(
                self._health_message(exc),
                status=exc.status,
                retryable=exc.retryable,
                fatal=True,
                attempts=exc.attempts,
                kind=exc.kind,
            ) from None

    def close(self) -> None:
        """Shut the worker threads down and close HTTP connections."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._sdk is not None:
            try:
                self._sdk.close()
            finally:
                self._sdk = None

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _client(self) -> Any:
        with self._lock:
            if self._sdk is None:
                try:
                    import openai
                except ImportError as exc:  # pragma: no cover - openai is a core dependency
                    from evalkit.errors import MissingDependencyError

                    raise MissingDependencyError(
                        "the API backend needs the openai package: pip install openai"
                    ) from exc
                # The key is always passed explicitly (never None: the SDK would then read
                # OPENAI_API_KEY and send it to a third-party server).
                self._sdk = openai.OpenAI(
                    api_key=self._api_key or "EMPTY",
                    base_url=self.base_url,
                    timeout=self.timeout_s,
                    max_retries=0,
                )
                install_attempt_deadlines(self._sdk)
            return self._sdk

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.concurrency, thread_name_prefix="evalkit-chat"
                )
            return self._pool

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        cap = min(self.backoff_max_s, self.backoff_base_s * (2 ** (attempt - 1)))
        with self._lock:
            jitter = self._rng.uniform(0.0, cap)
        if retry_after is not None:
            # at least what the server asked for, plus a little jitter so clients do not stampede
            return retry_after + min(jitter, 0.1 * retry_after + 0.01)
        return jitter

    def _count(
        self, *, failed: bool, attempts: int, prompt: int | None = None, completion: int | None = None
    ) -> None:
        with self._lock:
            u = self._usage
            u.attempts += attempts
            if failed:
                u.failed += 1
            else:
                u.requests += 1
                u.prompt_tokens += prompt or 0
                u.completion_tokens += completion or 0

    def _parse(self, resp: Any, attempts: int, latency: float) -> ChatResult:
        """The ChatResult of a 200 body; raises :class:`_MalformedReply` for an unusable one."""
        where = f"{self.display_url} (model {self.model!r})"
        if not isinstance(resp, Mapping):
            raise _MalformedReply(
                _Failure(
                    f"{where} returned a {type(resp).__name__}, not a JSON object "
                    "(is model.base_url a chat-completions endpoint?)",
                    False,
                    200,
                    kind="malformed",
                )
            )
        if "choices" not in resp and resp.get("error"):
            detail = resp["error"]
            if isinstance(detail, Mapping):
                detail = detail.get("message") or detail.get("code") or detail
            raise _MalformedReply(
                _Failure(f"{where} answered 200 with an error: {detail}", True, 200, kind="malformed")
            )
        choices = resp.get("choices")
        if choices is None or (isinstance(choices, list) and not choices):
            raise _MalformedReply(
                _Failure(f"{where} answered 200 with no choices", True, 200, kind="malformed")
            )
        if not isinstance(choices, list) or not isinstance(choices[0], Mapping):
            raise _MalformedReply(
                _Failure(
                    f"{where} answered 200 with malformed choices (a {type(choices).__name__} "
                    f"of {type(choices[0]).__name__ if isinstance(choices, list) else '...'})",
                    False,
                    200,
                    kind="malformed",
                )
            )
        choice = choices[0]
        message = choice.get("message")
        if message is None:
            message = {}
        if not isinstance(message, Mapping):
            raise _MalformedReply(
                _Failure(
                    f"{where} answered 200 with a malformed message (a {type(message).__name__}, "
                    "not an object)",
                    False,
                    200,
                    kind="malformed",
                )
            )
        text = _content_text(message.get("content"))
        usage = resp.get("usage") if isinstance(resp.get("usage"), Mapping) else {}
        finish = choice.get("finish_reason")
        return ChatResult(
            text=text,
            prompt_tokens=_int_or_none(usage.get("prompt_tokens")),
            completion_tokens=_int_or_none(usage.get("completion_tokens")),
            attempts=attempts,
            latency_s=latency,
            finish_reason=str(finish) if finish is not None else None,
            model=resp.get("model") if isinstance(resp.get("model"), str) else None,
            system_fingerprint=resp.get("system_fingerprint")
            if isinstance(resp.get("system_fingerprint"), str)
            else None,
        )

    def _classify(self, exc: BaseException) -> _Failure:
        import openai

        where = self.display_url
        if isinstance(exc, openai.APITimeoutError):
            return _Failure(
                f"no answer from {where} within {self.timeout_s:g}s (timeout)", True, kind="timeout"
            )
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            detail = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
            return _Failure(f"connection to {where} failed: {detail}", True, kind="connection")
        if isinstance(exc, ValueError):  # the SDK's JSON decoding of a 200 body (cut off, not JSON)
            return _Failure(
                f"{where} answered 200 with a body that is not valid JSON (truncated?): {exc}",
                True,
                200,
                kind="malformed",
            )
        if isinstance(exc, openai.APIStatusError):
            status = int(exc.status_code)
            server_msg, code = _error_detail(exc)
            headers = getattr(getattr(exc, "response", None), "headers", None)
            retry_after = parse_retry_after(dict(headers) if headers is not None else None)
            retryable = status in RETRYABLE_STATUS or status >= 500
            text = f"HTTP {status} from {where}: {server_msg}"
            if status == 429 and code == "insufficient_quota":
                return _Failure(text + " (quota exhausted; not retried)", False, status)
            if retryable and retry_after is not None and retry_after > self.retry_after_max_s:
                return _Failure(
                    text
                    + f" (server asks to wait {retry_after:.0f}s > retry_after_max_s={self.retry_after_max_s:g})",
                    False,
                    status,
                )
            return _Failure(text, retryable, status, retry_after)
        return _Failure(f"request to {where} failed: {type(exc).__name__}: {exc}", False, kind="other")

    def _health_message(self, exc: ChatError) -> str:
        where, detail = self.display_url, str(exc)
        key_from = f"${self.api_key_env}" if self.api_key_env else "no key (model.api_key_env is null)"
        if exc.kind == "connection":
            msg = f"cannot reach the chat endpoint at {where} — is the server running and model.base_url right? ({detail})"
        elif exc.kind == "timeout":
            msg = f"the chat endpoint at {where} did not answer within {self.timeout_s:g}s ({detail})"
        elif exc.status == 401:
            msg = f"the endpoint at {where} rejected the API key from {key_from} (HTTP 401): check the key ({detail})"
        elif exc.status == 403:
            msg = f"the API key from {key_from} may not use model {self.model!r} at {where} (HTTP 403) ({detail})"
        elif exc.status == 404:
            msg = (
                f"model {self.model!r} or the chat path not found at {where} (HTTP 404): check model.name "
                f"and model.base_url (usually ending in /v1) ({detail})"
            )
        else:
            msg = f"health check of {where} with model {self.model!r} failed: {detail}"
        return self.redact(one_line(msg, limit=2 * _MAX_MESSAGE))


def _content_text(content: Any) -> str:
    """The text of a reply message (a string, or a list of content parts on some servers)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return str(content)


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _error_detail(exc: Any) -> tuple[str, str | None]:
    """The server's own error message and code from an SDK status error."""
    body = getattr(exc, "body", None)
    if isinstance(body, Mapping):
        err = body.get("error", body)
        if isinstance(err, Mapping):
            msg = err.get("message") or err.get("msg") or ""
            code = err.get("code") or err.get("type")
            if msg:
                return str(msg), (str(code) if code else None)
        elif isinstance(err, str):
            return err, None
    if isinstance(body, str) and body.strip():
        return body, None
    return str(getattr(exc, "message", "") or exc), None


def _plain(obj: Any) -> Any:
    """Nested mappings/sequences (OmegaConf containers included) as plain dicts and lists."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple) or (
        isinstance(obj, Sequence) and not isinstance(obj, str | bytes) and type(obj).__name__ == "ListConfig"
    ):
        return [_plain(v) for v in obj]
    return obj

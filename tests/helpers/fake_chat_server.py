"""A real, threaded chat-completions HTTP server on 127.0.0.1 for tests and benchmarks.

It speaks enough of the OpenAI protocol for evalkit's API backend and LLM judge:

* ``POST /v1/chat/completions`` — answers deterministically from the request content (see
  :func:`default_reply`) or from a scripted ``reply_fn(request_json) -> str``; reports token usage;
  truncates the reply to ``max_tokens`` words (``finish_reason: "length"``).
* ``GET /v1/models`` — lists the served model names.

Faults are injected by a *seeded, order-independent* schedule: whether the n-th attempt at a given
request content fails (and how) depends only on ``(seed, content, n)``, never on thread timing, so a
concurrent run meets the same faults every time. Fault kinds:

* ``"429"`` — ``429 Too Many Requests`` with ``Retry-After: <retry_after_s>``;
* ``"500"`` — ``500 Internal Server Error``;
* ``"drop"`` — the request is read, then the connection is closed without a response;
* ``"slow"`` — the server waits ``slow_s`` (longer than the client's timeout), then sends the
  marker reply :data:`SLOW_REPLY`; a client that waited for it returns a wrong answer;
* ``"400"`` and ``"quota"`` (only through ``fault_fn``) — permanent errors: 400 bad request, and
  429 ``insufficient_quota``;
* ``"401"`` and ``"403"`` (only through ``fault_fn``) — the key is rejected (e.g. revoked mid-run);
* malformed ``200`` answers (only through ``fault_fn``): ``"error_body"`` (a 200 whose JSON is an
  ``{"error": ...}`` object), ``"truncated"`` (the JSON cut in half, with a matching
  ``Content-Length``), ``"empty_choices"`` (``choices: []``), ``"message_list"`` (``message`` is a
  list) and ``"choices_object"`` (``choices`` is an object, not a list);
* ``"drip"`` (only through ``fault_fn``) — headers at once, then the body one byte every
  ``drip_interval_s`` (a server that never stalls long enough for a per-read timeout).

Every request is recorded (:class:`RecordedRequest`) with its outcome, so tests can check that no
content was requested again after it succeeded, and the peak number of requests in flight.

Usage::

    with FakeChatServer(latency_s=0.05, fault_rate=0.3, seed=1) as server:
        client = ChatClient(model="fake-vl", base_url=server.url, ...)
"""

from __future__ import annotations

import hashlib
import json
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: transient faults (a retrying client gets past them); the default random schedule draws from these
FAULT_KINDS = ("429", "500", "drop", "slow")
#: every kind ``fault_fn`` may return: the transient ones plus permanent ``400`` (bad request)
#: and ``quota`` (429 with code ``insufficient_quota``)
#: ``401``/``403`` (key rejected), malformed 200 bodies and the slow ``drip``
MALFORMED_200 = ("error_body", "truncated", "empty_choices", "message_list", "choices_object")
ALL_FAULT_KINDS = (*FAULT_KINDS, "400", "quota", "401", "403", *MALFORMED_200, "drip")
#: what a "slow" fault finally sends; a correct client has given up long before
SLOW_REPLY = "LATE-REPLY-AFTER-TIMEOUT"


def content_key(body: Mapping[str, Any]) -> str:
    """A stable hash of a chat-completions request body (model, messages and parameters)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _texts_and_images(messages: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    texts: list[str] = []
    images: list[str] = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            texts.append(content)
            continue
        for part in content or []:
            kind = part.get("type")
            if kind == "text":
                texts.append(str(part.get("text", "")))
            elif kind == "image_url":
                images.append(str(part["image_url"]["url"]))
            elif kind == "video":
                images.extend(str(u) for u in part.get("video", []))
    return texts, images


def default_reply(body: Mapping[str, Any]) -> str:
    """The deterministic answer to a request: digests of its text and of its image data.

    ``"answer <text digest> <image digest> images=<n>"`` — any change in text, image bytes, image
    order or model name changes the answer, so tests can check what the server really received.
    """
    texts, images = _texts_and_images(body.get("messages") or [])
    t = hashlib.sha256(("\n".join(texts) + "|" + str(body.get("model"))).encode()).hexdigest()[:12]
    i = hashlib.sha256("\n".join(images).encode()).hexdigest()[:12]
    return f"answer {t} {i} images={len(images)}"


@dataclass
class RecordedRequest:
    """One request the server received."""

    seq: int
    method: str
    path: str
    body: dict[str, Any] | None
    key: str | None
    attempt: int
    outcome: str  # "pending", "ok", a fault kind, or the status sent ("401", "404", "400")
    authorized: bool
    start: float
    end: float = 0.0

    @property
    def succeeded(self) -> bool:
        """True when the server sent a valid answer."""
        return self.outcome == "ok"


@dataclass
class FakeChatServer:
    """A threaded chat-completions server on 127.0.0.1 (see the module docstring).

    Args:
        models: served model names; requests for another model get 404 (``None``: accept any).
        api_key: when set, requests must carry ``Authorization: Bearer <api_key>`` (else 401).
        echo_key_in_errors: a careless server: its 401 message repeats the key it was given.
        latency_s: delay before every answer (faults included).
        fault_rate: probability that an attempt at a request content fails.
        faults: the fault kinds drawn from (uniformly).
        seed: seeds the fault schedule.
        max_faults_per_key: at most this many faulty attempts per content (so every request can
            finish with enough retries).
        retry_after_s: the ``Retry-After`` value sent with 429 (seconds; ``None``: no header).
        slow_s: how long a ``"slow"`` fault waits before answering.
        drip_interval_s: the pause between the body bytes of a ``"drip"`` fault.
        bind_port: the port to listen on (0: a free one); a restarted server can take its
            predecessor's port, so a resumed run sees the same ``base_url``.
        reply_fn: scripted replies, ``reply_fn(request_json) -> str`` (default: :func:`default_reply`).
        fault_fn: an explicit schedule, ``fault_fn(seq, body, attempt) -> kind | None``; replaces the
            seeded one (``seq`` counts chat requests from 0 in arrival order).
    """

    models: Sequence[str] | None = ("fake-vl",)
    api_key: str | None = None
    echo_key_in_errors: bool = False
    latency_s: float = 0.0
    fault_rate: float = 0.0
    faults: Sequence[str] = FAULT_KINDS
    seed: int = 0
    max_faults_per_key: int = 3
    retry_after_s: float | None = 0.2
    slow_s: float = 1.0
    drip_interval_s: float = 0.25
    bind_port: int = 0
    reply_fn: Callable[[dict[str, Any]], str] | None = None
    fault_fn: Callable[[int, dict[str, Any], int], str | None] | None = None
    requests: list[RecordedRequest] = field(default_factory=list, init=False)
    max_in_flight: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        unknown = set(self.faults) - set(ALL_FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {ALL_FAULT_KINDS}")
        self._lock = threading.Lock()
        self._in_flight = 0
        self._attempts: dict[str, int] = {}
        self._chat_seq = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ life cycle
    def start(self) -> FakeChatServer:
        """Bind to 127.0.0.1 on a free port and serve in a background thread."""
        server = self

        class Handler(_Handler):
            owner = server

        httpd = ThreadingHTTPServer(("127.0.0.1", self.bind_port), Handler, bind_and_activate=False)
        httpd.allow_reuse_address = True
        httpd.daemon_threads = True
        httpd.block_on_close = False
        httpd.request_queue_size = 256
        httpd.server_bind()
        httpd.server_activate()
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port."""
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The base URL clients use (``http://127.0.0.1:<port>/v1``)."""
        return f"http://127.0.0.1:{self.port}/v1"

    # ------------------------------------------------------------------ inspection
    def chat_requests(self) -> list[RecordedRequest]:
        """The recorded chat-completions requests, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def outcomes(self) -> dict[str, int]:
        """How many chat requests ended with each outcome."""
        out: dict[str, int] = {}
        for r in self.chat_requests():
            out[r.outcome] = out.get(r.outcome, 0) + 1
        return out

    def repeated_after_success(self) -> list[RecordedRequest]:
        """Requests whose content had already been answered successfully when they arrived."""
        done: dict[str, float] = {}
        bad = []
        for r in sorted(self.chat_requests(), key=lambda r: r.start):
            if r.key in done and r.start >= done[r.key]:
                bad.append(r)
            if r.succeeded and r.key is not None:
                done.setdefault(r.key, r.end)
        return bad

    def reset(self) -> None:
        """Forget recorded requests and the per-content attempt counts."""
        with self._lock:
            self.requests.clear()
            self._attempts.clear()
            self._chat_seq = 0
            self.max_in_flight = 0

    # ------------------------------------------------------------------ behaviour
    def _plan(self, body: dict[str, Any], key: str) -> tuple[int, int, str | None]:
        """Register an arrival: returns (seq, attempt index for this content, fault kind or None)."""
        with self._lock:
            seq = self._chat_seq
            self._chat_seq += 1
            attempt = self._attempts.get(key, 0)
            self._attempts[key] = attempt + 1
        if self.fault_fn is not None:
            return seq, attempt, self.fault_fn(seq, body, attempt)
        if attempt >= self.max_faults_per_key or self.fault_rate <= 0:
            return seq, attempt, None
        rng = random.Random(f"{self.seed}:{key}:{attempt}")
        if rng.random() < self.fault_rate:
            return seq, attempt, rng.choice(list(self.faults))
        return seq, attempt, None

    def _record(self, rec: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(rec)

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1


def _usage(body: Mapping[str, Any], reply: str) -> dict[str, int]:
    texts, images = _texts_and_images(body.get("messages") or [])
    prompt = sum(len(t.split()) for t in texts) + 85 * len(images)
    completion = len(reply.split())
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class _Handler(BaseHTTPRequestHandler):
    owner: FakeChatServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave at once (no 40 ms delayed-ACK stalls)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the default log
        return

    # ------------------------------------------------------------------ helpers
    def _send_json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _error(self, status: int, message: str, code: str, headers: Mapping[str, str] | None = None) -> None:
        self._send_json(
            status, {"error": {"message": message, "type": "invalid_request_error", "code": code}}, headers
        )

    def _authorized(self) -> tuple[bool, str]:
        given = self.headers.get("Authorization", "")
        token = given[7:] if given.startswith("Bearer ") else given
        want = self.owner.api_key
        return (want is None or token == want), token

    def _unauthorized(self, token: str) -> None:
        shown = token if self.owner.echo_key_in_errors else (token[:3] + "****" + token[-2:] if token else "")
        self._error(401, f"Incorrect API key provided: {shown}.", "invalid_api_key")

    # ------------------------------------------------------------------ endpoints
    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        owner = self.owner
        ok, token = self._authorized()
        rec = RecordedRequest(-1, "GET", self.path, None, None, 0, "ok", ok, time.monotonic())
        if self.path.rstrip("/").endswith("/models") and self.path.startswith("/v1"):
            if not ok:
                rec.outcome = "401"
                self._unauthorized(token)
            else:
                data = [{"id": m, "object": "model", "owned_by": "evalkit-tests"} for m in owner.models or []]
                self._send_json(200, {"object": "list", "data": data})
        else:
            rec.outcome = "404"
            self._error(404, f"no route {self.path}", "not_found")
        rec.end = time.monotonic()
        owner._record(rec)

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        owner = self.owner
        owner._enter()
        try:
            self._post()
        finally:
            owner._leave()

    def _post(self) -> None:
        owner = self.owner
        start = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        ok, token = self._authorized()
        if not self.path.startswith("/v1/chat/completions"):
            owner._record(
                RecordedRequest(-1, "POST", self.path, None, None, 0, "404", ok, start, time.monotonic())
            )
            self._error(404, f"no route {self.path}", "not_found")
            return
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                raise ValueError("'messages' must be a list")
        except ValueError as exc:
            owner._record(
                RecordedRequest(-1, "POST", self.path, None, None, 0, "400", ok, start, time.monotonic())
            )
            self._error(400, f"invalid request body: {exc}", "invalid_request")
            return
        key = content_key(body)
        seq, attempt, fault = owner._plan(body, key)
        rec = RecordedRequest(seq, "POST", self.path, body, key, attempt, "pending", ok, start)
        owner._record(rec)  # at arrival, so requests still in progress (slow ones) are listed
        try:
            if owner.latency_s > 0:
                time.sleep(owner.latency_s)
            if not ok:
                rec.outcome = "401"
                self._unauthorized(token)
            elif owner.models is not None and body.get("model") not in owner.models:
                rec.outcome = "404"
                self._error(
                    404,
                    f"The model `{body.get('model')}` does not exist or you do not have access to it.",
                    "model_not_found",
                )
            elif fault == "429":
                rec.outcome = "429"
                headers = {} if owner.retry_after_s is None else {"Retry-After": f"{owner.retry_after_s:g}"}
                self._error(429, "Rate limit reached, please retry later.", "rate_limit_exceeded", headers)
            elif fault == "quota":
                rec.outcome = "quota"
                self._error(429, "You exceeded your current quota.", "insufficient_quota")
            elif fault in ("401", "403"):
                rec.outcome = fault
                if fault == "401":
                    self._unauthorized(token)
                else:
                    self._error(403, "This key may not use this model.", "permission_denied")
            elif fault in MALFORMED_200:
                rec.outcome = fault
                self._malformed(body, fault)
            elif fault == "drip":
                rec.outcome = "drip"
                self._drip(body, default_reply(body))
            elif fault == "400":
                rec.outcome = "400"
                self._error(400, "Invalid image: could not decode the image data.", "invalid_image")
            elif fault == "500":
                rec.outcome = "500"
                self._error(500, "The server had an error while processing your request.", "server_error")
            elif fault == "drop":
                rec.outcome = "drop"
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            elif fault == "slow":
                rec.outcome = "slow"
                time.sleep(owner.slow_s)
                self._answer(body, SLOW_REPLY)
            else:
                reply = owner.reply_fn(body) if owner.reply_fn is not None else default_reply(body)
                # marked before sending: the client may act on the reply before this thread resumes
                rec.end, rec.outcome = time.monotonic(), "ok"
                self._answer(body, reply)
        except (BrokenPipeError, ConnectionResetError):
            if rec.outcome in ("pending", "ok"):
                rec.outcome = "drop"
            self.close_connection = True
        finally:
            if not rec.end:
                rec.end = time.monotonic()

    def _malformed(self, body: Mapping[str, Any], kind: str) -> None:
        """A 200 answer whose body is not a usable chat completion (see the module docstring)."""
        good = self._completion(body, default_reply(body))
        if kind == "error_body":
            obj: Any = {"error": {"message": "upstream overloaded, try again", "code": "overloaded"}}
        elif kind == "empty_choices":
            obj = {**good, "choices": []}
        elif kind == "message_list":
            obj = {**good, "choices": [{**good["choices"][0], "message": [good["choices"][0]["message"]]}]}
        elif kind == "choices_object":
            obj = {**good, "choices": good["choices"][0]}
        else:  # truncated: valid HTTP, half a JSON document
            data = json.dumps(good).encode()
            data = data[: len(data) // 2]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            return
        self._send_json(200, obj)

    def _drip(self, body: Mapping[str, Any], reply: str) -> None:
        """Headers at once, then the body one byte every ``drip_interval_s``."""
        data = json.dumps(self._completion(body, reply)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.flush()
        for i in range(len(data)):
            self.wfile.write(data[i : i + 1])
            self.wfile.flush()
            time.sleep(self.owner.drip_interval_s)

    def _answer(self, body: Mapping[str, Any], reply: str) -> None:
        self._send_json(200, self._completion(body, reply))

    def _completion(self, body: Mapping[str, Any], reply: str) -> dict[str, Any]:
        """A chat completion for ``reply`` (cut to ``max_tokens`` words: ``finish_reason: "length"``)."""
        finish = "stop"
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        words = reply.split(" ")
        if isinstance(max_tokens, int) and len(words) > max_tokens:
            reply, finish = " ".join(words[:max_tokens]), "length"
        return {
            "id": "chatcmpl-" + content_key(body)[:16],
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model"),
            "system_fingerprint": "fp_evalkit_tests",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply},
                    "finish_reason": finish,
                }
            ],
            "usage": _usage(body, reply),
        }

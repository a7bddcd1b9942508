"""The API backend under faults (issue 13): malformed 200 answers, slow-drip servers, error bodies,
truncated JSON, 401/403 mid-run, 400 for one request, ``finish_reason``/``truncated``.

Every test counts what the loopback server really received: a request is sent again only when
it did not succeed, and one success means exactly one request for that content.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from evalkit.errors import BackendFatalError, EvalkitError
from evalkit.models.http_client import ChatClient, ChatError, FatalChatError
from evalkit.models.openai_api import OpenAIModel
from evalkit.types import GenerationParams, Request, user_message
from tests.conftest import read_samples
from tests.conftest import run_cli_here as run_cli
from tests.helpers.fake_chat_server import MALFORMED_200, FakeChatServer, content_key, default_reply

TRANSIENT_200 = ("error_body", "truncated", "empty_choices")
BROKEN_SHAPE_200 = ("message_list", "choices_object")


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def client(server: FakeChatServer, **kwargs) -> ChatClient:
    opts = {
        "concurrency": 8,
        "timeout_s": 2.0,
        "max_retries": 3,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.05,
    }
    opts.update(kwargs)
    return ChatClient("fake-vl", server.url, **opts)


def text_requests(n: int, max_new_tokens: int = 16) -> list[Request]:
    gen = GenerationParams(max_new_tokens=max_new_tokens)
    return [Request(f"s{i}", (user_message(f"question number {i}?"),), gen, task="t") for i in range(n)]


def api_model(server: FakeChatServer, **overrides) -> OpenAIModel:
    cfg = {
        "name": "fake-vl",
        "backend": "openai",
        "base_url": server.url,
        "api_key_env": None,
        "concurrency": 8,
        "timeout_s": 2.0,
        "max_retries": 3,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.05,
        "health_check": False,
    }
    cfg.update(overrides)
    return OpenAIModel(cfg)


def per_content(server: FakeChatServer) -> Counter:
    """How many requests the server received for each request content."""
    return Counter(r.key for r in server.chat_requests())


def test_fault_kinds_are_known_to_the_server() -> None:
    assert set(MALFORMED_200) == set(TRANSIENT_200) | set(BROKEN_SHAPE_200)


@pytest.mark.parametrize("kind", TRANSIENT_200)
def test_transient_malformed_200_is_retried_once_then_succeeds(kind: str) -> None:
    with FakeChatServer(fault_fn=lambda seq, body, attempt: kind if attempt == 0 else None) as srv:
        with client(srv) as c:
            res = c.complete(ask("hello"))
    assert res.ok and res.text == default_reply({"model": "fake-vl", "messages": ask("hello")})
    assert res.attempts == 2
    assert [r.outcome for r in srv.chat_requests()] == [kind, "ok"]
    assert srv.repeated_after_success() == []


@pytest.mark.parametrize("kind", TRANSIENT_200)
def test_transient_malformed_200_gives_up_after_bounded_retries(kind: str) -> None:
    with FakeChatServer(fault_fn=lambda seq, body, attempt: kind) as srv:
        with client(srv, max_retries=2) as c:
            with pytest.raises(ChatError) as info:
                c.complete(ask("hello"))
    assert not isinstance(info.value, BackendFatalError)
    assert info.value.kind == "malformed" and info.value.attempts == 3
    assert "after 3 attempts" in str(info.value) and "\n" not in str(info.value)
    assert len(srv.chat_requests()) == 3


@pytest.mark.parametrize("kind", BROKEN_SHAPE_200)
def test_broken_shape_200_is_one_error_never_a_batch_exception(kind: str) -> None:
    """The double-charge bug: an AttributeError/KeyError used to fail the whole batch, which the
    runner then re-sent request by request. Now only the bad request fails, once, not retried."""
    reqs = text_requests(8)
    bad_key: list[str] = []

    def fault(seq: int, body: dict, attempt: int) -> str | None:
        if body["messages"][0]["content"] == "question number 3?":
            bad_key.append(content_key(body))
            return kind
        return None

    with FakeChatServer(fault_fn=fault) as srv:
        m = api_model(srv)
        got = m.generate(reqs)
        m.close()
    assert [r.error is None for r in got] == [i != 3 for i in range(8)]
    assert "malformed" in (got[3].error or "") and got[3].text == ""
    assert got[3].extra["error_kind"] == "malformed"
    counts = per_content(srv)
    assert len(counts) == 8 and set(counts.values()) == {1}, counts  # exactly one request each
    assert counts[bad_key[0]] == 1
    assert srv.repeated_after_success() == []


def test_model_has_split_failed_batches_off() -> None:
    from evalkit.models.base import Model

    assert Model.split_failed_batches is True
    assert OpenAIModel.split_failed_batches is False


def test_mixed_fault_storm_sends_nothing_again_after_a_success() -> None:
    """Every malformed kind and the classic faults, 24 requests: every success is the only request
    for its content once it succeeded, and transient ones all finish."""
    kinds = ["429", "500", "drop", *TRANSIENT_200]

    def fault(seq: int, body: dict, attempt: int) -> str | None:
        i = int(body["messages"][0]["content"].split()[2].rstrip("?"))
        return kinds[i % len(kinds)] if attempt == 0 and i % 4 != 3 else None

    with FakeChatServer(fault_fn=fault, retry_after_s=0.01) as srv:
        m = api_model(srv)
        got = m.generate(text_requests(24))
        m.close()
    assert [r.error for r in got] == [None] * 24
    assert srv.repeated_after_success() == []
    succeeded = Counter(r.key for r in srv.chat_requests() if r.succeeded)
    assert len(succeeded) == 24 and set(succeeded.values()) == {1}
    assert sum(r.extra["attempts"] for r in got) == len(srv.chat_requests())


# ---------------------------------------------------------------------- time bounds


def test_timeout_bounds_the_whole_request_under_a_slow_drip() -> None:
    """One byte every 0.05 s never trips a per-read timeout; the attempt deadline does."""
    with FakeChatServer(fault_fn=lambda seq, body, attempt: "drip", drip_interval_s=0.05) as srv:
        body_bytes = len(default_reply({"model": "fake-vl", "messages": ask("hello")})) + 200
        drip_total_s = body_bytes * 0.05  # what a per-read timeout would wait, per attempt
        with client(srv, timeout_s=0.6, max_retries=1) as c:
            t0 = time.monotonic()
            with pytest.raises(ChatError) as info:
                c.complete(ask("hello"))
            elapsed = time.monotonic() - t0
    assert info.value.kind == "timeout" and info.value.attempts == 2
    assert "within 0.6s" in str(info.value)
    assert [r.outcome for r in srv.chat_requests()] == ["drip", "drip"]
    # bound: (max_retries + 1) x timeout_s + backoff; a per-read timeout would take drip_total_s x 2
    assert drip_total_s > 10
    assert elapsed < 2 * 0.6 + 0.05 + 1.5 < drip_total_s


def test_run_stays_bounded_under_a_storm_of_slow_drips() -> None:
    """Every attempt drips: 16 requests x (1 + 2 retries) attempts at concurrency 8 all end within
    ceil(16/8) x 3 x timeout_s (plus backoffs), each as an error record."""
    with FakeChatServer(fault_fn=lambda seq, body, attempt: "drip", drip_interval_s=0.05) as srv:
        m = api_model(srv, timeout_s=0.5, max_retries=2)
        t0 = time.monotonic()
        got = m.generate(text_requests(16))
        elapsed = time.monotonic() - t0
        m.close()
    assert all(r.error and "timeout" in r.error for r in got)
    assert len(srv.chat_requests()) == 16 * 3
    bound = 2 * 3 * 0.5 + 2 * 3 * 0.05
    assert elapsed < bound + 3.0


# ---------------------------------------------------------------------- status codes


@pytest.mark.parametrize("status", ["401", "403"])
def test_rejected_key_mid_run_stops_the_batch_at_once(status: str) -> None:
    with FakeChatServer(
        fault_fn=lambda seq, body, attempt: status if seq >= 3 else None, latency_s=0.02
    ) as srv:
        m = api_model(srv, concurrency=2)
        with pytest.raises(FatalChatError) as info:
            m.generate(text_requests(12))
        m.close()
    assert isinstance(info.value, BackendFatalError) and isinstance(info.value, EvalkitError)
    assert f"HTTP {status}" in str(info.value) and "\n" not in str(info.value)
    # no retries of the rejected request, and the remaining requests were cancelled, not sent
    outcomes = [r.outcome for r in srv.chat_requests()]
    assert outcomes.count(status) <= 2 and len(outcomes) <= 5, outcomes


def test_bad_request_fails_only_its_own_sample() -> None:
    def fault(seq: int, body: dict, attempt: int) -> str | None:
        return "400" if body["messages"][0]["content"] == "question number 2?" else None

    with FakeChatServer(fault_fn=fault) as srv:
        m = api_model(srv)
        got = m.generate(text_requests(6))
        m.close()
    assert [r.error is None for r in got] == [True, True, False, True, True, True]
    assert "HTTP 400" in (got[2].error or "")
    assert set(per_content(srv).values()) == {1}  # the 400 was not retried


def test_finish_reason_and_truncated_are_reported() -> None:
    with FakeChatServer() as srv:
        m = api_model(srv)
        short = m.generate(text_requests(2, max_new_tokens=2))
        full = m.generate(text_requests(2, max_new_tokens=64))
        m.close()
    assert [r.extra["finish_reason"] for r in short] == ["length", "length"]
    assert [r.extra["truncated"] for r in short] == [True, True]
    assert len(short[0].text.split()) == 2
    assert [(r.extra["finish_reason"], r.extra["truncated"]) for r in full] == [("stop", False)] * 2


def test_rejected_key_mid_run_is_one_line_and_resume_finishes(tmp_path) -> None:
    """Through the CLI: a key revoked mid-run stops the run with one line, keeps every answer
    received before it (the backend takes whole windows: all 16 requests are one call), and the
    rerun sends only the unfinished samples' requests."""
    out = tmp_path / "run"
    args = (
        "run", "task=docvqa_mini", "model=openai", "model.name=fake-vl", "model.api_key_env=null",
        "model.timeout_s=5", "model.backoff_base_s=0.01", "model.health_check=false", "batch_size=4",
        "model.concurrency=4", "limit=16", "runner.cache=false", "runner.progress=false",
        "runner.thumbnails=0", f"output_dir={out}",
    )  # fmt: skip
    with FakeChatServer(fault_fn=lambda seq, body, attempt: "401" if seq >= 9 else None) as srv:
        proc = run_cli(*args, f"model.base_url={srv.url}")
        first, port = srv.chat_requests(), srv.port
    assert proc.returncode != 0
    err_lines = [line for line in proc.stderr.splitlines() if line.startswith("evalkit: error:")]
    assert len(err_lines) == 1 and "HTTP 401" in err_lines[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert any(r.outcome == "401" for r in first) and len(first) <= 16
    kept = [line for p in (out / "parts").rglob("rank-*.jsonl") for line in p.read_text().splitlines()]
    assert 4 <= len(kept) < 16
    # every answer served before the 401 (and paid for) is kept, even within the window in flight
    assert len(kept) == sum(r.outcome == "ok" for r in first), [r.outcome for r in first]
    with FakeChatServer(bind_port=port) as srv:  # the same base_url: the same evaluation
        proc = run_cli(*args, f"model.base_url={srv.url}")
        second = srv.chat_requests()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(second) == 16 - len(kept)
    rows = read_samples(out / "samples" / "docvqa_mini.jsonl")
    assert len(rows) == 16 and all(r["error"] is None for r in rows)

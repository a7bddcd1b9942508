"""The OpenAI-compatible API backend against a real HTTP server on 127.0.0.1 with injected faults.

Covers the ChatClient (retries, Retry-After, timeouts, non-retryable errors, health check, key
redaction, usage totals, concurrency) and the OpenAIModel adapter (request conversion, identity,
per-sample errors), plus one end-to-end run through the runner that checks the output directory.
"""

from __future__ import annotations

import base64
import io
import json
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from evalkit.errors import EvalkitError, UsageError
from evalkit.models.http_client import ChatClient, ChatError, parse_retry_after, redact
from evalkit.models.openai_api import OpenAIModel
from evalkit.types import GenerationParams, ImagePart, Message, Request, TextPart, VideoPart, user_message
from tests.helpers.fake_chat_server import SLOW_REPLY, FakeChatServer, default_reply

KEY = "sk-test-PLANTED-123"
#: deliberately not a name evalkit.redact treats as secret: nothing may hide a leak of ours
KEY_ENV = "EVALKIT_TEST_CREDENTIAL"
REPO = Path(__file__).resolve().parents[2]


def image(seed: int, size: tuple[int, int] = (24, 16)) -> Image.Image:
    """A small random RGB image."""
    rng = random.Random(seed)
    return Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))


def requests(n: int) -> list[Request]:
    """``n`` distinct requests, each with an image and a question."""
    gen = GenerationParams(max_new_tokens=16)
    return [
        Request(f"s{i}", (user_message(ImagePart(image(i)), f"question number {i}?"),), gen, task="t")
        for i in range(n)
    ]


def model_for(server: FakeChatServer, monkeypatch: pytest.MonkeyPatch, **overrides) -> OpenAIModel:
    monkeypatch.setenv(KEY_ENV, KEY)
    cfg = {
        "name": "fake-vl",
        "backend": "openai",
        "base_url": server.url,
        "api_key_env": KEY_ENV,
        "concurrency": 8,
        "timeout_s": 1.5,
        "max_retries": 6,
        "backoff_base_s": 0.02,
        "backoff_max_s": 0.2,
        "seed": 0,
    }
    cfg.update(overrides)
    return OpenAIModel(cfg)


def client_for(server: FakeChatServer, **kwargs) -> ChatClient:
    opts = {
        "api_key": KEY,
        "api_key_env": KEY_ENV,
        "concurrency": 4,
        "timeout_s": 1.0,
        "max_retries": 4,
        "backoff_base_s": 0.01,
    }
    opts.update(kwargs)
    return ChatClient("fake-vl", server.url, **opts)


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


# ---------------------------------------------------------------------- faults, end to end in the model


def test_faults_all_finish_once_and_equal_fault_free_run(monkeypatch):
    reqs = requests(40)
    with FakeChatServer(api_key=KEY, latency_s=0.01) as clean:
        m = model_for(clean, monkeypatch)
        expected = m.generate(reqs)
        m.close()
    with FakeChatServer(api_key=KEY, latency_s=0.01, fault_rate=0.3, seed=7, slow_s=1.8) as srv:
        m = model_for(srv, monkeypatch, health_check=False)
        got = m.generate(reqs)
        usage = m.usage()
        m.close()
    outcomes = srv.outcomes()
    # the schedule really injected every kind of fault, about 30% of first attempts
    assert {"429", "500", "drop", "slow"} <= set(outcomes), outcomes
    chat = srv.chat_requests()
    first_faulty = sum(1 for r in chat if r.attempt == 0 and r.outcome != "ok")
    assert 6 <= first_faulty <= 20, outcomes
    # every sample finished, with the fault-free answers (no late "slow" reply accepted)
    assert [r.error for r in got] == [None] * 40
    assert [r.text for r in got] == [r.text for r in expected]
    assert SLOW_REPLY not in {r.text for r in got}
    assert [r.usage() for r in got] == [r.usage() for r in expected]
    # each content succeeded exactly once, and nothing was asked again after its success
    assert outcomes["ok"] == 40
    assert srv.repeated_after_success() == []
    assert len({r.key for r in chat if r.succeeded}) == 40
    # attempts reported per response match what the server saw
    assert sum(r.extra["attempts"] for r in got) == len(chat)
    assert usage["attempts"] == len(chat) and usage["requests"] == 40 and usage["failed"] == 0
    assert usage["prompt_tokens"] == sum(r.input_tokens for r in got)
    # the answers depend on the image bytes and the text (default_reply of what was sent)
    assert len({r.text for r in got}) == 40
    body = next(r.body for r in chat if r.succeeded)
    assert body["temperature"] == 0.0 and body["max_tokens"] == 16 and body["seed"] == 0
    assert got[0].text == default_reply({"model": "fake-vl", "messages": m.to_messages(reqs[0])})


def test_retry_after_is_honoured():
    def plan(seq, body, attempt):
        return "429" if attempt == 0 else None

    with FakeChatServer(fault_fn=plan, retry_after_s=0.3) as srv:
        with client_for(srv, backoff_base_s=0.001) as c:
            res = c.complete(ask("hello"))
    first, second = srv.chat_requests()
    assert (first.outcome, second.outcome) == ("429", "ok")
    assert res.attempts == 2
    assert second.start - first.end >= 0.29  # backoff alone would wait ~1 ms


def test_parse_retry_after_forms():
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250", "Retry-After": "9"}) == 0.25
    date = "Wed, 21 Oct 2015 07:28:10 GMT"
    assert parse_retry_after({"Retry-After": date}, now=1445412480.0) == pytest.approx(10.0)
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None


def test_timeout_is_retried_and_late_reply_ignored():
    def plan(seq, body, attempt):
        return "slow" if attempt == 0 else None

    with FakeChatServer(fault_fn=plan, slow_s=1.2) as srv:
        with client_for(srv, timeout_s=0.3) as c:
            t0 = time.perf_counter()
            res = c.complete(ask("slowly"))
            elapsed = time.perf_counter() - t0
    assert res.text == default_reply({"model": "fake-vl", "messages": ask("slowly")})
    assert res.attempts == 2
    assert 0.3 <= elapsed < 1.1
    assert [r.outcome for r in srv.chat_requests()] == ["slow", "ok"]


def test_gives_up_after_max_retries_with_per_sample_error(monkeypatch):
    def plan(seq, body, attempt):
        return "500" if "number 1?" in json.dumps(body) else None

    with FakeChatServer(api_key=KEY, fault_fn=plan) as srv:
        m = model_for(srv, monkeypatch, health_check=False, max_retries=2)
        out = m.generate(requests(3))
        m.close()
    assert [r.error is None for r in out] == [True, False, True]
    assert "HTTP 500" in out[1].error and "after 3 attempts" in out[1].error
    assert out[1].text == "" and out[1].extra["attempts"] == 3
    assert srv.outcomes() == {"ok": 2, "500": 3}


def test_bad_request_and_quota_fail_at_once():
    def plan(seq, body, attempt):
        return {"bad": "400", "broke": "quota"}.get(body["messages"][0]["content"])

    with FakeChatServer(fault_fn=plan) as srv:
        with client_for(srv) as c:
            res = c.complete_many([ask("bad"), ask("fine"), ask("broke")])
    assert res[1].ok
    assert res[0].status == 400 and res[0].attempts == 1 and "Invalid image" in res[0].error
    assert res[2].status == 429 and res[2].attempts == 1 and "quota" in res[2].error
    assert len(srv.chat_requests()) == 3


def test_excessive_retry_after_fails_at_once():
    with FakeChatServer(fault_fn=lambda s, b, a: "429", retry_after_s=100) as srv:
        with client_for(srv, retry_after_max_s=5) as c, pytest.raises(ChatError, match="retry_after_max_s"):
            c.complete(ask("x"))
    assert len(srv.chat_requests()) == 1


# ---------------------------------------------------------------------- keys and errors


def test_401_fails_at_once_and_never_shows_the_key(monkeypatch, capsys, caplog):
    caplog.set_level("DEBUG")
    with FakeChatServer(api_key="sk-the-right-one-456", echo_key_in_errors=True) as srv:
        with client_for(srv) as c:
            with pytest.raises(ChatError) as info:
                c.complete(ask("hi"))
            assert len(srv.chat_requests()) == 1  # not retried
            assert info.value.status == 401 and info.value.fatal and info.value.attempts == 1
            # the careless server echoed the key: the message must not
            assert "Incorrect API key" in str(info.value) and "401" in str(info.value)
            with pytest.raises(EvalkitError) as health:
                c.health_check()
        m = model_for(srv, monkeypatch, health_check=False)
        with pytest.raises(ChatError):  # the whole batch: every request would fail the same way
            m.generate(requests(3))
        m.close()
        m = model_for(srv, monkeypatch)
        with pytest.raises(EvalkitError) as at_load:
            m.load()
    for msg in (str(info.value), str(health.value), str(at_load.value)):
        assert KEY not in msg and "\n" not in msg
    assert KEY_ENV in str(health.value) and "rejected the API key" in str(health.value)
    out = capsys.readouterr()
    assert KEY not in out.out + out.err + caplog.text
    assert KEY not in repr(c) and KEY not in json.dumps(m.identity())


def test_redact_helper():
    text = 'Error 401: {"message": "Incorrect API key provided: sk-test-PLANTED-123"} Authorization: Bearer abc.def'
    out = redact(text, [KEY, None, ""])
    assert KEY not in out and "abc.def" not in out and out.count("***") == 2
    assert redact("sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX leaked", []) == "*** leaked"
    assert redact("short x", ["x"]) == "short x"


def test_missing_key_variable_and_key_in_config(monkeypatch):
    monkeypatch.delenv("EVALKIT_TEST_UNSET_VAR", raising=False)
    m = OpenAIModel(
        {"name": "m", "base_url": "http://127.0.0.1:9/v1", "api_key_env": "EVALKIT_TEST_UNSET_VAR"}
    )
    with pytest.raises(UsageError, match="EVALKIT_TEST_UNSET_VAR"):
        m.load()
    with pytest.raises(UsageError, match="api_key_env"):
        OpenAIModel({"name": "m", "base_url": "http://127.0.0.1:9/v1", "api_key": KEY})
    with pytest.raises(UsageError, match=r"model\.name"):
        OpenAIModel({"name": "???", "base_url": "http://127.0.0.1:9/v1"})


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_health_check_failure_modes():
    refused = ChatClient("fake-vl", f"http://127.0.0.1:{_free_port()}/v1", max_retries=3, backoff_base_s=0.01)
    with pytest.raises(EvalkitError) as info:
        refused.health_check()
    msg = str(info.value)
    assert "cannot reach" in msg and "model.base_url" in msg and "\n" not in msg
    with FakeChatServer(models=("fake-vl",)) as srv:
        with pytest.raises(EvalkitError) as info:
            ChatClient("no-such-model", srv.url).health_check()
        assert (
            "'no-such-model'" in str(info.value)
            and "404" in str(info.value)
            and "model.name" in str(info.value)
        )
        with pytest.raises(EvalkitError, match="404"):
            ChatClient("fake-vl", srv.url.removesuffix("/v1") + "/wrong").health_check()
        ChatClient("fake-vl", srv.url).health_check()  # a healthy endpoint passes
        assert srv.chat_requests()[-1].body["max_tokens"] == 1


# ---------------------------------------------------------------------- concurrency


def test_requests_really_run_concurrently():
    with FakeChatServer(latency_s=0.15) as srv:
        with client_for(srv, concurrency=8) as c:
            t0 = time.perf_counter()
            res = c.complete_many([ask(f"q{i}") for i in range(16)])
            elapsed = time.perf_counter() - t0
    assert all(r.ok for r in res)
    assert [r.text for r in res] == [
        default_reply({"model": "fake-vl", "messages": ask(f"q{i}")}) for i in range(16)
    ]
    assert srv.max_in_flight >= 4
    assert elapsed < 16 * 0.15 / 3  # serial would take 2.4 s


def test_scripted_replies_for_judges():
    with FakeChatServer(reply_fn=lambda body: "Scores: 7 8") as srv:
        with client_for(srv) as c:
            res = c.complete(ask("judge this"), {"temperature": 0, "max_tokens": 100})
    assert res.text == "Scores: 7 8" and res.finish_reason == "stop"
    assert res.prompt_tokens == 2 and res.completion_tokens == 3


# ---------------------------------------------------------------------- request conversion


def test_image_is_sent_losslessly_and_downscaled_on_request():
    img = image(3, (64, 40))
    req = Request("a", (user_message(ImagePart(img), "what?"),), GenerationParams())
    m = OpenAIModel({"name": "m", "base_url": "http://h/v1", "image_detail": "high"})
    msg = m.to_messages(req)[0]
    url = msg["content"][0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,") and msg["content"][0]["image_url"]["detail"] == "high"
    sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert sent.size == img.size and sent.convert("RGB").tobytes() == img.tobytes()
    assert msg["content"][1] == {"type": "text", "text": "what?"}
    small = OpenAIModel({"name": "m", "base_url": "http://h/v1", "max_image_pixels": 640})
    url = small.to_messages(req)[0]["content"][0]["image_url"]["url"]
    w, h = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size
    assert w * h <= 640 and abs(w / h - 64 / 40) < 0.1
    assert small.identity()["max_image_pixels"] == 640 != m.identity()["max_image_pixels"]


def test_responses_report_the_size_each_image_was_sent_at(monkeypatch):
    """``input_image_sizes``: per image, the size of the PNG the server received (after the
    ``max_image_pixels`` downscale) — the frame of a ``pixel_json`` answer's coordinates."""
    from tests.helpers.fake_chat_server import _texts_and_images

    big, small = image(1, (64, 40)), image(2, (20, 10))
    gen = GenerationParams(max_new_tokens=4)
    reqs = [
        Request("two", (user_message(ImagePart(big), "a?"), user_message(ImagePart(small), "b?")), gen),
        Request("none", (user_message("only text?"),), gen),
    ]
    with FakeChatServer(api_key=KEY) as server:
        responses = model_for(server, monkeypatch, max_image_pixels=640, concurrency=1).generate(reqs)
        bodies = {json.dumps(r.body["messages"]): r.body for r in server.chat_requests() if r.succeeded}
    received = []
    for body in bodies.values():
        _, urls = _texts_and_images(body["messages"])
        received.append(
            [list(Image.open(io.BytesIO(base64.b64decode(u.split(",", 1)[1]))).size) for u in urls]
        )
    assert [x for x in received if x] == [responses[0].extra["input_image_sizes"]]  # (the others: no image)
    assert responses[0].extra["input_image_sizes"][1] == [20, 10]  # small enough: as it is
    w, h = responses[0].extra["input_image_sizes"][0]
    assert w * h <= 640 < 64 * 40
    assert "input_image_sizes" not in responses[1].extra


def test_video_system_turn_params_and_prompt_rendering():
    frames = tuple(image(i, (8, 8)) for i in range(4))
    req = Request(
        "v",
        (
            Message("system", (TextPart("Be brief."),)),
            user_message(VideoPart(frames, (0.0, 0.5, 1.0, 1.5)), "What happens?"),
        ),
        GenerationParams(
            max_new_tokens=7, temperature=0.01, top_p=0.001, top_k=1, repetition_penalty=1.0, stop=("\n",)
        ),
    )
    m = OpenAIModel({"name": "m", "base_url": "http://h/v1", "seed": 3})
    system, user = m.to_messages(req)
    assert system == {"role": "system", "content": "Be brief."}
    assert [p["type"] for p in user["content"]] == ["image_url"] * 4 + ["text"]
    assert m.to_params(req.generation) == {
        "temperature": 0.01,
        "max_tokens": 7,
        "top_p": 0.001,
        "stop": ["\n"],
        "seed": 3,
    }
    vm = OpenAIModel(
        {
            "name": "m",
            "base_url": "http://h/v1",
            "video_mode": "video",
            "extended_sampling_params": True,
            "max_tokens_param": "max_completion_tokens",
            "seed": None,
        }
    )
    part = vm.to_messages(req)[1]["content"][0]
    assert part["type"] == "video" and len(part["video"]) == 4
    params = vm.to_params(req.generation)
    assert params["max_completion_tokens"] == 7 and "seed" not in params
    assert params["extra_body"] == {"top_k": 1, "repetition_penalty": 1.0}
    prompt = m.render_prompt(req)
    assert prompt == "[system]\nBe brief.\n[user]\n<video 4 frames @ 2 fps>\nWhat happens?"
    assert "base64" not in m.render_prompt(requests(1)[0])


def test_identity_has_no_credentials(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    cfg = {
        "name": "m",
        "base_url": "http://user:pw-secret@127.0.0.1:1/v1?api-key=q-secret",
        "api_key_env": KEY_ENV,
        "extra_body": {"enable_thinking": False},
        "concurrency": 3,
    }
    m = OpenAIModel(cfg)
    ident = json.dumps(m.identity())
    assert m.identity()["base_url"] == "http://127.0.0.1:1/v1"
    assert "secret" not in ident and KEY not in ident and m.preferred_batch_size == 3
    assert m.identity()["extra_body"] == {"enable_thinking": False}
    assert m.identity_hash() != OpenAIModel({**cfg, "max_image_pixels": 1000}).identity_hash()
    assert m.identity_hash() == OpenAIModel({**cfg, "concurrency": 16, "timeout_s": 5}).identity_hash()


def test_openai_sdk_is_imported_lazily():
    code = "import sys, evalkit.models.openai_api, evalkit.models.http_client; print('openai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------- through the runner


def test_run_through_runner_with_faults_keeps_key_out_of_outputs(tmp_path, monkeypatch, capsys, caplog):
    from evalkit.api import compose, run_from_config

    monkeypatch.setenv(KEY_ENV, KEY)
    caplog.set_level("DEBUG")
    outputs = {}
    for name, rate in (("clean", 0.0), ("faulty", 0.3)):
        with FakeChatServer(api_key=KEY, latency_s=0.01, fault_rate=rate, seed=2, slow_s=1.8) as srv:
            overrides = [
                "model=openai",
                "model.name=fake-vl",
                f"model.base_url={srv.url}",
                f"model.api_key_env={KEY_ENV}",
                "model.timeout_s=1.5",
                "model.backoff_base_s=0.02",
                "model.backoff_max_s=0.2",
                "batch_size=8",
                f"output_dir={tmp_path / name}",
                "limit=24",
                "runner.cache=false",
                "runner.progress=false",
                "runner.thumbnails=0",
            ]
            result = run_from_config(compose("docvqa_mini", "openai", overrides))
        samples = [
            json.loads(x)
            for x in (tmp_path / name / "samples" / "docvqa_mini.jsonl").read_text().splitlines()
        ]
        outputs[name] = samples
        assert result["tasks"]["docvqa_mini"]["n_errors"] == 0
        if rate:
            assert srv.repeated_after_success() == [] and set(srv.outcomes()) > {"ok"}
    assert [s["prediction"] for s in outputs["faulty"]] == [s["prediction"] for s in outputs["clean"]]
    assert all(s["usage"]["input_tokens"] > 0 for s in outputs["faulty"])
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "results.json" for p in written)
    for p in written:
        assert KEY.encode() not in p.read_bytes(), p
    out = capsys.readouterr()
    assert KEY not in out.out + out.err + caplog.text


def test_assistant_prefill_continues_on_vllm_style_servers():
    """MVBench's `Best option:(` prefill: a trailing assistant turn is continued, not answered."""
    from evalkit.models.openai_api import OpenAIModel
    from evalkit.types import GenerationParams, Message, Request, TextPart, user_message

    req = Request("s1", (user_message("Which?"), Message("assistant", (TextPart("Best option:("),))),
                  GenerationParams())  # fmt: skip
    vllm_like = OpenAIModel({"name": "x", "backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1",
                             "extended_sampling_params": True})  # fmt: skip
    params = vllm_like.prefill_params(req, vllm_like.to_params(req.generation))
    assert params["extra_body"]["continue_final_message"] is True
    assert params["extra_body"]["add_generation_prompt"] is False
    plain = OpenAIModel({"name": "x", "backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1"})
    assert "extra_body" not in plain.prefill_params(req, plain.to_params(req.generation))
    no_prefill = Request("s2", (user_message("Which?"),), GenerationParams())
    assert "extra_body" not in vllm_like.prefill_params(
        no_prefill, vllm_like.to_params(no_prefill.generation)
    )

"""Likelihood-ranked choices (kind=choice_logprobs): the hf computation against a hand-computed
forward pass of the tiny Qwen2-VL, batch-size invariance, the request fingerprint, the vLLM request
construction and reading (no vLLM needed), and the refusal of backends without it."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from PIL import Image

from evalkit.errors import EvalkitError, UsageError
from evalkit.models.choice_logprobs import (
    best_candidate,
    candidate_score,
    choice_sampling_kwargs,
    read_prompt_logprobs,
    vllm_choice_prompts,
)
from evalkit.types import GenerationParams, ImagePart, Request, user_message


def _image(seed: int, size: tuple[int, int] = (56, 56)) -> Image.Image:
    import random

    rng = random.Random(seed)
    img = Image.new("RGB", size)
    img.putdata(
        [(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(size[0] * size[1])]
    )
    return img


def _choice_request(i: int, candidates: tuple[str, ...] = (" A", " B", " C"), image: bool = True) -> Request:
    parts = [ImagePart(_image(i, (56 + 28 * (i % 3), 56)))] if image else []
    text = f"Question {i}: what colour dominates?" + (" Options: red, blue, green." if i % 2 else "")
    return Request(
        f"q{i}",
        (user_message(*parts, text),),
        GenerationParams(max_new_tokens=1),
        kind="choice_logprobs",
        candidates=candidates,
    )


@pytest.fixture(scope="module")
def hf_model(tiny_model_dir):
    from evalkit.models.hf import HFModel

    model = HFModel({"backend": "hf", "pretrained": str(tiny_model_dir), "dtype": "float32", "device": "cpu"})
    model.load()
    return model


def _reference_logprobs(model, request: Request, candidate: str) -> list[float]:
    """One unpadded forward pass of context + candidate with plain transformers calls; the
    log-softmax of the logits at the positions that predict the candidate's tokens."""
    import torch

    messages = [
        {
            "role": "user",
            "content": [{"type": "image"}] * len(request.images) + [{"type": "text", "text": request.text}],
        }
    ]
    context = model.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    kwargs = {"images": request.images} if request.images else {}
    enc = model.processor(text=[context], return_tensors="pt", **kwargs)
    cand = model.processor.tokenizer(candidate, add_special_tokens=False)["input_ids"]
    ids = torch.cat([enc["input_ids"], torch.tensor([cand])], dim=1)
    inputs = {k: v for k, v in enc.items() if k not in ("input_ids", "attention_mask")}
    for key, value in list(inputs.items()):  # per-token inputs (mm_token_type_ids): text for the candidate
        if isinstance(value, torch.Tensor) and value.shape == enc["input_ids"].shape:
            inputs[key] = torch.cat([value, torch.zeros((1, len(cand)), dtype=value.dtype)], dim=1)
    with torch.no_grad():
        logits = model.model(input_ids=ids, attention_mask=torch.ones_like(ids), **inputs).logits[0].double()
    n_ctx = enc["input_ids"].shape[1]
    out = []
    for k, token in enumerate(cand):
        row = logits[n_ctx + k - 1]
        out.append(float(row[token] - torch.logsumexp(row, dim=0)))
    return out


def test_logprobs_equal_a_hand_computed_forward_pass(hf_model):
    requests = [_choice_request(i, candidates=(" A", " B", " dog and cat")) for i in range(3)]
    responses = hf_model.score_choices(requests)
    for request, response in zip(requests, responses, strict=True):
        assert response.error is None
        got = response.extra["logprobs"]
        assert [g["candidate"] for g in got] == list(request.candidates)
        for entry in got:
            ref = _reference_logprobs(hf_model, request, entry["candidate"])
            assert entry["n_tokens"] == len(ref)
            assert entry["sum"] == pytest.approx(math.fsum(ref), abs=2e-4)
            assert entry["mean"] == pytest.approx(math.fsum(ref) / len(ref), abs=2e-4)
        best = max(got, key=lambda g: g["mean"])["candidate"]
        assert response.text == best
    # a multi-token candidate really has several tokens (the masking of the context is exercised)
    assert responses[0].extra["logprobs"][2]["n_tokens"] > 1


def test_batch_size_one_equals_eight(hf_model):
    requests = [_choice_request(i, image=i != 5) for i in range(8)]
    together = hf_model.score_choices(requests)
    alone = [hf_model.score_choices([r])[0] for r in requests]
    for a, b in zip(together, alone, strict=True):
        assert a.text == b.text
        for x, y in zip(a.extra["logprobs"], b.extra["logprobs"], strict=True):
            assert x["n_tokens"] == y["n_tokens"]
            assert x["sum"] == pytest.approx(y["sum"], abs=1e-3)


def test_fingerprint_includes_kind_and_candidates_only_for_choice_requests():
    gen = Request("a", (user_message("hi"),), GenerationParams())
    assert "kind" not in gen.canonical() and "candidates" not in gen.canonical()
    one = Request(
        "a", (user_message("hi"),), GenerationParams(), kind="choice_logprobs", candidates=(" A", " B")
    )
    two = Request(
        "a", (user_message("hi"),), GenerationParams(), kind="choice_logprobs", candidates=(" A", " C")
    )
    assert one.canonical()["kind"] == "choice_logprobs"
    assert len({gen.fingerprint(), one.fingerprint(), two.fingerprint()}) == 3


def test_candidate_score_and_selection():
    s = candidate_score(" cat", [-1.0, -3.0])
    assert s == {"candidate": " cat", "sum": -4.0, "mean": -2.0, "n_tokens": 2}
    scores = [candidate_score("x", [-1.0, -1.0, -1.0]), candidate_score("y", [-2.5])]
    assert best_candidate(scores, "mean") == "x"  # mean -1 > -2.5
    assert best_candidate(scores, "sum") == "y"  # sum -2.5 > -3
    with pytest.raises(EvalkitError):
        candidate_score("z", [])


class _FakeTokenizer:
    """Characters as tokens (ord values); the context gets a leading 1 like a BOS would."""

    def __call__(self, text, add_special_tokens=True):
        ids = [ord(c) for c in text]
        return {"input_ids": ([1] if add_special_tokens else []) + ids}


def test_vllm_prompts_and_reading_without_vllm():
    img = _image(0)
    req = Request(
        "q",
        (user_message(ImagePart(img), "Q?"),),
        GenerationParams(),
        kind="choice_logprobs",
        candidates=(" A", "BC"),
    )
    from evalkit.models.vllm import build_llm_inputs

    base = build_llm_inputs([req], ["<ctx>"], min_pixels=10, max_pixels=100)
    prompts, n_tokens = vllm_choice_prompts([req], ["<ctx>"], _FakeTokenizer(), base)
    assert n_tokens == [2, 2]
    assert prompts[0]["prompt_token_ids"] == [1, *map(ord, "<ctx>"), ord(" "), ord("A")]
    assert prompts[1]["prompt_token_ids"][-2:] == [ord("B"), ord("C")]
    assert prompts[0]["multi_modal_data"]["image"] is img
    assert prompts[0]["mm_processor_kwargs"] == {"min_pixels": 10, "max_pixels": 100}
    assert "prompt" not in prompts[0]
    assert choice_sampling_kwargs() == {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0}
    ids = prompts[0]["prompt_token_ids"]
    lp = [None] + [
        {t: SimpleNamespace(logprob=-0.5 * k), 99: SimpleNamespace(logprob=-9.0)}
        for k, t in enumerate(ids[1:], 1)
    ]
    values = read_prompt_logprobs(ids, lp, 2)
    assert values == [-0.5 * (len(ids) - 2), -0.5 * (len(ids) - 1)]
    with pytest.raises(EvalkitError):
        read_prompt_logprobs(ids, lp, len(ids))
    with pytest.raises(EvalkitError):
        read_prompt_logprobs(ids, lp[:-1] + [{5: -1.0}], 1)


def test_backends_without_choice_logprobs_refuse_with_one_line():
    from evalkit.models.openai_api import OpenAIModel

    model = OpenAIModel(
        {"backend": "openai", "name": "m", "base_url": "http://127.0.0.1:9", "api_key_env": None}
    )
    assert model.supports_choice_logprobs is False
    with pytest.raises(UsageError, match="does not support likelihood-ranked choices.*_gen variant"):
        model.score_choices([_choice_request(0, image=False)])

"""vLLM backend without vLLM: request construction, engine/sampling arguments, the missing-vLLM
error, and a full generate() against a stand-in ``vllm`` module."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from evalkit.errors import MissingDependencyError
from evalkit.models.base import build_model
from evalkit.models.vllm import VLLMModel, build_llm_inputs, sampling_kwargs
from evalkit.types import GenerationParams, ImagePart, Request, VideoPart, user_message
from tests.conftest import run_cli


def _img(w: int, h: int, c: int = 0) -> Image.Image:
    return Image.new("RGB", (w, h), (c, 2 * c % 256, 3 * c % 256))


def _req(sid: str, *parts: Any, gen: GenerationParams | None = None) -> Request:
    return Request(sid, (user_message(*parts),), gen or GenerationParams(max_new_tokens=32))


def test_build_llm_inputs_images_text_and_pixel_budget() -> None:
    a, b1, b2 = _img(56, 28, 1), _img(28, 28, 2), _img(84, 56, 3)
    reqs = [
        _req("a", ImagePart(a), "What is it?"),
        _req("b", ImagePart(b1), ImagePart(b2), "Compare."),
        _req("c", "text only"),
    ]
    out = build_llm_inputs(reqs, ["P0", "P1", "P2"], min_pixels=3136, max_pixels=50176)
    assert out[0] == {
        "prompt": "P0",
        "multi_modal_data": {"image": a},
        "mm_processor_kwargs": {"min_pixels": 3136, "max_pixels": 50176},
    }
    assert out[1]["multi_modal_data"]["image"] == [b1, b2]  # order of the request kept
    assert out[2] == {"prompt": "P2"}
    assert build_llm_inputs(reqs[:1], ["P"])[0].keys() == {"prompt", "multi_modal_data"}
    with pytest.raises(ValueError):
        build_llm_inputs(reqs, ["one prompt"])


def test_build_llm_inputs_video_frames_as_array() -> None:
    frames = tuple(_img(56, 28, i) for i in range(4))
    video = VideoPart(frames=frames, timestamps=(0.0, 0.5, 1.0, 1.5), fps=2.0)
    out = build_llm_inputs([_req("v", video, "What happens?")], ["P"])
    arr = out[0]["multi_modal_data"]["video"]
    assert arr.shape == (4, 28, 56, 3) and arr.dtype.name == "uint8"
    assert tuple(arr[2, 0, 0]) == (2, 4, 6)


def test_sampling_kwargs_greedy_and_sampling() -> None:
    greedy = sampling_kwargs(GenerationParams(max_new_tokens=32, stop=("\n\n",)))
    assert greedy == {
        "max_tokens": 32, "skip_special_tokens": True, "temperature": 0.0,
        "repetition_penalty": 1.0, "stop": ["\n\n"],
    }  # fmt: skip
    sampled = sampling_kwargs(
        GenerationParams(max_new_tokens=8, min_new_tokens=2, temperature=0.7, top_p=0.9, top_k=5), seed=3
    )
    assert sampled["temperature"] == 0.7 and sampled["top_p"] == 0.9 and sampled["top_k"] == 5
    assert sampled["min_tokens"] == 2 and sampled["seed"] == 3


def _vllm_cfg(**extra: Any) -> dict[str, Any]:
    import os

    cfg = {
        "backend": "vllm", "name": "vllm-tiny", "pretrained": "evalkit://tiny",
        "cache_dir": os.environ["EVALKIT_CACHE_DIR"], "min_pixels": 3136, "max_pixels": 50176,
        "tensor_parallel_size": 2, "max_model_len": 4096, "seed": 0,
    }  # fmt: skip
    cfg.update(extra)
    return cfg


def test_engine_kwargs_and_identity() -> None:
    model = build_model(_vllm_cfg())
    assert isinstance(model, VLLMModel)
    kw = model.engine_kwargs("/m")
    assert kw["model"] == "/m" and kw["tensor_parallel_size"] == 2 and kw["max_model_len"] == 4096
    assert kw["mm_processor_kwargs"] == {"min_pixels": 3136, "max_pixels": 50176}
    ident = model.identity()
    assert ident["backend"] == "vllm" and ident["tensor_parallel_size"] == 2 and ident["weights_hash"]
    hf = build_model({**_vllm_cfg(), "backend": "hf", "dtype": "float32", "device": "cpu"})
    assert hf.identity()["weights_hash"] == ident["weights_hash"]
    assert hf.identity_hash() != model.identity_hash()  # never share cached responses


def test_missing_vllm_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    model = build_model(_vllm_cfg())
    with pytest.raises(MissingDependencyError, match=r"pip install vllm"):
        model.load()


def test_cli_without_vllm_fails_with_one_clear_line(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    proc = run_cli(
        "run", "task=docvqa_mini", "model=vllm", "model.pretrained=evalkit://tiny", "limit=1",
        "runner.cache=false", "runner.progress=false", f"output_dir={tmp_path}",
    )  # fmt: skip
    assert proc.returncode != 0
    assert "evalkit: error:" in proc.stderr and "pip install vllm" in proc.stderr
    assert "Traceback" not in proc.stderr


class _FakeLLM:
    calls: list[tuple[list[dict], Any]] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs

    def generate(self, inputs: list[dict], params: Any, use_tqdm: bool = True) -> list[Any]:
        _FakeLLM.calls.append((inputs, params))
        ns = types.SimpleNamespace
        return [
            ns(prompt_token_ids=[1] * len(i["prompt"]), outputs=[ns(text=f" answer {k} ", token_ids=[7, 8])])
            for k, i in enumerate(inputs)
        ]


def test_generate_with_stand_in_vllm_matches_hf_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("vllm")
    fake.LLM = _FakeLLM  # type: ignore[attr-defined]
    fake.SamplingParams = lambda **kw: kw  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", fake)
    model = build_model(_vllm_cfg())
    reqs = [_req("a", ImagePart(_img(56, 28, 1)), "Q1?"), _req("b", ImagePart(_img(28, 84, 2)), "Q2?")]
    responses = model.generate(reqs)
    assert [r.text for r in responses] == ["answer 0", "answer 1"]
    assert [r.output_tokens for r in responses] == [2, 2]
    inputs, params = _FakeLLM.calls[-1]
    assert params == sampling_kwargs(reqs[0].generation, 0)
    assert model.llm.kwargs["tensor_parallel_size"] == 2
    hf = build_model({**_vllm_cfg(), "backend": "hf", "dtype": "float32", "device": "cpu"})
    hf_prompts = [hf.render_prompt(r) for r in reqs]
    assert [i["prompt"] for i in inputs] == hf_prompts == [r.prompt for r in responses]
    assert hf_prompts[0].count("<|image_pad|>") == 1 and "Q1?" in hf_prompts[0]

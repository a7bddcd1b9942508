"""First-generation Qwen-VL: prompt construction (golden strings in the Qwen-VL eval scripts' and
Qwen-VL-Chat's formats), the vLLM engine arguments and request dicts (generation and likelihood,
with a stand-in engine: no vLLM needed), the OpenAI-compatible server request, the grounding
convention, and the one-line refusal of the transformers backend."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from PIL import Image

from evalkit.errors import UsageError
from evalkit.metrics.boxes import parse_box
from evalkit.models import qwen_vl
from evalkit.overrides import compose
from evalkit.types import GenerationParams, ImagePart, Message, Request, TextPart, VideoPart, user_message
from tests.conftest import run_cli_here as run_cli


def _img(color: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> Image.Image:
    return Image.new("RGB", size, color)


def _req(*parts, **kw) -> Request:
    return Request("s", (user_message(*parts),), GenerationParams(max_new_tokens=8), **kw)


@pytest.fixture(scope="module")
def chat_cfg() -> dict:
    return compose("textvqa", "qwen-vl-chat")["model"]


@pytest.fixture(scope="module")
def base_cfg() -> dict:
    return compose("textvqa", "qwen-vl")["model"]


def test_presets_compose(chat_cfg, base_cfg):
    assert chat_cfg["backend"] == base_cfg["backend"] == "vllm"
    assert chat_cfg["prompt_format"] == base_cfg["prompt_format"] == "qwen_vl"
    assert (chat_cfg["prompt_style"], base_cfg["prompt_style"]) == ("chat", "completion")
    assert (chat_cfg["pretrained"], base_cfg["pretrained"]) == ("Qwen/Qwen-VL-Chat", "Qwen/Qwen-VL")
    assert chat_cfg["box_convention"] == base_cfg["box_convention"] == "qwen_vl"
    assert chat_cfg["trust_remote_code"] is True


def test_completion_golden_strings(base_cfg):
    # Qwen-VL eval_mm/evaluate_vqa.py: '<img>{}</img>{} Answer:' (vLLM fills the empty tag)
    vqa = _req(ImagePart(_img((1, 2, 3))), "what is written on the sign? Answer:")
    assert qwen_vl.render_prompt(vqa, base_cfg) == "<img></img>what is written on the sign? Answer:"
    # evaluate_multiple_choice.py (ScienceQA): '<img>{}</img>Context: {}\nQuestion: {}\nOptions: {}\nAnswer:'
    sqa = _req(
        ImagePart(_img((1, 2, 3))),
        "Context: N/A\nQuestion: Which is a magnet?\nOptions: A. iron\nB. wood\nAnswer:",
    )
    assert qwen_vl.render_prompt(sqa, base_cfg) == (
        "<img></img>Context: N/A\nQuestion: Which is a magnet?\nOptions: A. iron\nB. wood\nAnswer:"
    )
    # seed_bench/trans.py video: '<img>{}</img>\n' per frame, then 'Question: ...'
    frames = [ImagePart(_img((k, 0, 0))) for k in range(4)]
    parts = [x for f in frames for x in (f, TextPart("\n"))]
    seed = _req(*parts, "Question: What happens?\nOptions: A. a\nB. b\nC. c\nD. d\nAnswer:")
    assert qwen_vl.render_prompt(seed, base_cfg) == "<img></img>\n" * 4 + (
        "Question: What happens?\nOptions: A. a\nB. b\nC. c\nD. d\nAnswer:"
    )
    # evaluate_grounding.py: '<img>{}</img><ref>{}</ref><box>'
    ground = _req(ImagePart(_img((1, 2, 3))), qwen_vl.grounding_prompt("the red car"))
    assert qwen_vl.render_prompt(ground, base_cfg) == "<img></img><ref>the red car</ref><box>"


def test_chat_golden_strings(chat_cfg):
    req = _req(ImagePart(_img((1, 2, 3))), "What is this?")
    assert qwen_vl.render_prompt(req, chat_cfg) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nPicture 1: <img></img>\nWhat is this?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    two = _req(ImagePart(_img((1, 2, 3))), ImagePart(_img((4, 5, 6))), "Compare them.")
    assert (
        "user\nPicture 1: <img></img>\nPicture 2: <img></img>\nCompare them.<|im_end|>"
        in qwen_vl.render_prompt(two, chat_cfg)
    )
    prefill = Request(
        "s",
        (
            user_message(ImagePart(_img((0, 0, 0))), "Where is the dog?"),
            Message("assistant", (TextPart("<ref>the dog</ref><box>"),)),
        ),
        GenerationParams(),
    )
    assert qwen_vl.render_prompt(prefill, chat_cfg).endswith(
        "Where is the dog?<|im_end|>\n<|im_start|>assistant\n<ref>the dog</ref><box>"
    )
    system = Request(
        "s", (Message("system", (TextPart("Be brief."),)), user_message("Hi")), GenerationParams()
    )
    assert qwen_vl.render_prompt(system, chat_cfg) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
    video = _req(VideoPart(tuple(_img((k, 0, 0)) for k in range(3)), (0.0, 0.5, 1.0)), "What moves?")
    assert qwen_vl.render_prompt(video, chat_cfg).count("<img></img>") == 3
    with pytest.raises(UsageError, match="prompt_style"):
        qwen_vl.render_prompt(req, {**chat_cfg, "prompt_style": "turns"})


def test_grounding_box_convention_round_trip():
    size = (640, 480)
    text = qwen_vl.box_text((64.0, 48.0, 320.0, 240.0), size)
    assert (
        text == "<box>(100,100),(500,500)</box>"
    )  # 64 / 640 * 999 = 99.9 -> 100; 320 / 640 * 999 = 499.5 -> 500
    x1, y1, x2, y2 = parse_box(f"<ref>x</ref>{text}", "qwen_vl", size)
    assert (x1, y1, x2, y2) == pytest.approx(
        (100 / 999 * 640, 100 / 999 * 480, 500 / 999 * 640, 500 / 999 * 480)
    )


class _FakeLLM:
    """Records what the backend hands to ``LLM.generate``; answers like vLLM's RequestOutput."""

    def __init__(self):
        self.calls = []

    def get_tokenizer(self):
        return _CharTokenizer()

    def generate(self, inputs, params, use_tqdm=False):
        self.calls.append((inputs, params))
        outs = []
        for item in inputs:
            ids = item.get("prompt_token_ids")
            if ids is None:
                outs.append(
                    SimpleNamespace(
                        prompt_token_ids=[1, 2],
                        outputs=[SimpleNamespace(text=" yes ", token_ids=[5], finish_reason="stop")],
                    )
                )
                continue
            # the log-probability of token t is -t / 100 (so shorter/smaller candidates win)
            lp = [None] + [{t: SimpleNamespace(logprob=-t / 100)} for t in ids[1:]]
            outs.append(SimpleNamespace(prompt_token_ids=ids, prompt_logprobs=lp, outputs=[]))
        return outs


class _CharTokenizer:
    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": [ord(c) for c in text]}


def _vllm(cfg):
    from evalkit.models.vllm import VLLMModel

    model = VLLMModel({**cfg, "cache_dir": "/nonexistent-cache"})
    model.llm = _FakeLLM()
    model._sampling_cls = lambda **kw: kw
    model.loaded = True
    return model


def test_vllm_engine_kwargs_and_generation_without_vllm(chat_cfg):
    model = _vllm(chat_cfg)
    kw = model.engine_kwargs("Qwen/Qwen-VL-Chat")
    assert kw["hf_overrides"] == {"architectures": ["QwenVLForConditionalGeneration"]}
    assert kw["trust_remote_code"] is True and kw["limit_mm_per_prompt"]["image"] == 4
    assert "mm_processor_kwargs" not in kw  # Qwen-VL resizes to 448x448 itself
    a, b = _img((9, 9, 9)), _img((8, 8, 8))
    req = _req(ImagePart(a), ImagePart(b), "Same?")
    [resp] = model.generate([req])
    inputs, params = model.llm.calls[-1]
    assert inputs[0]["prompt"] == qwen_vl.chat_prompt(req) == resp.prompt
    assert inputs[0]["multi_modal_data"] == {"image": [a, b]}
    assert params["max_tokens"] == 8 and params["temperature"] == 0.0
    assert resp.text == "yes" and model.processor is None  # no HF processor for Qwen-VL


def test_vllm_likelihood_requests_without_vllm(base_cfg):
    model = _vllm(base_cfg)
    img = _img((3, 3, 3))
    req = _req(
        ImagePart(img),
        "Question: q?\nOptions: A. x\nB. y\nAnswer:",
        kind="choice_logprobs",
        candidates=(" A", " B"),
    )
    [resp] = model.score_choices([req])
    inputs, params = model.llm.calls[-1]
    assert params == {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0}
    context = [ord(c) for c in "<img></img>Question: q?\nOptions: A. x\nB. y\nAnswer:"]
    assert [i["prompt_token_ids"] for i in inputs] == [context + [32, 65], context + [32, 66]]
    assert all(i["multi_modal_data"] == {"image": img} for i in inputs)
    scores = resp.extra["logprobs"]
    assert scores[0] == {
        "candidate": " A",
        "sum": pytest.approx(-(32 + 65) / 100),
        "mean": pytest.approx(-(32 + 65) / 200),
        "n_tokens": 2,
    }
    assert resp.text == " A"  # -0.485 > -0.49


def test_openai_server_request(tmp_path):
    from evalkit.models.openai_api import OpenAIModel

    cfg = compose("textvqa", "qwen-vl-chat-server")["model"]
    assert cfg["backend"] == "openai" and cfg["box_convention"] == "qwen_vl" and cfg["api_key_env"] is None
    model = OpenAIModel(cfg)
    req = _req(ImagePart(_img((1, 1, 1))), "What is written? Answer:")
    [message] = model.to_messages(req)
    assert [p["type"] for p in message["content"]] == [
        "image_url",
        "text",
    ]  # the server adds "Picture 1: <img></img>"
    assert message["content"][1]["text"] == "What is written? Answer:"
    assert model.supports_choice_logprobs is False


def test_hf_backend_refuses_in_one_line(sqa_fixture):
    from evalkit.models.hf import HFModel

    with pytest.raises(UsageError) as err:
        HFModel({"backend": "hf", "pretrained": "Qwen/Qwen-VL-Chat", "prompt_format": "qwen_vl"}).load()
    assert str(err.value) == qwen_vl.HF_UNSUPPORTED and "\n" not in str(err.value)
    assert "remote code" in str(err.value) and "model.backend=vllm" in str(err.value)
    proc = run_cli("run", "task=scienceqa_img_gen", "model=qwen-vl-chat", "model.backend=hf",
                   f"task.dataset.path={sqa_fixture}", f"output_dir={sqa_fixture.parent / 'out'}",
                   env={"HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == f"evalkit: error: {qwen_vl.HF_UNSUPPORTED}"
    assert "Traceback" not in proc.stderr


@pytest.fixture
def sqa_fixture(tmp_path):
    from evalkit.testing.scienceqa import write_scienceqa_fixture

    return write_scienceqa_fixture(tmp_path / "sqa", n_rows=2)

"""First-generation Qwen-VL / Qwen-VL-Chat: the prompt format, without the checkpoint's remote code.

Qwen-VL is not a transformers architecture: its model class and its tokenizer (tiktoken-based, with
images written into the text as ``<img>path</img>``) live as Python files in the hub repository.
evalkit runs it through engines that implement the architecture natively - vLLM
(``model=qwen-vl-chat`` / ``model=qwen-vl``, ``backend: vllm``) or an OpenAI-compatible server
serving it (``model=qwen-vl-chat-server``) - and renders the prompt itself (``prompt_format:
qwen_vl``):

* ``prompt_style: completion`` (``model=qwen-vl``; the base model, as the Qwen-VL ``eval_mm``
  scripts prompt it): the parts of the conversation concatenated, each image as ``<img></img>``
  where it stands (``<img>{}</img>{question} Answer:`` for VQA, ``<img>{}</img>Context: ...
  Answer:`` for ScienceQA, ``<img>{}</img><ref>{expression}</ref><box>`` for grounding), no
  turns and no system prompt;
* ``prompt_style: chat`` (``model=qwen-vl-chat``): ChatML with Qwen-VL-Chat's default system
  prompt; in the user turn every image becomes ``Picture {k}: <img></img>\\n`` (numbered over the
  conversation, as the checkpoint's ``tokenizer.from_list_format`` numbers them), text stays as
  is; a trailing assistant message is a pre-filled answer start (the turn stays open).

vLLM's Qwen-VL processor fills every ``<img></img>`` with the image's 256 visual tokens from
``multi_modal_data`` (images in prompt order). Video frames become consecutive pictures (Qwen-VL has
no video input).

Grounding: Qwen-VL writes ``<ref>expression</ref><box>(x1,y1),(x2,y2)</box>`` on a 0-1000 grid
divided by 999 (``box_convention: qwen_vl`` of :mod:`evalkit.metrics.boxes`;
:func:`grounding_prompt`, :func:`box_text`).

The transformers backend cannot load the checkpoint without executing its remote code:
:data:`HF_UNSUPPORTED` is the one line it stops with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from evalkit.errors import UsageError
from evalkit.types import ImagePart, Message, Request, TextPart, VideoPart

PROMPT_FORMAT = "qwen_vl"
STYLES = ("chat", "completion")
#: Qwen-VL-Chat's default system prompt (its ``model.chat`` default)
SYSTEM_PROMPT = "You are a helpful assistant."
IMAGE_TAG = "<img></img>"
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
#: vLLM's Qwen-VL architecture name (``hf_overrides``: the checkpoint's config names QWenLMHeadModel)
VLLM_ARCHITECTURE = "QwenVLForConditionalGeneration"

HF_UNSUPPORTED = (
    "the hf (transformers) backend cannot load first-generation Qwen-VL without executing the "
    "checkpoint's own remote code (QWenLMHeadModel, QWenTokenizer; no AutoProcessor support); run it "
    "with model.backend=vllm (model=qwen-vl-chat / qwen-vl) or an OpenAI-compatible server "
    "(model=qwen-vl-chat-server)"
)


def is_qwen_vl(config: Mapping[str, Any]) -> bool:
    """True when a model config asks for the Qwen-VL prompt format."""
    return str(config.get("prompt_format") or "") == PROMPT_FORMAT


def prompt_style(config: Mapping[str, Any]) -> str:
    """``chat`` or ``completion`` (``model.prompt_style``; default ``chat``)."""
    style = str(config.get("prompt_style") or "chat")
    if style not in STYLES:
        raise UsageError(f"model.prompt_style must be one of {', '.join(STYLES)}, got {style!r}")
    return style


def _parts(message: Message) -> list[TextPart | ImagePart]:
    """The message's parts with video frames spelled out as images."""
    out: list[TextPart | ImagePart] = []
    for p in message.content:
        if isinstance(p, VideoPart):
            out.extend(ImagePart(f) for f in p.frames)
        else:
            out.append(p)
    return out


def completion_prompt(request: Request) -> str:
    """The base model's completion prompt: every part in order, images as ``<img></img>``."""
    return "".join(
        IMAGE_TAG if isinstance(p, ImagePart) else p.text for m in request.messages for p in _parts(m)
    )


def chat_prompt(request: Request, system: str = SYSTEM_PROMPT) -> str:
    """Qwen-VL-Chat's ChatML prompt with ``Picture k: <img></img>\\n`` for every image."""
    out: list[str] = []
    messages = list(request.messages)
    if not messages or messages[0].role != "system":
        out.append(f"{IM_START}system\n{system}{IM_END}\n")
    picture = 0
    prefill = bool(messages) and messages[-1].role == "assistant"
    for i, m in enumerate(messages):
        body = []
        for p in _parts(m):
            if isinstance(p, ImagePart):
                picture += 1
                body.append(f"Picture {picture}: {IMAGE_TAG}\n")
            else:
                body.append(p.text)
        text = "".join(body)
        if prefill and i == len(messages) - 1:
            out.append(f"{IM_START}assistant\n{text}")
        else:
            out.append(f"{IM_START}{m.role}\n{text}{IM_END}\n")
    if not prefill:
        out.append(f"{IM_START}assistant\n")
    return "".join(out)


def render_prompt(request: Request, config: Mapping[str, Any]) -> str:
    """The prompt text of a request in the configured Qwen-VL style."""
    if prompt_style(config) == "completion":
        return completion_prompt(request)
    return chat_prompt(request, str(config.get("system_prompt") or SYSTEM_PROMPT))


def vllm_inputs(requests: Sequence[Request], config: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One vLLM prompt dict per request: the rendered prompt and its images (frames included) in
    prompt order under ``multi_modal_data["image"]`` (pure: no vLLM needed)."""
    out = []
    for r in requests:
        images = [p.image for m in r.messages for p in _parts(m) if isinstance(p, ImagePart)]
        item: dict[str, Any] = {"prompt": render_prompt(r, config)}
        if images:
            item["multi_modal_data"] = {"image": images[0] if len(images) == 1 else images}
        out.append(item)
    return out


def engine_overrides(config: Mapping[str, Any]) -> dict[str, Any]:
    """``vllm.LLM`` keyword arguments Qwen-VL needs: vLLM's native architecture name (the
    checkpoint's config names the remote-code class). ``trust_remote_code`` (its tokenizer is remote
    code) is never implied: the preset sets it, as every preset must."""
    overrides = dict(config.get("hf_overrides") or {})
    overrides.setdefault("architectures", [VLLM_ARCHITECTURE])
    return {"hf_overrides": overrides}


def grounding_prompt(expression: str) -> str:
    """The Qwen-VL grounding completion: ``<ref>expression</ref><box>`` (the model continues with
    ``(x1,y1),(x2,y2)</box>``)."""
    return f"<ref>{expression}</ref><box>"


def box_text(box: Sequence[float], image_size: tuple[int, int]) -> str:
    """A pixel box written the Qwen-VL way, ``<box>(x1,y1),(x2,y2)</box>`` on the 0-1000 grid
    (÷999 convention)."""
    from evalkit.metrics.boxes import format_box

    return format_box(box, "qwen_vl", image_size)

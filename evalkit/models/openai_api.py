"""The ``openai`` backend: any OpenAI-compatible chat-completions endpoint.

``model=openai model.name=<model> model.base_url=<url>`` — OpenAI, Aliyun Bailian/DashScope in
compatible mode (presets ``qwen-vl-max``, ``qwen-vl-plus``), a local vLLM server, ...

This module only converts evalkit :class:`~evalkit.types.Request` objects into chat messages and
chat results back into :class:`~evalkit.types.Response`; the HTTP work (concurrency, retries,
timeouts, key handling, token totals) is :class:`~evalkit.models.http_client.ChatClient`'s, shared
with the LLM judge.

Conversion:

* text part → ``{"type": "text", "text": ...}`` (a message made of one text part is sent as a plain
  string, which every server accepts, system turns included);
* image → ``{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}``. The API path
  necessarily re-encodes the decoded pixels; PNG is lossless, so the server decodes exactly the
  pixels evalkit decoded. ``max_image_pixels`` first downscales larger images (aspect ratio kept,
  bicubic) to bound upload size — that changes the input and is part of :meth:`identity`.
  ``image_detail`` adds OpenAI's ``detail`` (``low``/``high``/``auto``);
* video → ``video_mode: frames`` (default): its frames as consecutive images (what OpenAI
  recommends; vLLM and DashScope accept it too); ``video_mode: video``: one
  ``{"type": "video", "video": [frame data URLs]}`` part (DashScope/Qwen's list-of-frames form);
* generation → ``temperature``, ``max_tokens`` (or ``max_completion_tokens``, see
  ``max_tokens_param``), ``top_p``, ``stop``, ``seed`` (config ``seed``, when not null). With
  ``extended_sampling_params: true`` (vLLM, DashScope) ``top_k``, ``repetition_penalty`` and
  ``min_tokens`` go into the request body too; otherwise they are not sent (OpenAI rejects them).
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from evalkit.errors import UsageError
from evalkit.models.base import Model
from evalkit.models.http_client import ChatClient, ChatError, ChatResult, FatalChatError, _plain, public_url
from evalkit.types import (
    INPUT_IMAGE_SIZES,
    GenerationParams,
    ImagePart,
    Message,
    Request,
    Response,
    TextPart,
    VideoPart,
)

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

VIDEO_MODES = ("frames", "video")
IMAGE_DETAILS = ("low", "high", "auto")


def sent_size(size: tuple[int, int], max_pixels: int | None = None) -> tuple[int, int]:
    """``(width, height)`` an image of ``size`` is sent at: downscaled to ``max_pixels`` (aspect
    ratio kept) when larger, else as it is."""
    w, h = size
    if max_pixels and w * h > max_pixels:
        scale = math.sqrt(max_pixels / (w * h))
        return max(1, int(w * scale)), max(1, int(h * scale))
    return w, h


def encode_image(image: Image, max_pixels: int | None = None) -> str:
    """A ``data:image/png;base64,...`` URL of ``image`` (downscaled to ``max_pixels`` first if set)."""
    from PIL import Image as PILImage

    img = image
    if img.mode not in ("RGB", "RGBA", "L", "LA"):
        img = img.convert("RGB")
    size = sent_size(img.size, max_pixels)
    if size != img.size:
        img = img.resize(size, PILImage.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class OpenAIModel(Model):
    """A model behind an OpenAI-compatible chat-completions endpoint (``backend: openai``).

    Config keys (flat, under ``model``): ``name`` (sent as the model), ``base_url``,
    ``api_key_env`` (name of the variable holding the key; null for servers without auth),
    ``concurrency``, ``timeout_s``, ``max_retries``, ``backoff_base_s``, ``backoff_max_s``,
    ``retry_after_max_s``, ``image_detail``, ``max_image_pixels``, ``video_mode``, ``extra_body``,
    ``seed``, ``max_tokens_param``, ``extended_sampling_params``, ``health_check``,
    ``price_per_1k_input``, ``price_per_1k_output``.
    """

    #: never re-send a failed batch request by request: its requests may have been served and paid
    split_failed_batches = False
    #: the runner hands over whole windows; ``concurrency`` requests are in flight at any time
    takes_windows = True
    #: chat completions return no prompt log-probabilities: likelihood tasks are refused up front
    supports_choice_logprobs = False

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        cfg = self.config
        if not cfg.get("name") or str(cfg.get("name")) == "???":
            raise UsageError("the openai backend needs a model name: model.name=<model>")
        if not cfg.get("base_url") or str(cfg.get("base_url")) == "???":
            raise UsageError(
                "the openai backend needs an endpoint: model.base_url=<url> (e.g. http://host:8000/v1)"
            )
        if cfg.get("api_key"):
            raise UsageError(
                "put the API key in an environment variable and set model.api_key_env=<NAME>; "
                "a key in the config would be written to results"
            )
        self.base_url = str(cfg["base_url"]).rstrip("/")
        self.concurrency = int(cfg.get("concurrency") or 4)
        if self.concurrency < 1:
            raise UsageError(f"model.concurrency must be >= 1, got {self.concurrency}")
        self.preferred_batch_size = self.concurrency
        self.image_detail = cfg.get("image_detail") or None
        if self.image_detail is not None and self.image_detail not in IMAGE_DETAILS:
            raise UsageError(
                f"model.image_detail must be one of {IMAGE_DETAILS} or null, got {self.image_detail!r}"
            )
        mp = cfg.get("max_image_pixels")
        self.max_image_pixels = int(mp) if mp else None
        self.video_mode = str(cfg.get("video_mode") or "frames")
        if self.video_mode not in VIDEO_MODES:
            raise UsageError(f"model.video_mode must be one of {VIDEO_MODES}, got {self.video_mode!r}")
        self.extra_body: dict[str, Any] = _plain(cfg.get("extra_body") or {})
        self.seed = None if cfg.get("seed") is None else int(cfg["seed"])
        self.max_tokens_param = str(cfg.get("max_tokens_param") or "max_tokens")
        if self.max_tokens_param not in ("max_tokens", "max_completion_tokens"):
            raise UsageError("model.max_tokens_param must be max_tokens or max_completion_tokens")
        self.extended_sampling = bool(cfg.get("extended_sampling_params", False))
        self.run_health_check = bool(cfg.get("health_check", True))
        self.client: ChatClient | None = None

    # ------------------------------------------------------------------ Model protocol
    def identity(self) -> dict[str, Any]:
        """Endpoint (without credentials), model name, image/video handling, request extras. Never the key.

        An API model can change behind its name; pin a dated snapshot name where the provider has one.
        """
        return {
            "backend": "openai",
            "base_url": public_url(self.base_url),
            "model": self.name,
            "image_encoding": "png",
            "max_image_pixels": self.max_image_pixels,
            "image_detail": self.image_detail,
            "video_mode": self.video_mode,
            "extra_body": self.extra_body,
            "seed": self.seed,
            "max_tokens_param": self.max_tokens_param,
            "extended_sampling_params": self.extended_sampling,
        }

    def load(self) -> None:
        """Create the client (reads the key from ``$api_key_env``) and, unless ``health_check: false``,
        make one tiny request so a wrong URL, key or model fails here with one clear line."""
        if self.loaded:
            return
        self.client = ChatClient.from_config({**self.config, "concurrency": self.concurrency})
        if self.run_health_check:
            try:
                self.client.health_check()
            except ChatError:
                self.client.close()
                self.client = None
                raise
        self.loaded = True

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """Answer the requests concurrently, in order; a request that still fails after retries
        becomes ``Response(text="", error=...)``. A 401/403/404 (the endpoint or key is wrong, so
        every request would fail) raises :class:`~evalkit.models.http_client.FatalChatError`, a
        :class:`~evalkit.errors.BackendFatalError`."""
        if not self.loaded or self.client is None:
            self.load()
        assert self.client is not None
        convs = [(lambda r=r: self.to_messages(r)) for r in requests]
        params = [self.prefill_params(r, self.to_params(r.generation)) for r in requests]
        try:
            results = self.client.complete_many(convs, params)
        except FatalChatError as exc:  # hand the answers already received to the runner
            exc.partial = {i: self._response(requests[i], res) for i, res in exc.partial.items()}
            raise
        return [self._response(req, res) for req, res in zip(requests, results, strict=True)]

    def render_prompt(self, request: Request) -> str:
        """The conversation as text: text parts verbatim, images/videos as placeholders (no base64)."""
        single = len(request.messages) == 1 and request.messages[0].role == "user"
        out = []
        for m in request.messages:
            parts = [self._render_part(p) for p in m.content]
            body = "\n".join(parts)
            out.append(body if single else f"[{m.role}]\n{body}")
        return "\n".join(out)

    def close(self) -> None:
        """Close the HTTP client."""
        if self.client is not None:
            self.client.close()
            self.client = None
        self.loaded = False

    # ------------------------------------------------------------------ conversion
    def to_messages(self, request: Request) -> list[dict[str, Any]]:
        """The request as OpenAI chat messages (images as PNG data URLs)."""
        return [self._message(m) for m in request.messages]

    def prefill_params(self, request: Request, params: dict[str, Any]) -> dict[str, Any]:
        """A request ending in an assistant turn asks to *continue* that answer (MVBench's official
        ``Best option:(`` prefill). vLLM-style servers (``extended_sampling_params: true``) are told so
        with ``continue_final_message``; other APIs receive the turn as an ordinary message."""
        if request.messages and request.messages[-1].role == "assistant" and self.extended_sampling:
            extra = dict(params.get("extra_body") or {})
            extra.update(continue_final_message=True, add_generation_prompt=False)
            params = {**params, "extra_body": extra}
        return params

    def to_params(self, gen: GenerationParams) -> dict[str, Any]:
        """Chat-completions parameters for ``gen`` (see the module docstring)."""
        params: dict[str, Any] = {"temperature": gen.temperature, self.max_tokens_param: gen.max_new_tokens}
        if gen.top_p is not None:
            params["top_p"] = gen.top_p
        if gen.stop:
            params["stop"] = list(gen.stop)
        if self.seed is not None:
            params["seed"] = self.seed
        if self.extended_sampling:
            extra: dict[str, Any] = {}
            if gen.top_k is not None:
                extra["top_k"] = gen.top_k
            if gen.repetition_penalty is not None:
                extra["repetition_penalty"] = gen.repetition_penalty
            if gen.min_new_tokens is not None:
                extra["min_tokens"] = gen.min_new_tokens
            if extra:
                params["extra_body"] = extra
        return params

    def usage(self) -> dict[str, Any]:
        """Token totals of this run so far, with a cost estimate when prices are configured."""
        totals: dict[str, Any] = dict(self.client.usage) if self.client is not None else {}
        cost = self.estimated_cost(totals.get("prompt_tokens", 0), totals.get("completion_tokens", 0))
        if cost is not None:
            totals["estimated_cost"] = cost
        return totals

    def estimated_cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """``prompt/1000 * price_per_1k_input + completion/1000 * price_per_1k_output`` (None without prices)."""
        pin, pout = self.config.get("price_per_1k_input"), self.config.get("price_per_1k_output")
        if pin is None and pout is None:
            return None
        return round(prompt_tokens / 1000 * float(pin or 0) + completion_tokens / 1000 * float(pout or 0), 6)

    # ------------------------------------------------------------------ internals
    def _image(self, image: Image) -> dict[str, Any]:
        url: dict[str, Any] = {"url": encode_image(image, self.max_image_pixels)}
        if self.image_detail:
            url["detail"] = self.image_detail
        return {"type": "image_url", "image_url": url}

    def _message(self, m: Message) -> dict[str, Any]:
        if len(m.content) == 1 and isinstance(m.content[0], TextPart):
            return {"role": m.role, "content": m.content[0].text}
        parts: list[dict[str, Any]] = []
        for p in m.content:
            if isinstance(p, TextPart):
                parts.append({"type": "text", "text": p.text})
            elif isinstance(p, ImagePart):
                parts.append(self._image(p.image))
            elif isinstance(p, VideoPart):
                if self.video_mode == "video":
                    parts.append(
                        {"type": "video", "video": [encode_image(f, self.max_image_pixels) for f in p.frames]}
                    )
                else:
                    parts.extend(self._image(f) for f in p.frames)
        return {"role": m.role, "content": parts}

    @staticmethod
    def _render_part(p: Any) -> str:
        if isinstance(p, TextPart):
            return p.text
        if isinstance(p, ImagePart):
            return f"<image {p.image.size[0]}x{p.image.size[1]}>"
        if isinstance(p, VideoPart):
            return f"<video {len(p.frames)} frames @ {p.fps:g} fps>"
        return f"<{type(p).__name__}>"

    def _response(self, request: Request, res: ChatResult) -> Response:
        extra: dict[str, Any] = {"attempts": res.attempts}
        for k in ("finish_reason", "model", "system_fingerprint", "error_kind"):
            v = getattr(res, k)
            if v is not None:
                extra[k if k != "model" else "served_model"] = v
        if res.ok:
            extra["truncated"] = res.finish_reason == "length"
        if request.images:  # the frame of the answer's pixel coordinates (a server may resize again)
            extra[INPUT_IMAGE_SIZES] = [
                list(sent_size(i.size, self.max_image_pixels)) for i in request.images
            ]
        return Response(
            text=res.text,
            prompt=self.render_prompt(request),
            input_tokens=res.prompt_tokens,
            output_tokens=res.completion_tokens,
            latency_s=round(res.latency_s, 4),
            error=res.error,
            extra=extra,
        )

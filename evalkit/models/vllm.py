"""vLLM offline-engine backend (``backend: vllm``): same prompts, pixel budget and greedy decoding
as the HF backend, much faster batched generation, ``tensor_parallel_size`` GPUs per replica.

* Prompt: rendered by the checkpoint's HF processor chat template from the same messages as
  :class:`evalkit.models.hf.HFModel` (:func:`evalkit.models.hf._hf_messages`), so the rendered
  prompt recorded per sample is identical between the two backends.
* Inputs: ``{"prompt": ..., "multi_modal_data": {"image": ..., "video": ...},
  "mm_processor_kwargs": {"min_pixels": ..., "max_pixels": ...}}`` per request
  (:func:`build_llm_inputs`, a pure function).
* Decoding: greedy = ``temperature=0`` (vLLM's exact greedy), ``max_tokens`` from the task.
* vLLM is optional and imported only in :meth:`VLLMModel.load`; without it the error says
  ``pip install vllm``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any

from evalkit.errors import EvalkitError, MissingDependencyError
from evalkit.models import qwen_vl
from evalkit.models.hf import CheckpointModel, load_processor
from evalkit.types import INPUT_IMAGE_SIZES, GenerationParams, Request, Response

log = logging.getLogger("evalkit")

INSTALL_HINT = "pip install vllm (or, in the evalkit clone: pip install '.[vllm]')"


def sampling_kwargs(gen: GenerationParams, seed: int | None = None) -> dict[str, Any]:
    """``vllm.SamplingParams`` keyword arguments equivalent to the HF backend's ``generate`` call."""
    kw: dict[str, Any] = {"max_tokens": int(gen.max_new_tokens), "skip_special_tokens": True}
    if gen.min_new_tokens:
        kw["min_tokens"] = int(gen.min_new_tokens)
    if gen.greedy:
        kw["temperature"] = 0.0  # vLLM: temperature 0 = greedy (argmax), top_p/top_k unused
    else:
        kw["temperature"] = float(gen.temperature)
        if gen.top_p is not None:
            kw["top_p"] = float(gen.top_p)
        if gen.top_k is not None:
            kw["top_k"] = int(gen.top_k)
        if seed is not None:
            kw["seed"] = int(seed)
    kw["repetition_penalty"] = float(gen.repetition_penalty or 1.0)
    if gen.stop:
        kw["stop"] = list(gen.stop)
    return kw


def _video_array(video: Any) -> Any:
    import numpy as np

    return np.stack([np.asarray(f.convert("RGB")) for f in video.frames])


def build_llm_inputs(
    requests: Sequence[Request],
    prompts: Sequence[str],
    min_pixels: int | None = None,
    max_pixels: int | None = None,
) -> list[dict[str, Any]]:
    """One vLLM prompt dict per request (pure: no vLLM needed).

    Images go in request order under ``multi_modal_data["image"]`` (a single image as itself, several
    as a list); videos as ``(frames, H, W, 3)`` uint8 arrays under ``"video"`` (frames already
    sampled and sized by the task's video plan, as for the HF backend). The image pixel budget goes to
    the multimodal processor as ``mm_processor_kwargs`` (``min_pixels``/``max_pixels``).
    """
    if len(prompts) != len(requests):
        raise ValueError(f"{len(prompts)} prompts for {len(requests)} requests")
    out: list[dict[str, Any]] = []
    for request, prompt in zip(requests, prompts, strict=True):
        item: dict[str, Any] = {"prompt": prompt}
        mm: dict[str, Any] = {}
        images = list(request.images)
        if images:
            mm["image"] = images[0] if len(images) == 1 else images
        videos = list(request.videos)
        if videos:
            arrays = [_video_array(v) for v in videos]
            mm["video"] = arrays[0] if len(arrays) == 1 else arrays
        if mm:
            item["multi_modal_data"] = mm
            kwargs: dict[str, Any] = {}
            if images and min_pixels is not None:
                kwargs["min_pixels"] = int(min_pixels)
            if images and max_pixels is not None:
                kwargs["max_pixels"] = int(max_pixels)
            if kwargs:
                item["mm_processor_kwargs"] = kwargs
        out.append(item)
    return out


class VLLMModel(CheckpointModel):
    """vLLM offline engine (config keys: see ``configs/model/vllm.yaml``)."""

    default_batch_size = 64
    #: the runner hands over whole windows: the engine's continuous batching schedules them
    takes_windows = True

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        self.tensor_parallel_size = int(self.config.get("tensor_parallel_size") or 1)
        self.llm: Any = None
        self._fitter: Any = None  # ProcessorImageFitter, False when the processor is not one

    # ----------------------------------------------------------------- identity
    def identity(self) -> dict[str, Any]:
        """Like HFModel's (checkpoint, dtype, pixel budget, template) plus backend and engine facts."""
        try:
            vllm_version: str | None = metadata.version("vllm")
        except metadata.PackageNotFoundError:
            vllm_version = None
        return {
            **self.checkpoint_identity("vllm", str(self.config.get("dtype") or "auto")),
            "tensor_parallel_size": self.tensor_parallel_size,
            "max_model_len": self.config.get("max_model_len"),
            "vllm_version": vllm_version,
        }

    # ----------------------------------------------------------------- loading
    def engine_kwargs(self, path: str) -> dict[str, Any]:
        """Keyword arguments of ``vllm.LLM`` (pure; tested without vLLM)."""
        kw: dict[str, Any] = {
            "model": path,
            "tensor_parallel_size": self.tensor_parallel_size,
            "dtype": str(self.config.get("dtype") or "auto"),
            "seed": int(self.config.get("seed") or 0),
            "trust_remote_code": bool(self.config.get("trust_remote_code", False)),
            "gpu_memory_utilization": float(self.config.get("gpu_memory_utilization") or 0.9),
            "limit_mm_per_prompt": dict(self.config.get("limit_mm_per_prompt") or {"image": 1, "video": 1}),
        }
        for key in ("revision", "max_model_len", "max_num_seqs", "enforce_eager"):
            if self.config.get(key) is not None:
                kw[key] = self.config[key]
        lo, hi = self.config.get("min_pixels"), self.config.get("max_pixels")
        mm = {k: int(v) for k, v in (("min_pixels", lo), ("max_pixels", hi)) if v is not None}
        if mm:
            kw["mm_processor_kwargs"] = mm
        if qwen_vl.is_qwen_vl(self.config):  # first-generation Qwen-VL (evalkit.models.qwen_vl)
            kw.update(qwen_vl.engine_overrides(self.config))
        return kw

    def _load_processor(self) -> None:
        if self.processor is not None or qwen_vl.is_qwen_vl(self.config):  # Qwen-VL: evalkit renders
            return
        path = self.loadable_path()
        processor = load_processor(
            self.pretrained,
            path,
            trust_remote_code=bool(self.config.get("trust_remote_code", False)),
            revision=self.config.get("revision"),
        )
        self.apply_template_override(processor)
        self.processor = processor

    def load(self) -> None:
        """Start the vLLM engine (once); fails with an install hint when vLLM is missing."""
        if self.loaded:
            return
        try:
            import vllm
        except ImportError as exc:
            raise MissingDependencyError(
                f"model.backend=vllm needs the optional dependency vLLM, which is not installed ({exc}); "
                f"install it with: {INSTALL_HINT} — or use the transformers backend (model.backend=hf)"
            ) from exc
        self._load_processor()
        path = self.loadable_path()
        self.llm = vllm.LLM(**self.engine_kwargs(path))
        self._sampling_cls = vllm.SamplingParams
        self.loaded = True
        log.info(
            "vLLM engine up for %s (tensor_parallel_size=%d)", self.pretrained, self.tensor_parallel_size
        )

    # ----------------------------------------------------------------- generation
    def render_prompt(self, request: Request) -> str:
        """The chat-template rendering of the request, exactly as the HF backend renders it."""
        if qwen_vl.is_qwen_vl(self.config):
            return qwen_vl.render_prompt(request, self.config)
        self._load_processor()
        return self.render_chat(request)

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """One batched ``LLM.generate`` call; per-request token counts from the engine."""
        if not self.loaded:
            self.load()
        gen = requests[0].generation
        if any(r.generation != gen for r in requests):
            raise EvalkitError("a batch mixes generation parameters; the runner must not do that")
        prompts = [self.render_prompt(r) for r in requests]
        inputs = self._engine_inputs(requests, prompts)
        params = self._sampling_cls(**sampling_kwargs(gen, int(self.config.get("seed") or 0)))
        outputs = self.llm.generate(inputs, params, use_tqdm=False)
        responses = []
        for request, prompt, out in zip(requests, prompts, outputs, strict=True):
            completion = out.outputs[0]
            finish = getattr(completion, "finish_reason", None)
            extra: dict[str, Any] = {"truncated": finish == "length", "finish_reason": finish}
            sizes = self.input_image_sizes(request)
            if sizes is not None:
                extra[INPUT_IMAGE_SIZES] = sizes
            responses.append(
                Response(
                    text=completion.text.strip(),
                    prompt=prompt,
                    input_tokens=len(out.prompt_token_ids or []),
                    output_tokens=len(completion.token_ids or []),
                    extra=extra,
                )
            )
        return responses

    def input_image_sizes(self, request: Request) -> list[list[int]] | None:
        """``[width, height]`` of each image of ``request`` as the engine gives it to the model:
        the checkpoint's Qwen2-VL-style processor resize under the pixel budget passed as
        ``mm_processor_kwargs`` (vLLM runs that processor). None for other processors and for
        first-generation Qwen-VL (fixed 448 x 448, relative boxes)."""
        if not request.images or qwen_vl.is_qwen_vl(self.config):
            return None
        self._load_processor()
        if self._fitter is None:
            from evalkit.models.image_fit import ProcessorImageFitter

            self._fitter = ProcessorImageFitter.for_processor(self.processor) or False
        if self._fitter is False:
            return None
        lo, hi = self.config.get("min_pixels"), self.config.get("max_pixels")
        return [list(self._fitter.input_size(image.size, lo, hi)) for image in request.images]

    def _engine_inputs(self, requests: Sequence[Request], prompts: Sequence[str]) -> list[Any]:
        """The engine's inputs for the rendered ``prompts`` (Qwen-VL: its own format)."""
        if qwen_vl.is_qwen_vl(self.config):
            return qwen_vl.vllm_inputs(requests, self.config)
        return build_llm_inputs(
            requests, prompts, self.config.get("min_pixels"), self.config.get("max_pixels")
        )

    def close(self) -> None:
        """Drop the engine."""
        self.llm = None
        self.loaded = False

    #: likelihood-ranked choices through ``prompt_logprobs`` (evalkit.models.choice_logprobs)
    supports_choice_logprobs = True

    def choice_tokenizer(self) -> Any:
        """The tokenizer the engine uses (the processor's when the engine is not up)."""
        if self.llm is not None and hasattr(self.llm, "get_tokenizer"):
            return self.llm.get_tokenizer()
        return self.processor.tokenizer

    def score_choices(self, requests: Sequence[Request]) -> list[Response]:
        """Log-likelihood of each candidate continuation (see :mod:`evalkit.models.choice_logprobs`)."""
        from evalkit.models.choice_logprobs import check_choice_requests, vllm_score_choices

        check_choice_requests(requests)
        if not self.loaded:
            self.load()
        contexts = [self.render_prompt(r) for r in requests]
        base = self._engine_inputs(requests, contexts)
        return vllm_score_choices(
            self.llm, self._sampling_cls, self.choice_tokenizer(), requests, contexts, base
        )

"""Hugging Face transformers backend: any image-text-to-text model via the Auto classes.

* Weights: ``AutoModelForImageTextToText`` (``trust_remote_code`` only when the preset or the user
  sets it); processor: ``AutoProcessor`` with the pixel budget ``min_pixels``/``max_pixels``.
* Prompt: the processor's chat template, rendered per request; generation uses left padding so a
  batch gives the same answers as single requests. ``model.chat_template=<jinja or file>``
  overrides it; ``model.chat_template=plain`` feeds the bare text of the messages (no turn markers)
  to checkpoints that ship no template and take a plain prompt (Florence-2, PaliGemma). A
  checkpoint without a template and no override fails at load with one line saying so.
* Encoder-decoder models (``config.is_encoder_decoder``: Florence-2, Pix2Struct, UDOP...): the
  generated sequence holds only decoder tokens, so all of it is the answer (a decoder-only
  model's output starts with the prompt, which is cut off).
* Two steps (:meth:`HFModel.prepare`: template + processor on CPU; :meth:`HFModel.generate_prepared`:
  device transfer, ``generate``, decode), so the runner prepares the next batch while this one runs.
* ``Response.extra``: ``truncated`` (generation hit ``max_new_tokens`` without an end token) and
  ``finish_reason`` (``"length"`` or ``"stop"``).
* Identity (the response-cache key) is computed without loading weights: the hub revision of a
  cached snapshot (blob hashes) or a hash of a local folder's files (full sha256 of small files;
  size + first/last MiB of weight files), plus dtype, pixel budget and attention implementation.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError, MissingDependencyError, UsageError
from evalkit.hub import hub_unavailable, model_not_cached_message
from evalkit.models.base import Model
from evalkit.types import INPUT_IMAGE_SIZES, ImagePart, Request, Response, TextPart, VideoPart

log = logging.getLogger("evalkit")

_SMALL_FILE = 16 * 1024 * 1024
#: ``model.chat_template=plain``: the text parts of the messages, one per line, nothing else
PLAIN_TEMPLATE = "plain"
_PIP_HINT = re.compile(r"pip install ([A-Za-z0-9_.\-\[\]]+)")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def folder_fingerprint(folder: Path) -> str:
    """Hash of a model folder: every file's relative path and size; the full content of small
    files; the first and last MiB of large weight files. Cheap even for 72B checkpoints."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts):
        rel = path.relative_to(folder).as_posix()
        size = path.stat().st_size
        h.update(f"{rel}:{size}\n".encode())
        target = path.resolve()
        if path.is_symlink() and len(target.name) in (40, 64):  # HF cache: blob name = content hash
            h.update(target.name.encode())
            continue
        with open(path, "rb") as f:
            if size <= _SMALL_FILE or not rel.endswith(_WEIGHT_SUFFIXES):
                for block in iter(lambda f=f: f.read(1 << 20), b""):
                    h.update(block)
            else:
                h.update(f.read(1 << 20))
                f.seek(size - (1 << 20))
                h.update(f.read(1 << 20))
    return h.hexdigest()


def resolve_pretrained(
    pretrained: str, cache_dir: str, revision: str | None = None
) -> tuple[str, dict[str, Any]]:
    """Map a config's ``pretrained`` to something ``from_pretrained`` accepts, plus identity facts.

    ``evalkit://tiny`` builds the bundled tiny Qwen2-VL on first use.
    """
    if pretrained.startswith("evalkit://tiny"):
        from evalkit.models.tiny import TINY_PRESET, ensure_tiny_model

        path = ensure_tiny_model(cache_dir, TINY_PRESET)
        return str(path), {"source": "evalkit-tiny", "weights_hash": folder_fingerprint(path)}
    local = Path(os.path.expanduser(pretrained))
    if local.exists():
        if not local.is_dir():
            raise UsageError(f"model.pretrained={pretrained} is a file; pass a model folder or a hub id")
        return str(local), {"source": "local", "weights_hash": folder_fingerprint(local)}
    if pretrained.startswith(("/", "./", "../", "~")):
        raise UsageError(
            f"model folder {pretrained} does not exist; pass model.pretrained=<hub id or local folder>"
        )
    info: dict[str, Any] = {"source": "hub", "revision": revision}
    # probe the hub once (seconds) so that an unreachable hub fails here, with one line, instead of
    # after minutes of retries inside transformers; a cached model then loads offline
    unavailable = hub_unavailable("model")
    try:
        from huggingface_hub import snapshot_download

        snap = snapshot_download(pretrained, revision=revision, local_files_only=True)
        info["resolved_revision"] = Path(snap).name
        info["weights_hash"] = folder_fingerprint(Path(snap))
    except Exception:  # not cached yet: the hub revision will be recorded after download
        info["weights_hash"] = None
        if unavailable is not None:  # raised by CheckpointModel.loadable_path (re-scoring needs no weights)
            info["not_cached"] = model_not_cached_message(pretrained, unavailable, revision)
    return pretrained, info


def _hf_messages(request: Request) -> list[dict[str, Any]]:
    out = []
    for m in request.messages:
        content = []
        for p in m.content:
            if isinstance(p, TextPart):
                content.append({"type": "text", "text": p.text})
            elif isinstance(p, ImagePart):
                content.append({"type": "image"})
            elif isinstance(p, VideoPart):
                content.append({"type": "video"})
        out.append({"role": m.role, "content": content})
    return out


def plain_prompt(request: Request) -> str:
    """The ``plain`` rendering: every text part of every message, one per line (no roles, no
    image placeholders: processors of template-less models insert their image tokens themselves)."""
    return "\n".join(p.text for m in request.messages for p in m.content if isinstance(p, TextPart))


def has_chat_template(processor: Any) -> bool:
    """True when the processor (or its tokenizer) carries a chat template."""
    tok = getattr(processor, "tokenizer", None)
    return bool(getattr(processor, "chat_template", None) or getattr(tok, "chat_template", None))


def missing_package_error(exc: ImportError, what: str) -> MissingDependencyError:
    """One line naming the optional package an ImportError is about and its pip command."""
    hint = _PIP_HINT.search(str(exc))
    package = hint.group(1).strip("`'\".") if hint else (getattr(exc, "name", None) or "")
    if not package:
        return MissingDependencyError(
            f"{what} needs a package that is not installed: {str(exc).splitlines()[0]}"
        )
    return MissingDependencyError(
        f"{what} needs the optional package {package}, which is not installed: pip install {package}"
    )


def load_processor(pretrained: str, path: str, **kwargs: Any) -> Any:
    """``AutoProcessor.from_pretrained(path, **kwargs)`` with one-line errors: a missing optional
    package (e.g. SmolVLM's ``num2words``) names its pip command; an unreadable or absent
    checkpoint says so. A ``TypeError`` (unknown keyword) propagates, for the caller to retry."""
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(path, **kwargs)
    except ImportError as exc:
        raise missing_package_error(exc, f"the processor of {pretrained}") from exc
    except OSError as exc:
        raise EvalkitError(
            f"could not load the processor of {pretrained}: {str(exc).splitlines()[0]}"
        ) from exc


class CheckpointModel(Model):
    """Base of the backends that run a checkpoint locally (transformers, vLLM): ``pretrained``
    resolution (hub id, local folder, ``evalkit://tiny``) and the identity fields they share."""

    #: requests per call when the config does not say
    default_batch_size: int = 1

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        self.pretrained = str(self.config.get("pretrained") or "")
        if not self.pretrained or self.pretrained == "???":
            raise UsageError("model.pretrained is not set; pass model.pretrained=<hub id or local folder>")
        self.preferred_batch_size = int(self.config.get("batch_size") or self.default_batch_size)
        self.cache_dir = str(self.config.get("cache_dir") or "~/.cache/evalkit")
        self._resolved: tuple[str, dict[str, Any]] | None = None
        self._resolve_lock = threading.Lock()  # the background load and the main thread may both ask
        self.processor: Any = None

    def _resolve(self) -> tuple[str, dict[str, Any]]:
        with self._resolve_lock:
            if self._resolved is None:
                self._resolved = resolve_pretrained(
                    self.pretrained, self.cache_dir, self.config.get("revision")
                )
            return self._resolved

    def resolves_cheaply(self) -> bool:
        """False for ``evalkit://tiny`` before its first build (resolving it builds it)."""
        if self._resolved is not None or not self.pretrained.startswith("evalkit://tiny"):
            return True
        from evalkit.models.tiny import TINY_PRESET, tiny_model_built

        return tiny_model_built(self.cache_dir, TINY_PRESET)

    def loadable_path(self) -> str:
        """The path or hub id to load from.

        Raises:
            UsageError: a hub model that is not in the local cache while the hub is unreachable
                (or ``HF_HUB_OFFLINE`` is set): one line saying how to get it.
        """
        path, info = self._resolve()
        if info.get("not_cached"):
            raise UsageError(str(info["not_cached"]))
        return path

    def checkpoint_identity(self, backend: str, dtype: str) -> dict[str, Any]:
        """Checkpoint (revision, weights hash), dtype, pixel budget, template override and video
        settings: everything but the backend-specific engine facts. No weights are loaded."""
        _, info = self._resolve()
        template = self.config.get("chat_template")
        return {
            "backend": backend,
            "pretrained": self.pretrained,
            "revision": info.get("resolved_revision") or self.config.get("revision"),
            "weights_hash": info.get("weights_hash"),
            "dtype": dtype,
            "min_pixels": self.config.get("min_pixels"),
            "max_pixels": self.config.get("max_pixels"),
            "chat_template": hashlib.sha256(str(template).encode()).hexdigest() if template else None,
            "video": dict(self.config.get("video") or {}),
        }

    # ----------------------------------------------------------------- chat template
    @property
    def plain_template(self) -> bool:
        """True for ``model.chat_template=plain``."""
        return str(self.config.get("chat_template") or "").strip() == PLAIN_TEMPLATE

    def apply_template_override(self, processor: Any) -> None:
        """Install ``model.chat_template`` (a Jinja string, or the path of a file holding one) on
        the processor, then require a template unless it is ``plain``.

        Raises:
            UsageError: the checkpoint has no chat template and none was given.
        """
        template = self.config.get("chat_template")
        if template and not self.plain_template:
            text = str(template)
            if "{" not in text and len(text) < 4096 and Path(os.path.expanduser(text)).is_file():
                text = Path(os.path.expanduser(text)).read_text(encoding="utf-8")
            processor.chat_template = text
        if not self.plain_template and not has_chat_template(processor):
            raise UsageError(
                f"checkpoint {self.pretrained} has no chat template: pass model.chat_template=<Jinja "
                f"template or file>, or model.chat_template={PLAIN_TEMPLATE} for a model that takes the "
                "bare question text (Florence-2, PaliGemma)"
            )

    def render_chat(self, request: Request) -> str:
        """The request through the chat template (or :func:`plain_prompt` for ``plain``)."""
        if self.plain_template:
            return plain_prompt(request)
        # a trailing assistant message is a pre-filled answer start (MVBench's "Best option:("):
        # the model continues it instead of opening a new turn
        prefill = bool(request.messages) and request.messages[-1].role == "assistant"
        return self.processor.apply_chat_template(
            _hf_messages(request),
            tokenize=False,
            add_generation_prompt=not prefill,
            continue_final_message=prefill,
        )


@dataclass
class PreparedBatch:
    """A batch after :meth:`HFModel.prepare`: its requests, rendered prompts and processor output."""

    requests: list[Request]
    texts: list[str]
    inputs: Any
    #: per request, ``[width, height]`` of each of its images as the model is given them (None:
    #: not known for this processor; see :func:`input_image_sizes`)
    image_sizes: list[list[list[int]] | None] | None = None


def input_image_sizes(
    requests: Sequence[Request], inputs: Any, image_processor: Any
) -> list[list[list[int]] | None]:
    """Per request, ``[width, height]`` of each image as the model is given it, read from the
    processor's output: a Qwen2-VL-style processor reports each image's patch grid
    (``image_grid_thw``: frames, rows, columns of ``patch_size`` pixels). None per request where the
    processor reports no grid (its resize, if any, is not known here)."""
    counts = [len(r.images) for r in requests]
    grid = inputs.get("image_grid_thw") if hasattr(inputs, "get") else None
    patch = getattr(image_processor, "patch_size", None)
    if grid is None or not isinstance(patch, int) or len(grid) != sum(counts):
        return [None] * len(requests)
    rows = [[int(w) * patch, int(h) * patch] for _, h, w in grid.tolist()]
    out: list[list[list[int]] | None] = []
    start = 0
    for n in counts:
        out.append(rows[start : start + n] if n else None)
        start += n
    return out


class HFModel(CheckpointModel):
    """transformers backend (config keys: see ``configs/model/hf.yaml``)."""

    #: imported in the background during start-up (the larger part of a small run's start-up)
    warm_modules = ("torch", "transformers:AutoProcessor", "transformers:AutoModelForImageTextToText")

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)
        self.model: Any = None
        self.device: Any = None
        self._tokenizer_lock = threading.Lock()
        self._processor_lock = threading.RLock()
        self._fitter: Any = None  # ProcessorImageFitter, False (none for this processor), None (not yet)

    # ----------------------------------------------------------------- identity

    def _dtype_name(self) -> str:
        dtype = str(self.config.get("dtype") or "auto")
        if dtype != "auto":
            return dtype
        return "bfloat16" if self._device_name().startswith("cuda") else "float32"

    def computes_on_host(self) -> bool:
        """True on the ``cpu`` device (see :meth:`Model.computes_on_host`)."""
        if self.device is not None:
            return str(getattr(self.device, "type", self.device)) == "cpu"
        if self.config.get("device_map"):
            return False
        return self._device_name() == "cpu"

    def _device_name(self) -> str:
        device = str(self.config.get("device") or "auto")
        if device != "auto":
            return device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def identity(self) -> dict[str, Any]:
        """Backend, checkpoint identity, dtype, pixel budget, template override; no weights loaded."""
        return {
            **self.checkpoint_identity("hf", self._dtype_name()),
            "attn_implementation": self.config.get("attn_implementation"),
        }

    # ----------------------------------------------------------------- loading
    def load_processor(self) -> Any:
        """Load the processor (once; thread-safe), with the pixel budget and the template override.

        Separate from :meth:`load`: request building fits images with it (:meth:`fit_request`)
        while the weights may still be loading in the background."""
        with self._processor_lock:
            if self.processor is not None:
                return self.processor
            path = self.loadable_path()
            trust = bool(self.config.get("trust_remote_code", False))
            kwargs: dict[str, Any] = {"trust_remote_code": trust, "revision": self.config.get("revision")}
            lo, hi = self.config.get("min_pixels"), self.config.get("max_pixels")
            if lo is not None and hi is not None:
                kwargs["size"] = {"shortest_edge": int(lo), "longest_edge": int(hi)}
            try:
                processor = load_processor(self.pretrained, path, **kwargs)
            except TypeError:
                kwargs.pop("size", None)
                processor = load_processor(self.pretrained, path, min_pixels=lo, max_pixels=hi, **kwargs)
            self.apply_template_override(processor)
            tok = getattr(processor, "tokenizer", None)
            if tok is not None:
                tok.padding_side = "left"
            self.processor = processor
            return processor

    def fit_request(self, request: Request) -> Request:
        """``request`` with its images resized to the processor's pixel budget by the processor's
        own resize (:mod:`evalkit.models.image_fit`; exactness checked once per run). Off with
        ``model.fit_images=false``, and for processors that module does not recognise."""
        if not request.images or self.config.get("fit_images") is False:
            return request
        fitter = self._fitter
        if fitter is None:
            with self._processor_lock:
                if self._fitter is None:
                    from evalkit.models.image_fit import ProcessorImageFitter

                    try:
                        made = ProcessorImageFitter.for_processor(self.load_processor())
                    except EvalkitError as exc:  # loading the model reports it where it belongs
                        log.debug("images not fitted ahead: %s", exc)
                        made = None
                    self._fitter = made if made is not None else False
                fitter = self._fitter
        if fitter is False:
            return request
        return fitter.fit_request(request)

    def load(self) -> None:
        """Load processor and weights (once)."""
        if self.loaded:
            return
        if str(self.config.get("prompt_format") or "") == "qwen_vl":  # evalkit.models.qwen_vl
            from evalkit.models.qwen_vl import HF_UNSUPPORTED

            raise UsageError(HF_UNSUPPORTED)
        try:
            import torch
            from transformers import AutoModelForImageTextToText
        except ImportError as exc:  # pragma: no cover - torch/transformers are hard dependencies
            raise MissingDependencyError(f"the hf backend needs torch and transformers: {exc}") from exc
        self.load_processor()
        path = self.loadable_path()
        torch.manual_seed(int(self.config.get("seed") or 0))
        trust = bool(self.config.get("trust_remote_code", False))
        device = self._device_name()
        dtype = getattr(torch, self._dtype_name())
        model_kwargs: dict[str, Any] = {
            "dtype": dtype,
            "trust_remote_code": trust,
            "revision": self.config.get("revision"),
        }
        if self.config.get("attn_implementation"):
            model_kwargs["attn_implementation"] = self.config["attn_implementation"]
        if self.config.get("device_map"):
            model_kwargs["device_map"] = self.config["device_map"]
        try:
            self.model = AutoModelForImageTextToText.from_pretrained(path, **model_kwargs)
        except ImportError as exc:
            raise missing_package_error(exc, f"model {self.pretrained}") from exc
        except OSError as exc:
            raise EvalkitError(
                f"could not load model {self.pretrained}: {str(exc).splitlines()[0]} "
                "(offline? pass model.pretrained=<local folder>)"
            ) from exc
        if not self.config.get("device_map"):
            self.model.to(device)
        self.model.eval()
        self.device = next(self.model.parameters()).device
        self.loaded = True
        log.info("loaded %s on %s (%s)", self.pretrained, self.device, self._dtype_name())

    # ----------------------------------------------------------------- generation
    def render_prompt(self, request: Request) -> str:
        """The chat-template rendering of the request (what the model is actually fed)."""
        if self.processor is None:
            self.load()
        return self.render_chat(request)

    def _video_kwargs(self, requests: Sequence[Request]) -> dict[str, Any]:
        videos = [v for r in requests for v in r.videos]
        if not videos:
            return {}
        return {
            "videos": [list(v.frames) for v in videos],
            "do_sample_frames": False,
            "video_metadata": [
                {
                    "fps": v.fps,
                    "total_num_frames": len(v.frames),
                    "frames_indices": list(range(len(v.frames))),
                }
                for v in videos
            ],
            # The frames arrive already resized to the video pixel budget (the task sampled them);
            # bound the video processor by their own sizes so the image budget (model.min_pixels /
            # max_pixels, which from_pretrained also hands the video processor) cannot resize them.
            "videos_kwargs": {
                "size": {
                    "shortest_edge": min(f.width * f.height for v in videos for f in v.frames),
                    "longest_edge": max(f.width * f.height for v in videos for f in v.frames),
                }
            },
        }

    def prepare(self, requests: Sequence[Request]) -> PreparedBatch:
        """Chat template and processor for a batch (CPU tensors, left-padded): everything before the
        model call. Safe to run in a worker thread while another batch generates."""
        if not self.loaded:
            self.load()
        gen = requests[0].generation
        if any(r.generation != gen for r in requests):
            raise EvalkitError("a batch mixes generation parameters; the runner must not do that")
        texts = [self.render_prompt(r) for r in requests]
        images = [img for r in requests for img in r.images]
        kwargs: dict[str, Any] = {"text": texts, "padding": True, "return_tensors": "pt"}
        if images:
            kwargs["images"] = images
        kwargs.update(self._video_kwargs(requests))
        with self._tokenizer_lock:  # the fast tokenizer is not safe for concurrent use
            inputs = self.processor(**kwargs)
        sizes = input_image_sizes(requests, inputs, getattr(self.processor, "image_processor", None))
        return PreparedBatch(requests=list(requests), texts=texts, inputs=inputs, image_sizes=sizes)

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """Batched greedy (or configured) generation with left padding."""
        return self.generate_prepared(self.prepare(requests))

    def generate_prepared(self, prepared: PreparedBatch) -> list[Response]:
        """Generate for a batch made by :meth:`prepare` and decode the answers."""
        import torch

        if not self.loaded:
            self.load()
        requests, texts = prepared.requests, prepared.texts
        inputs = prepared.inputs.to(self.device)
        gen = requests[0].generation
        gen_kwargs: dict[str, Any] = {"max_new_tokens": gen.max_new_tokens}
        if gen.min_new_tokens:
            gen_kwargs["min_new_tokens"] = gen.min_new_tokens
        if gen.greedy:
            gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            gen_kwargs.update(do_sample=True, temperature=gen.temperature, top_p=gen.top_p, top_k=gen.top_k)
        if gen.repetition_penalty:
            gen_kwargs["repetition_penalty"] = gen.repetition_penalty
        tok = self.processor.tokenizer
        if tok.pad_token_id is not None:
            gen_kwargs["pad_token_id"] = tok.pad_token_id
        with torch.inference_mode():
            out = self.model.generate(**inputs, **gen_kwargs)
        prompt_len = inputs["input_ids"].shape[1]
        new_tokens = self.generated_tokens(out, prompt_len)
        with self._tokenizer_lock:
            decoded = self.processor.batch_decode(
                new_tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False
            )
        end_ids = self._end_token_ids()
        pad = tok.pad_token_id if tok.pad_token_id is not None else -1
        responses = []
        mask = inputs.get("attention_mask")
        for i, text in enumerate(decoded):
            n_in = int(mask[i].sum()) if mask is not None else prompt_len
            row = new_tokens[i].tolist()
            n_out = sum(1 for t in row if t != pad)
            stopped = False
            for stop in gen.stop:
                if stop in text:
                    text, stopped = text[: text.index(stop)], True
            truncated = (
                not stopped
                and n_out >= gen.max_new_tokens
                and not self._ended(row, end_ids, gen.max_new_tokens)
            )
            extra: dict[str, Any] = {
                "truncated": truncated,
                "finish_reason": "length" if truncated else "stop",
            }
            if prepared.image_sizes is not None and prepared.image_sizes[i] is not None:
                extra[INPUT_IMAGE_SIZES] = prepared.image_sizes[i]
            responses.append(
                Response(
                    text=text.strip(), prompt=texts[i], input_tokens=n_in, output_tokens=n_out, extra=extra
                )
            )
        return responses

    @property
    def is_encoder_decoder(self) -> bool:
        """True for encoder-decoder checkpoints (Florence-2, Pix2Struct, UDOP, T5-style)."""
        return bool(getattr(getattr(self.model, "config", None), "is_encoder_decoder", False))

    def generated_tokens(self, out: Any, prompt_len: int) -> Any:
        """The answer tokens of ``generate``'s output: all of it, minus the decoder start token,
        for an encoder-decoder model; what follows the (padded) prompt for a decoder-only one."""
        if self.is_encoder_decoder:
            return out[:, 1:]
        return out[:, prompt_len:]

    def _ended(self, row: list[int], end_ids: set[int], limit: int) -> bool:
        """True when the model itself ended the answer with an end token (not counting the one that
        ``forced_eos_token_id`` — BART, Florence-2 — puts in the last slot when the limit is hit)."""
        forced = getattr(getattr(self.model, "generation_config", None), "forced_eos_token_id", None)
        if forced is not None and len(row) >= limit and row[limit - 1] == forced:
            row = row[: limit - 1]
        return any(t in end_ids for t in row)

    def _end_token_ids(self) -> set[int]:
        """The ids that end generation (the generation config's ``eos_token_id``, one or many)."""
        eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        if eos is None:
            eos = getattr(self.processor.tokenizer, "eos_token_id", None)
        if eos is None:
            return set()
        return {int(e) for e in (eos if isinstance(eos, list | tuple) else [eos])}

    def close(self) -> None:
        """Drop the weights."""
        self.model = None
        self.loaded = False

    #: likelihood-ranked choices: one left-padded forward pass per batch (evalkit.models.choice_logprobs)
    supports_choice_logprobs = True

    def score_choices(self, requests: Sequence[Request]) -> list[Response]:
        """Log-likelihood of each candidate continuation (see :mod:`evalkit.models.choice_logprobs`)."""
        from evalkit.models.choice_logprobs import hf_score_choices

        return hf_score_choices(self, requests)

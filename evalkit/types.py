"""The data that flows one way through evalkit: Sample -> Request -> Response -> Record.

* :class:`Sample` — one evaluation item as the dataset gives it (id, target, metadata). Built by a
  Task without decoding images, so listing a benchmark is cheap.
* :class:`Request` — what a model needs, nothing more: chat messages (text, images, video frames)
  and generation parameters. Model-agnostic; its :meth:`Request.fingerprint` is a content hash
  (computed once; pixels hashed with XXH3-128, see :data:`PIXEL_DIGEST`).
* :class:`Response` — what a backend returns: text, token usage, timing. Never scored by a model.
* :class:`Record` — the unit written durably, cached, resumed, merged, re-scored and reported
  (see docs/results-contract.md).

This module imports nothing heavy (no torch, no transformers); PIL is imported lazily.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

ErrorType = Literal["input", "model", "score"]


@dataclass(frozen=True)
class Sample:
    """One evaluation item.

    Attributes:
        id: the dataset's own id (``questionId`` for DocVQA), as a string.
        index: the row index in the loaded dataset (several samples may share a row, e.g. MTVQA).
        target: gold answer(s) as the dataset gives them; ``None`` for test splits without answers.
        metadata: JSON-serialisable facts used for breakdowns (language, duration, subset...).
    """

    id: str
    index: int
    target: Any = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: set when the row is unusable before any request is built (e.g. undecodable id bytes)
    error: str | None = None


@dataclass(frozen=True)
class TextPart:
    """A piece of text inside a chat message."""

    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True)
class ImagePart:
    """A decoded RGB image inside a chat message (passed to the processor exactly once, never re-encoded)."""

    image: Image
    type: Literal["image"] = "image"


@dataclass(frozen=True)
class VideoPart:
    """Sampled video frames (RGB) with their timestamps in seconds, as one video input."""

    frames: tuple[Image, ...]
    timestamps: tuple[float, ...]
    fps: float = 2.0
    type: Literal["video"] = "video"


ContentPart = TextPart | ImagePart | VideoPart


@dataclass(frozen=True)
class Message:
    """One chat turn: a role and an ordered list of content parts."""

    role: Literal["system", "user", "assistant"]
    content: tuple[ContentPart, ...]


@dataclass(frozen=True)
class GenerationParams:
    """Decoding parameters. ``temperature == 0`` means greedy decoding (the default everywhere)."""

    max_new_tokens: int = 32
    min_new_tokens: int | None = None
    temperature: float = 0.0
    top_p: float | None = None
    top_k: int | None = None
    repetition_penalty: float | None = None
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        """True when decoding is deterministic (temperature 0)."""
        return self.temperature == 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, ``None`` fields dropped."""
        out = {k: v for k, v in asdict(self).items() if v is not None and v != ()}
        if self.stop:
            out["stop"] = list(self.stop)
        return out


#: the digest of decoded pixels: xxHash's XXH3, 128 bits (a non-cryptographic hash, ~10x faster
#: than sha256 over a page's pixel buffer; collisions need 2^64 images). Changing it changes every
#: request fingerprint, so the response cache key carries a version (``cache.CACHE_KEY_VERSION``).
PIXEL_DIGEST = "xxh3_128"


def image_digest(image: Image) -> str:
    """Content hash of decoded pixels (mode, size and raw bytes): stable across storage formats.

    Computed once per image object (kept on the image: requests never modify their images), so an
    image shared by several questions, or a request fingerprinted again, is hashed only once."""
    cached = getattr(image, "_evalkit_digest", None)
    if cached is not None:
        return cached
    import xxhash

    h = xxhash.xxh3_128()
    h.update(f"{image.mode}:{image.size[0]}x{image.size[1]}:".encode())
    h.update(image.tobytes())
    digest = h.hexdigest()
    try:
        image._evalkit_digest = digest  # type: ignore[attr-defined]
    except AttributeError:  # pragma: no cover - an image type that refuses attributes
        pass
    return digest


@dataclass(frozen=True)
class Request:
    """What a model needs to answer one sample.

    Attributes:
        sample_id: the id of the sample this request belongs to.
        messages: the chat conversation (usually one user turn with images/video and text).
        generation: decoding parameters.
        task: name of the task that built it (for logs only; not part of the fingerprint).
    """

    sample_id: str
    messages: tuple[Message, ...]
    generation: GenerationParams
    task: str = ""
    #: ``"generate"`` (answer text) or ``"choice_logprobs"`` (rank :attr:`candidates` by their
    #: log-likelihood as continuations of the messages; see evalkit.models.choice_logprobs)
    kind: str = "generate"
    #: the candidate continuations of a ``choice_logprobs`` request, in option order
    candidates: tuple[str, ...] = ()

    @property
    def images(self) -> list[Image]:
        """All images of the request, in message order."""
        return [p.image for m in self.messages for p in m.content if isinstance(p, ImagePart)]

    @property
    def videos(self) -> list[VideoPart]:
        """All video inputs of the request, in message order."""
        return [p for m in self.messages for p in m.content if isinstance(p, VideoPart)]

    @property
    def text(self) -> str:
        """All text parts joined by newlines (a model-independent view of the prompt)."""
        return "\n".join(p.text for m in self.messages for p in m.content if isinstance(p, TextPart))

    def canonical(self) -> dict[str, Any]:
        """A JSON-serialisable description of the request content (images as pixel digests)."""

        def part(p: ContentPart) -> dict[str, Any]:
            if isinstance(p, TextPart):
                return {"type": "text", "text": p.text}
            if isinstance(p, ImagePart):
                return {"type": "image", PIXEL_DIGEST: image_digest(p.image)}
            return {
                "type": "video",
                "fps": p.fps,
                "timestamps": list(p.timestamps),
                PIXEL_DIGEST: [image_digest(f) for f in p.frames],
            }

        out: dict[str, Any] = {
            "messages": [{"role": m.role, "content": [part(p) for p in m.content]} for m in self.messages],
            "generation": self.generation.to_dict(),
        }
        if self.kind != "generate":  # generate requests keep their fingerprints (and cache keys)
            out["kind"] = self.kind
            out["candidates"] = list(self.candidates)
        return out

    def fingerprint(self) -> str:
        """sha256 of the canonical request (content + generation parameters).

        Computed once per request object and carried with it (the cache key and the record use the
        same value): the request is frozen, so its content cannot change afterwards."""
        cached = self.__dict__.get("_fingerprint")
        if cached is None:
            blob = json.dumps(self.canonical(), sort_keys=True, ensure_ascii=False)
            cached = hashlib.sha256(blob.encode()).hexdigest()
            object.__setattr__(self, "_fingerprint", cached)
        return cached


#: ``Response.extra`` / ``Record.extra`` key: ``[width, height]`` of each image of the request (in
#: message order; video frames not included) as the model was given it — after evalkit's and the
#: backend's resizing. Set by the backends that know it (hf and vLLM with a Qwen2-VL-style
#: processor, the API client's ``max_image_pixels`` downscale); absent when unknown.
INPUT_IMAGE_SIZES = "input_image_sizes"


@dataclass(frozen=True)
class ModelInput:
    """What the backend reported about the input it gave the model for one request (read back from
    the record, so ``evalkit score`` sees what the run saw)."""

    #: ``(width, height)`` of each image as the model was given it; None when not reported
    image_sizes: tuple[tuple[int, int], ...] | None = None

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> ModelInput:
        """From a record's (or response's) ``extra``; a malformed value counts as not reported."""
        raw = extra.get(INPUT_IMAGE_SIZES)
        if not isinstance(raw, list | tuple):
            return cls()
        sizes: list[tuple[int, int]] = []
        for item in raw:
            if (
                not isinstance(item, list | tuple)
                or len(item) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in item)
            ):
                return cls()
            sizes.append((int(item[0]), int(item[1])))
        return cls(tuple(sizes))

    def image_size(self, index: int = 0) -> tuple[int, int] | None:
        """The size the model was given image ``index`` at (None when not reported)."""
        if self.image_sizes is None or not 0 <= index < len(self.image_sizes):
            return None
        return self.image_sizes[index]


@dataclass
class Response:
    """A backend's answer to one request.

    ``error`` is set (and ``text`` empty) when the backend failed for this request only; the runner
    records it per sample and retries it on resume. ``extra`` carries what else the backend knows
    (``finish_reason``, ``truncated``, :data:`INPUT_IMAGE_SIZES`...).
    """

    text: str
    prompt: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_s: float | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def usage(self) -> dict[str, int]:
        """Token usage as a dict (only the known counts)."""
        out: dict[str, int] = {}
        if self.input_tokens is not None:
            out["input_tokens"] = self.input_tokens
        if self.output_tokens is not None:
            out["output_tokens"] = self.output_tokens
        return out


@dataclass
class Record:
    """One finished sample: the unit that is stored, cached, resumed, merged, re-scored and reported."""

    id: str
    prompt: str | None
    prediction: str | None
    target: Any
    scores: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    error_type: ErrorType | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    fingerprint: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    #: identity hash of the model that produced the prediction (None: no model involved)
    model_identity: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON object written to ``samples/<task>.jsonl`` (see the results contract)."""
        out: dict[str, Any] = {
            "id": self.id,
            "prompt": self.prompt,
            "prediction": self.prediction,
            "target": self.target,
            "scores": self.scores,
            "error": self.error,
            "error_type": self.error_type,
            "metadata": self.metadata,
            "fingerprint": self.fingerprint,
            "model_identity": self.model_identity,
            "usage": self.usage,
            "cached": self.cached,
        }
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Record:
        """Inverse of :meth:`to_json`; unknown keys are kept in ``extra``."""
        known = {
            "id", "prompt", "prediction", "target", "scores", "error", "error_type",
            "metadata", "fingerprint", "model_identity", "usage", "cached",
        }  # fmt: skip
        return cls(
            id=str(obj["id"]),
            prompt=obj.get("prompt"),
            prediction=obj.get("prediction"),
            target=obj.get("target"),
            scores=dict(obj.get("scores") or {}),
            error=obj.get("error"),
            error_type=obj.get("error_type"),
            metadata=dict(obj.get("metadata") or {}),
            fingerprint=obj.get("fingerprint"),
            model_identity=obj.get("model_identity"),
            usage=dict(obj.get("usage") or {}),
            cached=bool(obj.get("cached", False)),
            extra={k: v for k, v in obj.items() if k not in known},
        )


def user_message(*parts: ContentPart | str) -> Message:
    """Convenience: a user turn from parts, strings becoming :class:`TextPart`."""
    return Message("user", tuple(TextPart(p) if isinstance(p, str) else p for p in parts))


def _safe_text(text: str) -> str:
    """``text`` with anything that is not encodable as UTF-8 (lone surrogates) escaped."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def json_safe(value: Any) -> Any:
    """A JSON- and UTF-8-safe copy of ``value``: bytes and undecodable text become escaped text,
    unknown objects their ``str``. Used so that hostile data can always be written to a record."""
    if isinstance(value, str):
        return _safe_text(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, Mapping):
        return {
            json_safe(str(k)) if not isinstance(k, str) else _safe_text(k): json_safe(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return _safe_text(str(value))


def unsafe_json_reason(value: Any) -> str | None:
    """Why ``value`` cannot be stored as JSON text (raw bytes, undecodable text), or None."""
    if isinstance(value, bytes | bytearray):
        return (
            "holds raw bytes, not text" if _bytes_are_text(value) else "holds bytes that are not valid UTF-8"
        )
    if isinstance(value, str):
        return None if _safe_text(value) is value else "holds text that is not valid UTF-8"
    if isinstance(value, Mapping):
        return next((r for v in value.values() if (r := unsafe_json_reason(v))), None)
    if isinstance(value, list | tuple):
        return next((r for v in value if (r := unsafe_json_reason(v))), None)
    return None


def _bytes_are_text(value: bytes | bytearray) -> bool:
    try:
        bytes(value).decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def sample_id(raw: Any, index: int) -> tuple[str, str | None]:
    """``(id, problem)`` for a dataset id value: text as is; ``None`` becomes ``row-<index>``; raw
    bytes are decoded when they are UTF-8, else escaped and suffixed with ``#row-<index>`` (unique)
    and reported as a problem, so that sample becomes an input-error record."""
    if raw is None:
        return f"row-{index}", None
    if isinstance(raw, bytes | bytearray):
        if _bytes_are_text(raw):
            return bytes(raw).decode("utf-8"), None
        return f"{json_safe(raw)}#row-{index}", "the sample id is not valid UTF-8 text"
    text = str(raw)
    safe = _safe_text(text)
    if safe is not text:
        return f"{safe}#row-{index}", "the sample id is not valid UTF-8 text"
    return text, None


def as_str_list(value: Any) -> list[str]:
    """Normalise a target that may be a string, a list or ``None`` into a list of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence):
        return [str(v) for v in value]
    return [str(value)]

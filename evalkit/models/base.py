"""The Model protocol: a backend turns a batch of Requests into Responses.

Backends are looked up by the ``backend`` key of the model config (``hf``, ``vllm``, ``openai``,
``fake`` ...) and imported lazily, so listing models or serving everything from the response cache
never imports torch or transformers.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from evalkit.errors import UsageError
from evalkit.types import Request, Response

#: backend name -> "module:Class". Third-party backends can be added with :func:`register_backend`.
BACKENDS: dict[str, str] = {
    "hf": "evalkit.models.hf:HFModel",
    "vllm": "evalkit.models.vllm:VLLMModel",
    "openai": "evalkit.models.openai_api:OpenAIModel",
    "fake": "evalkit.models.fake:FakeModel",
}


class Model(ABC):
    """A model backend.

    Life cycle: construct from config (cheap, no weights) -> :meth:`identity` (cheap; used as the
    response-cache key) -> :meth:`load` (heavy, called lazily by the runner only when at least one
    request is not cached) -> :meth:`generate` (any number of times) -> :meth:`close`.

    ``generate(requests)`` is ``generate_prepared(prepare(requests))``: a backend that splits the
    two (the transformers backend) lets the runner overlap the next batch's preprocessing with the
    current batch's generation; the others implement :meth:`generate` only.
    """

    #: how many requests the runner should hand over at once (the batch size or API concurrency)
    preferred_batch_size: int = 1
    #: requests the runner hands over in one :meth:`generate` call when the backend batches them
    #: itself (vLLM's continuous batching, an HTTP client's concurrency): the runner passes the
    #: whole window of pending requests (``window_batches * batch_size``), not one batch at a time.
    #: False: one batch of ``preferred_batch_size`` per call (the transformers backend).
    takes_windows: bool = False
    #: heavy libraries :meth:`load` imports (``"module"`` or ``"module:attribute"``), imported in
    #: the background while the run starts up (:mod:`evalkit.warmup`); none by default
    warm_modules: tuple[str, ...] = ()
    #: whether the runner may answer a batch that raised by re-sending its requests one by one.
    #: False for paid APIs (the API backend): the batch's requests may already have been served
    #: and charged, so the runner turns the exception into error records for that batch instead.
    split_failed_batches: bool = True
    #: whether :meth:`score_choices` is implemented (``kind="choice_logprobs"`` requests); the
    #: runner refuses such a task before any request when it is False
    supports_choice_logprobs: bool = False

    def __init__(self, config: Mapping[str, Any]):
        self.config = dict(config)
        self.name: str = str(self.config.get("name") or self.config.get("pretrained") or "model")
        self.loaded = False

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """Everything that determines this backend's outputs for a given request, JSON-serialisable.

        Must be computable without loading weights (e.g. hub revision or a hash of the weight files,
        dtype, pixel budget, chat template). Used to key the response cache and recorded in results.
        """

    def identity_hash(self) -> str:
        """sha256 of :meth:`identity` (the model part of every cache key)."""
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()

    def resolves_cheaply(self) -> bool:
        """False when :meth:`identity` would first have to make the weights (the bundled tiny model
        on its first use is built and trained): the run then opens the dataset before that, and
        does not load ahead."""
        return True

    def load(self) -> None:
        """Load weights/clients. Idempotent."""
        self.loaded = True

    @abstractmethod
    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """Answer a batch of requests, one Response per request, in order.

        A failure that concerns only some requests is returned as ``Response(text="", error=...)``
        for those requests; an exception means the whole batch failed, and an
        :class:`~evalkit.errors.BackendFatalError` stops the run (no request can succeed).
        ``Response.extra`` carries ``finish_reason`` (where the backend knows it) and ``truncated``
        (True when generation stopped at ``max_new_tokens``).
        """

    def computes_on_host(self) -> bool:
        """Whether generation runs on this machine's CPU cores (a transformers model on ``cpu``).

        The runner then builds requests and preprocesses batches in the main thread instead of
        ahead in worker threads (``runner.workers`` / ``runner.prefetch_batches`` left at null):
        torch already keeps every core busy, and a worker thread stealing a core stalls each of its
        parallel operations, so the overlap costs more than it saves. GPU and remote backends leave
        the CPU idle while they generate, which the workers use."""
        return False

    def prepare(self, requests: Sequence[Request]) -> Any:
        """Backend preprocessing of a batch — chat template, processor, tensors — without any model
        call; the result goes to :meth:`generate_prepared`.

        The runner calls it in a worker thread for the next batch while the current one generates,
        so it must not touch the model's weights nor state that :meth:`generate_prepared` changes.
        Only called after :meth:`load`. Default: the requests themselves (nothing to prepare)."""
        return list(requests)

    def fit_request(self, request: Request) -> Request:
        """The request as this backend's preprocessing would see it, computed when the request is
        built (in the runner's request-building step, off the generation path).

        The transformers backend resizes images to the processor's pixel budget here, with the
        processor's own resize (bit-identical model input; see :mod:`evalkit.models.image_fit`),
        so requests in flight hold fitted images rather than decoded pages. Must not change what
        the model is given. Default: the request unchanged."""
        return request

    def generate_prepared(self, prepared: Any) -> list[Response]:
        """Generate for the output of :meth:`prepare` (same contract as :meth:`generate`).

        Default: :meth:`generate` on the requests, for backends that do not split the two steps."""
        return self.generate(prepared)

    def render_prompt(self, request: Request) -> str:
        """The prompt text exactly as this model sees it (chat template applied where there is one)."""
        return request.text

    def score_choices(self, requests: Sequence[Request]) -> list[Response]:
        """Rank the candidates of ``kind="choice_logprobs"`` requests by log-likelihood.

        One Response per request: ``text`` = the candidate with the highest length-normalised
        log-probability, ``extra["logprobs"]`` = ``[{"candidate", "sum", "mean", "n_tokens"}, ...]``
        in candidate order. Backends without it raise :class:`~evalkit.errors.UsageError`."""
        backend = str(self.config.get("backend") or type(self).__name__)
        raise UsageError(
            f"{backend} backend does not support likelihood-ranked choices (kind=choice_logprobs); "
            "use the hf or vllm backend or the task's *_gen variant"
        )

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release resources (GPU memory, HTTP sessions)."""


def register_backend(name: str, target: str) -> None:
    """Register a backend class as ``"package.module:Class"`` under ``name``."""
    BACKENDS[name] = target


def backend_class(backend: str) -> type[Model]:
    """The class registered for ``backend`` (its module is imported on first use)."""
    target = BACKENDS.get(backend)
    if target is None:
        raise UsageError(f"unknown model backend {backend!r}; available: {', '.join(sorted(BACKENDS))}")
    module_name, _, cls_name = target.partition(":")
    return getattr(importlib.import_module(module_name), cls_name)


def build_model(config: Mapping[str, Any]) -> Model:
    """Instantiate the backend named by ``config["backend"]`` (imports it lazily)."""
    return backend_class(str(config.get("backend", "hf")))(config)

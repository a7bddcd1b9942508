"""Fit request images to the processor's pixel budget when the request is built, bit-exactly.

A Qwen2-VL-style image processor resizes every image to ``smart_resize(h, w)`` (multiples of
``patch_size * merge_size`` inside ``[min_pixels, max_pixels]``) before it patchifies it. Doing that
resize when the request is built — in the runner's request-building step, with the processor's own
``resize`` method — instead of inside the processor call changes no pixel the model sees, and it
means:

* a request holds the image at the size the model uses, not the decoded page (a 1700 x 2200 scan is
  11 MB of RGB; at the tiny model's 64-patch budget it is 150 kB), so the memory of the batches in
  flight no longer depends on how large the dataset's pages are;
* the pixel digest of the request fingerprint hashes the fitted pixels (less to hash);
* the processor call in :meth:`~evalkit.models.hf.HFModel.prepare` has nothing left to resize.

Exactness is checked, not assumed: the first image the fitter would change is run through the
processor both ways, and unless ``pixel_values`` and ``image_grid_thw`` are identical the fitter
switches itself off for the run (a warning says so) and requests keep their decoded images. A
processor this module does not recognise (no ``patch_size``/``merge_size``/``min-max`` size, resize
off) is left alone. An image already at a fitted size is passed through untouched, so fitting is
idempotent.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import threading
from typing import Any

from evalkit.errors import InputError
from evalkit.types import ImagePart, Message, Request

log = logging.getLogger(__name__)

_UNCHECKED, _EXACT, _OFF = "unchecked", "exact", "off"


class ProcessorImageFitter:
    """Resizes images exactly as ``image_processor`` would, ahead of the processor call.

    Thread-safe: request-building workers call :meth:`fit_request` concurrently; the one-time
    exactness check runs under a lock before any fitted image is handed out.
    """

    def __init__(self, image_processor: Any):
        self.image_processor = image_processor
        self._state = _UNCHECKED
        self._lock = threading.Lock()
        self.reason = ""

    @classmethod
    def for_processor(cls, processor: Any) -> ProcessorImageFitter | None:
        """A fitter for ``processor`` (a multimodal processor or a bare image processor), or None
        when it is not a Qwen2-VL-style dynamic-resolution processor this module can mirror."""
        ip = getattr(processor, "image_processor", processor)
        size = getattr(ip, "size", None)
        if not getattr(ip, "do_resize", True):
            return None
        if not isinstance(getattr(ip, "patch_size", None), int) or not isinstance(
            getattr(ip, "merge_size", None), int
        ):
            return None
        if not (getattr(size, "shortest_edge", None) and getattr(size, "longest_edge", None)):
            return None
        resize = getattr(ip, "resize", None)
        if resize is None or "factor" not in inspect.signature(resize).parameters:
            return None
        return cls(ip)

    @property
    def active(self) -> bool:
        """False once the exactness check failed (requests then keep their decoded images)."""
        return self._state != _OFF

    # ------------------------------------------------------------------ fitting
    def _resize(self, image: Any) -> Any:
        """The processor's own resize of one RGB PIL image; a PIL image of the fitted size."""
        import torch
        from PIL import Image

        ip = self.image_processor
        # a channels-last view, as the processor makes of a PIL image itself (not a copy: the
        # resize of a uint8 channels-last image is the fast path, 4x quicker than a planar one)
        tensor = _rgb_tensor(image).permute(2, 0, 1)
        out = ip.resize(
            images=tensor, size=ip.size, resample=ip.resample, factor=ip.patch_size * ip.merge_size
        )
        if out.dtype != torch.uint8:  # the processor resizes uint8 in, uint8 out; anything else: no
            raise TypeError(f"processor resize returned {out.dtype}, not uint8")
        return Image.fromarray(out.permute(1, 2, 0).contiguous().numpy(), mode="RGB")  # no copy: HWC

    def _target_size(self, image: Any) -> tuple[int, int]:
        """(width, height) the processor would resize ``image`` to."""
        return fitted_size(image.size, self.image_processor)

    def input_size(
        self, size: tuple[int, int], min_pixels: int | None = None, max_pixels: int | None = None
    ) -> tuple[int, int]:
        """``(width, height)`` the model is given an image of ``size`` at: the processor's resize,
        with the pixel budget overridden by ``min_pixels``/``max_pixels`` when given (as vLLM's
        ``mm_processor_kwargs`` do)."""
        return fitted_size(size, self.image_processor, min_pixels, max_pixels)

    def _same_model_input(self, original: Any, fitted: Any) -> bool:
        import torch

        a = self.image_processor(images=[original], return_tensors="pt")
        b = self.image_processor(images=[fitted], return_tensors="pt")
        return all(torch.equal(a[k], b[k]) for k in ("pixel_values", "image_grid_thw"))

    def fit_image(self, image: Any) -> Any:
        """``image`` resized to its fitted size (the same object when it is already there, when it
        is not an RGB image, or when the fitter is off). Kept on the source image, so an image
        shared by several requests is fitted once.

        Raises:
            InputError: the processor refuses the image's size (``smart_resize``: an aspect ratio
                of 200 or more), for every batch it would be in; recorded as the sample's input
                error instead of failing its batch at each attempt.
        """
        if self._state == _OFF or getattr(image, "mode", None) != "RGB":
            return image
        cached = getattr(image, "_evalkit_fitted", None)
        if cached is not None and cached[0] is self:
            return cached[1]
        try:
            target = self._target_size(image)
        except ValueError as exc:  # smart_resize refuses the size: so would the processor, always
            width, height = image.size
            raise InputError(f"image {width}x{height} is refused by the model's processor: {exc}") from None
        try:
            if target == image.size:
                return image
            fitted = self._resize(image)
        except Exception as exc:  # noqa: BLE001 - the processor call in prepare reports real problems
            log.debug("image not fitted ahead (%s); the processor resizes it", exc)
            return image
        if self._state == _UNCHECKED:
            with self._lock:
                if self._state == _UNCHECKED:
                    self._state = _EXACT if self._check(image, fitted) else _OFF
            if self._state == _OFF:
                return image
        try:
            image._evalkit_fitted = (self, fitted)  # type: ignore[attr-defined]
        except AttributeError:  # pragma: no cover - PIL images accept attributes
            pass
        return fitted

    def _check(self, original: Any, fitted: Any) -> bool:
        try:
            same = self._same_model_input(original, fitted)
        except Exception as exc:  # noqa: BLE001
            same, self.reason = False, f"check failed: {type(exc).__name__}: {exc}"
        if not same:
            self.reason = self.reason or "the processor's output differs for a pre-resized image"
            log.warning(
                "images are not resized ahead of the processor (%s); requests keep decoded images",
                self.reason,
            )
        return same

    def fit_request(self, request: Request) -> Request:
        """``request`` with every image part fitted (the same object when nothing changes)."""
        if self._state == _OFF or not request.images:
            return request
        changed = False
        messages: list[Message] = []
        for message in request.messages:
            parts = []
            for part in message.content:
                if isinstance(part, ImagePart):
                    fitted = self.fit_image(part.image)
                    if fitted is not part.image:
                        part, changed = dataclasses.replace(part, image=fitted), True
                parts.append(part)
            messages.append(dataclasses.replace(message, content=tuple(parts)))
        if not changed:
            return request
        return dataclasses.replace(request, messages=tuple(messages))


def fitted_size(
    size: tuple[int, int], image_processor: Any, min_pixels: int | None = None, max_pixels: int | None = None
) -> tuple[int, int]:
    """``(width, height)`` a Qwen2-VL-style ``image_processor`` resizes an image of ``size`` to
    (``smart_resize``: multiples of ``patch_size * merge_size`` inside the pixel budget, its own or
    ``min_pixels``/``max_pixels``)."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    ip = image_processor
    width, height = size
    h, w = smart_resize(
        height,
        width,
        factor=ip.patch_size * ip.merge_size,
        min_pixels=int(min_pixels) if min_pixels is not None else ip.size.shortest_edge,
        max_pixels=int(max_pixels) if max_pixels is not None else ip.size.longest_edge,
    )
    return w, h


def _rgb_tensor(image: Any) -> Any:
    """``image`` (RGB PIL) as an H x W x 3 uint8 tensor over Pillow's exported bytes, not a copy
    of them: a second page-size buffer costs as much as the export itself (its pages are touched
    fresh each time). The bytes are read-only, which torch warns about: the resize only reads.
    ``warnings.catch_warnings`` swaps process-wide state, so build threads take turns in it (for
    the instant ``from_numpy`` takes: no pixels are touched)."""
    import warnings

    import numpy as np
    import torch

    pixels = np.asarray(image)
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not writable", category=UserWarning)
        return torch.from_numpy(pixels)


_WARNINGS_LOCK = threading.Lock()

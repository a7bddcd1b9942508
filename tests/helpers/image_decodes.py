"""Count the images decoded, by Pillow or by libpng's fast path (to check that a path reads sizes
from headers only)."""

from __future__ import annotations

import imagecodecs
import pytest
from PIL import ImageFile


def count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that gets one entry per pixel decode (an ``ImageFile.load`` call, or a libpng
    ``imagecodecs.png_decode`` call for a plain PNG) from now on, for the rest of the test."""
    calls: list[int] = []
    real = ImageFile.ImageFile.load

    def counting(self):  # noqa: ANN001, ANN202
        calls.append(1)
        return real(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting)
    count_png_decodes(monkeypatch, calls)
    return calls


def count_png_decodes(monkeypatch: pytest.MonkeyPatch, calls: list[int] | None = None) -> list[int]:
    """``calls`` (a new list by default) gets one entry per libpng decode
    (``imagecodecs.png_decode``, the fast path of plain PNGs) for the rest of the test."""
    calls = [] if calls is None else calls
    real = imagecodecs.png_decode

    def counting(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(imagecodecs, "png_decode", counting)
    return calls

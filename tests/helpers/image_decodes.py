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

    real_png = imagecodecs.png_decode

    def counting_png(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        return real_png(*args, **kwargs)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting)
    monkeypatch.setattr(imagecodecs, "png_decode", counting_png)
    return calls

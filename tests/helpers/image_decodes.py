"""Count the images Pillow decodes (to check that a path reads sizes from headers only)."""

from __future__ import annotations

import pytest
from PIL import ImageFile


def count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that gets one entry per ``ImageFile.load`` call (a pixel decode) from now on, for the
    rest of the test."""
    calls: list[int] = []
    real = ImageFile.ImageFile.load

    def counting(self):  # noqa: ANN001, ANN202
        calls.append(1)
        return real(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting)
    return calls

"""``image_size`` reads the size ``load_image`` would give, without decoding pixels where exact."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import pytest
from PIL import Image, PngImagePlugin

from evalkit.errors import InputError
from evalkit.media.image import image_size, load_image
from tests.helpers.image_decodes import count_decodes

ORIENTATIONS = (None, 1, 2, 3, 5, 6, 7, 8)


def _encode(fmt: str, orientation: int | None, size=(6, 3)) -> bytes:
    img = Image.new("RGB", size, (10, 200, 30))
    buf = io.BytesIO()
    kwargs = {}
    if orientation is not None:
        exif = img.getexif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_size_equals_the_decoded_size(fmt, orientation):
    data = _encode(fmt, orientation)
    assert image_size(data) == load_image(data).size
    if orientation in (5, 6, 7, 8):
        assert image_size(data) == (3, 6)  # the reference really turned: the test can fail


@pytest.mark.parametrize("fmt", ["BMP", "GIF"])
def test_other_formats_decode_and_agree(fmt):
    data = _encode(fmt, None)
    assert image_size(data) == load_image(data).size == (6, 3)


def test_tiff_follows_the_decoder():
    """Once decoded, Pillow reports no orientation for a TIFF (load_image, like HF datasets,
    applies none): the header's orientation must not be applied either."""
    data = _encode("TIFF", 6)
    assert Image.open(io.BytesIO(data)).getexif().get(0x0112) == 6
    assert image_size(data) == load_image(data).size


@pytest.mark.parametrize("fmt,orientation", [("JPEG", 6), ("JPEG", None), ("PNG", None), ("WEBP", 8)])
def test_no_pixel_is_decoded(monkeypatch, fmt, orientation):
    data = _encode(fmt, orientation, size=(40, 20))
    calls = count_decodes(monkeypatch)
    image_size(data)
    assert calls == []
    load_image(data)
    assert calls  # the counter sees a decode when there is one


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _move_exif_after_pixels(png: bytes) -> bytes:
    """The same PNG with its ``eXIf`` chunk moved behind ``IDAT`` (Pillow reads it only on load)."""
    pos, chunks = 8, []
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        chunks.append(png[pos : pos + 12 + length])
        pos += 12 + length
    exif = [c for c in chunks if c[4:8] == b"eXIf"]
    assert exif, "Pillow wrote no eXIf chunk"
    rest = [c for c in chunks if c[4:8] != b"eXIf"]
    return png[:8] + b"".join(rest[:-1]) + exif[0] + rest[-1]  # before IEND


@pytest.mark.parametrize("orientation", [6, 8, 3])
def test_png_orientation_after_the_pixels(orientation):
    late = _move_exif_after_pixels(_encode("PNG", orientation))
    assert "exif" not in Image.open(io.BytesIO(late)).info  # not in the header: the hard case
    assert image_size(late) == load_image(late).size


def test_png_xmp_orientation():
    img = Image.new("RGB", (6, 3))
    info = PngImagePlugin.PngInfo()
    xmp = '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description tiff:Orientation="6"/></x:xmpmeta>'
    info.add_itxt("XML:com.adobe.xmp", xmp)
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info)
    data = buf.getvalue()
    assert image_size(data) == load_image(data).size


def test_every_value_form(tmp_path):
    data = _encode("JPEG", 6)
    path = tmp_path / "page.jpg"
    path.write_bytes(data)
    forms = [data, {"bytes": data, "path": None}, {"bytes": None, "path": str(path)}, str(path),
             base64.b64encode(data).decode(), load_image(data)]  # fmt: skip
    assert {image_size(v) for v in forms} == {(3, 6)}


def test_bad_values_say_why(tmp_path):
    with pytest.raises(InputError):
        image_size(b"not an image")
    with pytest.raises(InputError, match="missing"):
        image_size(None)
    with pytest.raises(InputError, match="decompression bomb"):
        image_size(_encode("PNG", None, size=(200, 200)), max_pixels=100)

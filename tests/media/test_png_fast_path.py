"""Plain PNGs decode through libpng (``imagecodecs``) to exactly Pillow's pixels; every other PNG,
and every PNG libpng refuses, is Pillow's as before."""

from __future__ import annotations

import io
import struct
import zlib

import imagecodecs
import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from evalkit.errors import InputError
from evalkit.media import image as image_mod
from evalkit.media.image import load_image, plain_png_mode
from tests.helpers.image_decodes import count_png_decodes

RNG = np.random.default_rng(7)


def _png(arr: np.ndarray, mode: str, chunks=(), **save) -> bytes:
    info = PngImagePlugin.PngInfo()
    for kind, data in chunks:
        info.add(kind, data)
    buf = io.BytesIO()
    img = Image.fromarray(arr)
    if img.mode != mode:
        img = img.convert(mode)
    assert img.mode == mode
    img.save(buf, format="PNG", pnginfo=info, **save)
    return buf.getvalue()


def _page(h: int = 61, w: int = 83, channels: int = 3) -> np.ndarray:
    """Noise over smooth ramps: the encoder picks every filter type somewhere on it."""
    ramp = np.add.outer(np.arange(h), np.arange(w)).astype(np.int64)
    shape = (h, w) if channels == 1 else (h, w, channels)
    noise = RNG.integers(0, 40, shape)
    base = ramp if channels == 1 else ramp[..., None] * np.arange(1, channels + 1)
    return ((base + noise) % 256).astype(np.uint8)


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        out.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


def _assemble(chunks: list[tuple[bytes, bytes]]) -> bytes:
    body = b"".join(
        struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d) & 0xFFFFFFFF)
        for k, d in chunks
    )
    return b"\x89PNG\r\n\x1a\n" + body


def _split_idat(data: bytes, size: int) -> bytes:
    """The same PNG with its image data in ``size``-byte IDAT chunks (as libpng writers do)."""
    chunks = _chunks(data)
    stream = b"".join(d for k, d in chunks if k == b"IDAT")
    head = [c for c in chunks if c[0] not in (b"IDAT", b"IEND")]
    idats = [(b"IDAT", stream[i : i + size]) for i in range(0, len(stream), size)]
    return _assemble([*head, *idats, (b"IEND", b"")])


def _pillow(data: bytes, monkeypatch: pytest.MonkeyPatch):
    """``load_image`` with the fast path off: Pillow decodes (the reference)."""
    with monkeypatch.context() as m:
        m.setattr(image_mod, "_decode_plain_png", lambda img: None)
        return load_image(data)


@pytest.fixture
def libpng_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    return count_png_decodes(monkeypatch)


PLAIN = {
    "rgb": lambda: _png(_page(), "RGB"),
    "rgb_best_compression": lambda: _png(_page(), "RGB", compress_level=9),
    "rgb_no_compression": lambda: _png(_page(), "RGB", compress_level=0),
    "rgb_small_idat_chunks": lambda: _split_idat(_png(_page(200, 150), "RGB"), 997),
    "grey": lambda: _png(_page(channels=1), "L"),
    "grey_alpha": lambda: _png(_page(channels=2), "LA"),
    "rgba": lambda: _png(_page(channels=4), "RGBA"),
    "one_pixel": lambda: _png(_page(1, 1), "RGB"),
    "one_row": lambda: _png(_page(1, 300), "RGB"),
    "colour_chunks": lambda: _png(
        _page(),
        "RGB",
        [
            (b"gAMA", struct.pack(">I", 100000)),
            (b"sBIT", bytes([5, 6, 5])),
            (b"pHYs", struct.pack(">IIB", 3780, 3780, 1)),
            (b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000)),
            (b"tEXt", b"Title\0a page"),
        ],
    ),  # fmt: skip
    "icc_profile": lambda: _png(_page(), "RGB", icc_profile=b"\0" * 128),
    "one_frame_apng": lambda: _one_frame_apng(),
}


def _one_frame_apng() -> bytes:
    """An animated PNG of one frame (``acTL`` + ``fcTL`` before the image data): Pillow shows the
    image data, as libpng does."""
    chunks = _chunks(_png(_page(), "RGB"))
    actl = (b"acTL", struct.pack(">II", 1, 0))
    fctl = (b"fcTL", struct.pack(">IIIIIHHBB", 0, 83, 61, 0, 0, 1, 10, 0, 0))
    return _assemble([chunks[0], actl, fctl, *chunks[1:]])


def _two_frame_apng() -> bytes:
    """Frames after the first (``fdAT``, after the image data) are Pillow's business."""
    buf = io.BytesIO()
    first, second = Image.fromarray(_page()), Image.fromarray(_page())
    first.save(buf, format="PNG", save_all=True, append_images=[second])
    return buf.getvalue()


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_plain_pngs_decode_through_libpng_to_pillows_pixels(name, monkeypatch, libpng_calls):
    data = PLAIN[name]()
    assert plain_png_mode(data) is not None
    ours = load_image(data)
    assert libpng_calls == [1]  # the fast path really ran: the comparison below can fail
    ref = _pillow(data, monkeypatch)
    assert ours.mode == ref.mode == "RGB" and ours.size == ref.size
    assert ours.tobytes() == ref.tobytes()
    assert ours.info == ref.info


def test_alpha_is_composited_on_white_as_pillow_does(monkeypatch):
    """Half-transparent pixels: both decoders hand ``_to_rgb`` the same RGBA, so the composite on
    white is the same (and not the bare RGB channels)."""
    arr = _page(channels=4)
    arr[..., 3] = 128
    data = _png(arr, "RGBA")
    ours = np.asarray(load_image(data))
    assert np.array_equal(ours, np.asarray(_pillow(data, monkeypatch)))
    assert not np.array_equal(ours, arr[..., :3])


NOT_PLAIN = {
    "palette": lambda: _png(_page(channels=1), "P"),
    "palette_transparency": lambda: _png(_page(channels=1), "P", transparency=3),
    "rgb_transparency": lambda: _png(_page(), "RGB", transparency=(1, 2, 3)),
    "grey_transparency": lambda: _png(_page(channels=1), "L", transparency=9),
    "sixteen_bit": lambda: _png((_page(channels=1).astype(np.uint16) * 257), "I;16"),
    "one_bit": lambda: _png(_page(channels=1) > 100, "1"),
    "exif_orientation": lambda: _png(_page(), "RGB", exif=_exif(6)),
    "xmp_orientation": lambda: _png(
        _page(), "RGB", [(b"iTXt", b'XML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta tiff:Orientation="6"/>')]
    ),
    "text_after_the_pixels": lambda: _move_after_idat(_png(_page(), "RGB", [(b"tEXt", b"Comment\0late")])),
    "two_frame_apng": lambda: _two_frame_apng(),
}


def _exif(orientation: int) -> bytes:
    exif = Image.new("RGB", (1, 1)).getexif()
    exif[0x0112] = orientation
    return exif.tobytes()


def _move_after_idat(data: bytes) -> bytes:
    chunks = _chunks(data)
    text = [c for c in chunks if c[0] == b"tEXt"]
    rest = [c for c in chunks if c[0] != b"tEXt"]
    return _assemble([*rest[:-1], *text, rest[-1]])


@pytest.mark.parametrize("name", sorted(NOT_PLAIN))
def test_other_pngs_are_left_to_pillow(name, monkeypatch, libpng_calls):
    data = NOT_PLAIN[name]()
    assert plain_png_mode(data) is None
    ours = load_image(data)
    assert libpng_calls == []
    assert ours.tobytes() == _pillow(data, monkeypatch).tobytes()


def test_orientation_is_still_applied():
    data = NOT_PLAIN["exif_orientation"]()
    assert load_image(data).size == (61, 83)  # turned a quarter: the page is 83 wide, 61 high


def test_interlaced_and_unusual_headers_are_not_plain():
    data = PLAIN["rgb"]()
    ihdr = bytearray(data[:33])
    for offset, value in ((28, 1), (24, 16), (24, 4), (25, 3), (26, 1), (27, 1)):  # interlace, depth, type...
        bad = bytearray(ihdr)
        bad[offset] = value
        assert plain_png_mode(bytes(bad) + data[33:]) is None, (offset, value)
    assert plain_png_mode(data[:-12]) is None  # no IEND
    assert plain_png_mode(b"GIF89a" + data[6:]) is None


def test_a_damaged_plain_png_gets_pillows_answer(monkeypatch, libpng_calls):
    """libpng refuses a file Pillow decodes (a wrong IDAT checksum, which Pillow does not read):
    the image is Pillow's. A truncated image data stream is Pillow's one-line error."""
    data = PLAIN["rgb"]()
    chunks = _chunks(data)
    pos = data.index(b"IDAT") - 4
    (length,) = struct.unpack(">I", data[pos : pos + 4])
    crc_at = pos + 8 + length
    bad_crc = data[:crc_at] + bytes(4 * [0]) + data[crc_at + 4 :]
    assert bad_crc != data and len(chunks) == len(_chunks(bad_crc))
    with pytest.raises(Exception):  # noqa: B017 - libpng's own error type
        imagecodecs.png_decode(bad_crc)
    assert load_image(bad_crc).tobytes() == _pillow(data, monkeypatch).tobytes()
    assert libpng_calls  # tried first

    stream = b"".join(d for k, d in chunks if k == b"IDAT")
    truncated = _assemble([chunks[0], (b"IDAT", stream[: len(stream) // 2]), (b"IEND", b"")])
    assert plain_png_mode(truncated) == "RGB"
    with pytest.raises(InputError) as ours:
        load_image(truncated)
    with pytest.raises(InputError) as ref:
        _pillow(truncated, monkeypatch)
    assert str(ours.value) == str(ref.value)


def test_a_file_path_decodes_and_is_closed(tmp_path, monkeypatch, libpng_calls, recwarn):
    data = PLAIN["rgb"]()
    path = tmp_path / "page.png"
    path.write_bytes(data)
    ours = load_image(str(path))
    assert libpng_calls == [1]
    assert ours.tobytes() == _pillow(data, monkeypatch).tobytes()
    assert not [w for w in recwarn if issubclass(w.category, ResourceWarning)]


@pytest.mark.parametrize("name", ["palette", "sixteen_bit", "rgb_transparency", "text_after_the_pixels"])
def test_other_png_files_are_pillows(name, tmp_path, monkeypatch, libpng_calls):
    """From a file: a header that is not plain stops after 33 bytes, a later chunk that is not
    plain after the whole read; both are decoded by Pillow from where it left the file."""
    data = NOT_PLAIN[name]()
    path = tmp_path / "page.png"
    path.write_bytes(data)
    assert load_image(str(path)).tobytes() == _pillow(data, monkeypatch).tobytes()
    assert libpng_calls == []

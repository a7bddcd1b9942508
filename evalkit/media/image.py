"""Decode dataset image values into RGB PIL images, the way the official loaders do.

* Accepts what a dataset cell may hold: a PIL image, ``{"bytes": ..., "path": ...}`` (the HF
  ``Image(decode=False)`` form), raw bytes, a base64 string, or a file path.
* Refuses decompression bombs before any pixel is allocated (the header's size is checked against
  ``max_pixels``).
* Applies the EXIF orientation as HF ``datasets`` does on decode, then converts to RGB: alpha is
  composited on white (as qwen-vl-utils does), palette/CMYK/greyscale converted, 16-bit and float
  images scaled to 8 bits.
* Any failure raises :class:`~evalkit.errors.InputError` with a one-line reason; the runner turns
  it into a per-sample error record.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import os
import threading
from collections.abc import Iterator
from typing import Any

from evalkit.errors import InputError

#: default refusal threshold: 178,956,970 px (PIL's own bomb-error level)
DEFAULT_MAX_PIXELS = 2 * 89_478_485


def _open(value: Any):
    from PIL import Image

    if isinstance(value, Image.Image):
        return value
    if value is None:
        raise InputError("image is missing (None)")
    if isinstance(value, dict):
        if value.get("bytes"):
            return Image.open(io.BytesIO(value["bytes"]))
        if value.get("path"):
            return _open(value["path"])
        raise InputError("image cell has neither bytes nor path")
    if isinstance(value, bytes | bytearray):
        if not value:
            raise InputError("image is empty (0 bytes)")
        return Image.open(io.BytesIO(bytes(value)))
    if isinstance(value, str):
        if os.path.exists(value):
            if os.path.getsize(value) == 0:
                raise InputError(f"image file {value} is empty (0 bytes)")
            return Image.open(value)
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise InputError(f"image path does not exist: {value[:200]}") from None
        return _open(raw)
    raise InputError(f"unsupported image value of type {type(value).__name__}")


def _to_rgb(img):
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        import numpy as np

        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") else max(float(arr.max()), 1.0)
        img = Image.fromarray(np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype("uint8"), mode="L")
    elif img.mode == "F":
        import numpy as np

        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else arr * 0
        img = Image.fromarray(scaled.astype("uint8"), mode="L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.split()[3])
        return background
    if img.mode != "RGB":
        return img.convert("RGB")
    return img


_limit_lock = threading.Lock()
_limit_users = 0
_saved_limit: Any = None


@contextlib.contextmanager
def _own_pixel_limit() -> Iterator[None]:
    """PIL's global bomb limit off while images decode (``load_image`` applies its own, from the
    header). Thread-safe: request-building workers decode concurrently, and the limit is restored
    only when the last of them is done."""
    global _limit_users, _saved_limit
    from PIL import Image

    with _limit_lock:
        if _limit_users == 0:
            _saved_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
        _limit_users += 1
    try:
        yield
    finally:
        with _limit_lock:
            _limit_users -= 1
            if _limit_users == 0:
                Image.MAX_IMAGE_PIXELS = _saved_limit


def load_image(value: Any, max_pixels: int = DEFAULT_MAX_PIXELS):
    """Decode one dataset image value into an RGB ``PIL.Image`` (see module docstring).

    Raises:
        InputError: missing, empty, truncated, undecodable, or too large to decode safely.
    """
    from PIL import Image, ImageOps

    try:
        img = _open(value)
        width, height = img.size
        if width <= 0 or height <= 0:
            raise InputError(f"image has an empty size {width}x{height}")
        if width * height > max_pixels:
            raise InputError(
                f"image is {width}x{height} = {width * height:,} px, above the {max_pixels:,} px limit "
                "(possible decompression bomb); refused before decoding"
            )
        fast = None if isinstance(value, Image.Image) else _decode_plain_png(img)
        if fast is not None:
            return _to_rgb(fast)
        with _own_pixel_limit():
            img.load()
        if img.getexif().get(0x0112) is not None:  # Orientation, as datasets' Image feature does
            img = ImageOps.exif_transpose(img)
        return _to_rgb(img)
    except InputError:
        raise
    except Exception as exc:  # PIL raises many types (OSError, SyntaxError, ValueError...)
        raise _input_error("cannot decode image", exc) from exc


#: PNG colour types decoded by libpng exactly as Pillow decodes them (8 bits per sample), and the
#: Pillow mode of each: greyscale, RGB, greyscale + alpha, RGBA
_PLAIN_PNG_MODES = {0: "L", 2: "RGB", 4: "LA", 6: "RGBA"}
#: chunks that change the decoded pixels (``tRNS``: Pillow keeps it aside, libpng may expand it to
#: alpha) or their orientation (``eXIf``)
_PNG_PIXEL_CHUNKS = frozenset({b"tRNS", b"eXIf"})
#: text chunks whose keyword carries an EXIF / XMP orientation for Pillow
_PNG_ORIENTATION_KEYWORDS = (b"Raw profile type exif\0", b"XML:com.adobe.xmp\0")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def plain_png_mode(data: bytes) -> str | None:
    """The Pillow mode of ``data`` when it is a *plain* PNG, else None.

    Plain: 8 bits per sample, greyscale / RGB / with alpha, not interlaced, no transparency chunk,
    no orientation (``eXIf`` or an EXIF / XMP text chunk), and nothing but ``IEND`` after the image
    data (Pillow reads later chunks when it loads). These are the PNGs libpng decodes to exactly
    Pillow's pixels; anything else (palette, 16-bit, Adam7, ...) is left to Pillow. Walks the chunk
    headers only (no CRC or pixel work: a damaged file fails libpng's decode and falls back)."""
    mode = _plain_png_header(data)
    if mode is None:
        return None
    pos, in_pixels, after_pixels = 33, False, False
    while pos + 8 <= len(data):
        length, ctype = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            return None
        if ctype == b"IEND":
            return mode if in_pixels else None
        if ctype == b"IDAT":
            if after_pixels:
                return None
            in_pixels = True
        elif in_pixels or after_pixels:
            return None  # a chunk after the image data
        elif ctype in _PNG_PIXEL_CHUNKS or (
            ctype in (b"tEXt", b"zTXt", b"iTXt")
            and any(data.startswith(k, pos + 8) for k in _PNG_ORIENTATION_KEYWORDS)
        ):
            return None
        pos = end
    return None


def _plain_png_header(data: bytes) -> str | None:
    """The Pillow mode when ``data`` starts with a PNG signature and a plain ``IHDR`` (its first 33
    bytes: 8-bit grey / RGB / with alpha, standard compression and filter, not interlaced)."""
    if data[:8] != _PNG_SIGNATURE or len(data) < 33:
        return None
    length, ctype = int.from_bytes(data[8:12], "big"), data[12:16]
    if ctype != b"IHDR" or length != 13:
        return None
    depth, colour, compression, filtering, interlace = data[24:29]
    mode = _PLAIN_PNG_MODES.get(colour)
    if depth != 8 or mode is None or compression or filtering or interlace:
        return None
    return mode


def _decode_plain_png(img: Any) -> Any:
    """``img`` (a PNG Pillow has opened, not decoded) decoded by libpng (``imagecodecs``, about
    1.5 times Pillow's speed and without the GIL) when it is a :func:`plain_png_mode` PNG: the same
    pixels, mode and ``info`` as Pillow's decode. None (nothing consumed: Pillow decodes it) for
    other images, when ``imagecodecs`` is missing or when libpng refuses the file (Pillow then
    gives its own answer: the same error, or the image if it is more lenient)."""
    if img.format != "PNG" or img.fp is None:
        return None
    try:
        import imagecodecs
    except ImportError:  # pragma: no cover - a dependency; Pillow decodes without it
        return None
    from PIL import Image

    fp = img.fp
    here = fp.tell()
    fp.seek(0)
    if isinstance(fp, io.BytesIO):
        data = fp.getvalue()
    else:  # a file: the rest is read only when its header says plain (no second read otherwise)
        data = fp.read(33)
        if _plain_png_header(data) is not None:
            data += fp.read()
    fp.seek(here)
    mode = plain_png_mode(data)
    if mode is None:
        return None
    try:
        pixels = imagecodecs.png_decode(data)
    except Exception:  # noqa: BLE001 - Pillow decodes (or refuses) it with its own message
        return None
    if pixels.dtype != "uint8" or pixels.shape[:2] != (img.height, img.width):
        return None
    out = Image.fromarray(pixels)  # the array's shape gives the mode (L, LA, RGB, RGBA)
    if out.mode != mode:
        return None
    out.info = dict(img.info)
    img.close()
    return out


def _input_error(what: str, exc: BaseException) -> InputError:
    """``what: <first line of the exception>`` as an :class:`InputError`."""
    return InputError(f"{what}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")


#: formats whose EXIF and XMP orientation Pillow reads with the header (no pixel decoding)
_HEADER_ORIENTATION_FORMATS = frozenset({"JPEG", "MPO", "WEBP"})
#: what must appear in a PNG file for it to carry an orientation anywhere (an ``eXIf`` chunk, or a
#: text chunk ``Raw profile type exif`` / ``XML:com.adobe.xmp``, which may follow the pixel data)
_PNG_ORIENTATION_MARKERS = (b"eXIf", b"Raw profile type exif", b"XML:com.adobe.xmp")


def image_size(value: Any, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """``(width, height)`` of the image :func:`load_image` returns for ``value``, read from the
    file's header where that is exact: no pixel is decoded for JPEG and WebP (their EXIF / XMP
    orientation comes with the header) or for a PNG with no orientation data anywhere in the file.
    Other cases decode the image as :func:`load_image` does, so the size is always the same: a PNG
    that may carry an orientation after its pixels, an in-memory image, other formats (TIFF among
    them: once decoded, Pillow no longer reports its orientation, so ``load_image`` - like HF
    ``datasets`` - does not apply it).

    Raises:
        InputError: as :func:`load_image` for values it cannot open.
    """
    from PIL import Image

    if isinstance(value, Image.Image):
        return load_image(value, max_pixels).size
    try:
        with _open(value) as img:  # closes the file of a path
            width, height = img.size
            orientation, from_header = None, True
            if img.format in _HEADER_ORIENTATION_FORMATS:
                orientation = img.getexif().get(0x0112)
            elif img.format == "PNG" and img.fp is not None:
                img.fp.seek(0)  # an orientation anywhere in the file: only decoding tells
                data = img.fp.read()
                from_header = not any(marker in data for marker in _PNG_ORIENTATION_MARKERS)
            else:
                from_header = False
    except InputError:
        raise
    except Exception as exc:  # as load_image: PIL raises many types
        raise _input_error("cannot read image size", exc) from exc
    if not from_header or width <= 0 or height <= 0 or width * height > max_pixels:
        return load_image(value, max_pixels).size  # bad sizes: load_image's own message
    # orientations 5-8 turn the image a quarter (exif_transpose swaps the sides)
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def thumbnail_jpeg(img, path: str | os.PathLike[str], size: int = 160) -> None:
    """Save a small JPEG preview for the HTML report (never used as model input). The page is
    box-reduced by an integer factor first (``reducing_gap=1``), then resized: half the time of
    Pillow's default gap, a preview no one can tell apart."""
    thumb = img.copy()
    thumb.thumbnail((size, size), reducing_gap=1.0)
    thumb.save(path, format="JPEG", quality=80)

"""load_image is safe to call from the runner's concurrent request-building threads."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from evalkit.media import image as image_mod
from evalkit.media.image import load_image


def test_pil_limit_is_restored_only_when_the_last_decoder_is_done() -> None:
    """Two decoders overlapping (A in, B in, A out, B out): PIL's own limit stays off until B is out,
    then comes back as it was (toggling it per call let one thread restore it under the other, or
    leave it off for good)."""
    original = Image.MAX_IMAGE_PIXELS
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def a() -> None:
        with image_mod._own_pixel_limit():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def b() -> None:
        a_in.wait(5)
        with image_mod._own_pixel_limit():
            b_in.set()
            a_out.wait(5)
            seen["while_b_decodes"] = Image.MAX_IMAGE_PIXELS

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen["while_b_decodes"] is None
    assert Image.MAX_IMAGE_PIXELS == original


def test_concurrent_decodes_give_the_pixels_of_a_serial_decode() -> None:
    rng = np.random.default_rng(0)
    blobs = []
    for i in range(24):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (60 + i, 80, 3), dtype=np.uint8)).save(buf, format="PNG")
        blobs.append(buf.getvalue())
    serial = [load_image(b).tobytes() for b in blobs]
    with ThreadPoolExecutor(4) as pool:
        parallel = [img.tobytes() for img in pool.map(load_image, blobs)]
    assert parallel == serial
    assert Image.MAX_IMAGE_PIXELS is not None  # PIL's own limit is back

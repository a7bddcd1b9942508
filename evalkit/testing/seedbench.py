"""Synthetic SEED-Bench fixture in the hub schema of ``lmms-lab/SEED-Bench`` (split ``test``), laid
out like the hub repo: ``data/test-00000-of-00001.parquet``.

Columns: ``answer`` (letter), ``choice_a``-``choice_d``, ``data_id``, ``data_type`` (``image`` /
``video``), ``question``, ``question_id``, ``question_type_id`` (int64; 1-9 image, 10-12 video),
``image`` (list of ``{"bytes", "path"}`` images: one picture, or the clip's frames), ``segment``
(list of numbers or null). Video rows carry ``n_frames`` frames, each a solid colour whose red
channel is the frame index (so a test can tell which frames were taken). ``bad`` adds an image row
with a corrupt image, one with an empty image list and one with a gold answer ``E``.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

from evalkit.testing.image_qa import png_image, write_split

_WORDS = ["a bus", "a tree", "a bird", "a chair", "a boat", "a lamp", "a cup", "a kite"]


def seedbench_features() -> Any:
    """``datasets.Features`` of ``lmms-lab/SEED-Bench``."""
    from datasets import Features, Image, Sequence, Value

    s = Value("string")
    return Features({"answer": s, "choice_a": s, "choice_b": s, "choice_c": s, "choice_d": s,
                     "data_id": s, "data_type": s, "question": s, "question_id": s,
                     "question_type_id": Value("int64"), "image": Sequence(Image()),
                     "segment": Sequence(Value("float64"))})  # fmt: skip


def frame_png(index: int, size: tuple[int, int] = (56, 42)) -> dict:
    """A solid frame whose red channel is ``index * 10`` (an HF image cell)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (index * 10 % 256, 80, 160)).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def write_seedbench_fixture(
    root: str | Path, n_image: int = 6, n_video: int = 4, n_frames: int = 8, seed: int = 0, bad: bool = False
) -> Path:
    """Write ``n_image`` image and ``n_video`` video questions (interleaved, as the hub orders them
    by dimension); returns ``root``."""
    rng = random.Random(seed)
    cols: dict[str, list[Any]] = {k: [] for k in seedbench_features()}

    def add(kind: str, images: list[Any], answer: str, i: int) -> None:
        choices = rng.sample(_WORDS, 4)
        cols["answer"].append(answer)
        for k, c in enumerate(("choice_a", "choice_b", "choice_c", "choice_d")):
            cols[c].append(choices[k])
        cols["data_id"].append(f"{kind}/{i}.{'jpg' if kind == 'image' else 'mp4'}")
        cols["data_type"].append(kind)
        cols["question"].append(f"What is shown in {kind} {i}?")
        cols["question_id"].append(f"{101 + i}_{kind}")
        cols["question_type_id"].append(1 + i % 9 if kind == "image" else 10 + i % 3)
        cols["image"].append(images)
        cols["segment"].append([0.0, 4.0] if kind == "video" and i % 2 else None)

    i = 0
    for _ in range(n_image):
        add("image", [png_image(rng)], "ABCD"[rng.randrange(4)], i)
        i += 1
    for _ in range(n_video):
        add("video", [frame_png(f) for f in range(n_frames)], "ABCD"[rng.randrange(4)], i)
        i += 1
    if bad:
        add("image", [{"bytes": b"garbage", "path": None}], "A", i)
        add("image", [], "B", i + 1)
        add("image", [png_image(rng)], "E", i + 2)
    root = Path(root)
    write_split(root / "data" / "test-00000-of-00001.parquet", cols, seedbench_features())
    return root

"""Synthetic MM-Vet fixture in the schema of ``lmms-lab/MMVet`` (split ``test``): ``question_id``
(``v1_<n>``), ``image``, ``question``, ``answer`` (``<AND>``/``<OR>`` references), ``image_source``,
``capability`` (comma-separated), laid out like the hub repo (``data/test-00000-of-00001.parquet``)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from evalkit.testing.image_qa import png_image, write_split

Columns = dict[str, list[Any]]

MMVET_ITEMS = [
    ("What is the number on the sign?", "27", "ocr"),
    ("Which two fruits are on the table?", "apple <AND> banana", "rec,spat"),
    ("What colour is the car?", "red<OR>dark red", "rec"),
    ("What is 3 + 4 as written on the board?", "7", "ocr,math"),
    (
        "Why is this picture funny?",
        "The dog is wearing the owner's glasses and reading a newspaper.",
        "rec,know,gen",
    ),
]


def mmvet_features() -> Any:
    """``datasets.Features`` of ``lmms-lab/MMVet``."""
    from datasets import Features, Image, Value

    s = Value("string")
    return Features({"question_id": s, "image": Image(), "question": s, "answer": s, "image_source": s,
                     "capability": s})  # fmt: skip


def mmvet_split(n: int = 5, seed: int = 0, split: str = "test") -> tuple[Columns, Any]:
    """``n`` questions cycling through :data:`MMVET_ITEMS`."""
    rng = random.Random(seed)
    cols: Columns = {k: [] for k in mmvet_features()}
    for i in range(n):
        q, a, caps = MMVET_ITEMS[i % len(MMVET_ITEMS)]
        cols["question_id"].append(f"v1_{i}")
        cols["image"].append(png_image(rng))
        cols["question"].append(q)
        cols["answer"].append(a)
        cols["image_source"].append("synthetic")
        cols["capability"].append(caps)
    return cols, mmvet_features()


def write_mmvet_fixture(root: str | Path, n_rows: int = 5, seed: int = 0, split: str = "test") -> Path:
    """MM-Vet laid out like the hub repo; returns ``root``."""
    cols, features = mmvet_split(n_rows, seed, split)
    write_split(Path(root) / "data" / f"{split}-00000-of-00001.parquet", cols, features)
    return Path(root)

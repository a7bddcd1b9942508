"""Synthetic fixtures for MMStar (``Lin-Chen/MMStar``) and MMT-Bench (``lmms-lab/MMT-Benchmark``),
in the hub schemas (dataset cards), laid out like the hub repos (``data/<split>-00000-of-00001.parquet``).

* MMStar: ``index`` (int64), ``question`` (options inside: ``"...\\nOptions: A: x, B: y, ..."``),
  ``image``, ``answer``, ``category``, ``l2_category``, ``meta_info`` (struct of ``source``,
  ``split``, ``image_path``).
* MMT-Bench: ``index`` (int32), ``question``, ``answer``, ``A``-``I`` (unused options null),
  ``image``, ``category``, ``l2-category``, ``split`` (``VAL`` / ``TEST``).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from evalkit.testing.image_qa import png_image, write_split

Columns = dict[str, list[Any]]

MMSTAR_CATEGORIES = [
    ("coarse perception", "image scene and topic"),
    ("fine-grained perception", "object counting"),
    ("instance reasoning", "single-instance reasoning"),
    ("logical reasoning", "diagram reasoning"),
    ("science & technology", "biology & chemistry & physics"),
    ("math", "geometry"),
]
_WORDS = ["cat", "dog", "tree", "car", "boat", "house", "lamp", "cup", "kite"]


def mmstar_features() -> Any:
    """``datasets.Features`` of ``Lin-Chen/MMStar``."""
    from datasets import Features, Image, Value

    s = Value("string")
    return Features({"index": Value("int64"), "question": s, "image": Image(), "answer": s, "category": s,
                     "l2_category": s, "meta_info": {"source": s, "split": s, "image_path": s}})  # fmt: skip


def mmstar_split(n: int = 6, seed: int = 0, split: str = "val") -> tuple[Columns, Any]:
    """``n`` four-option questions cycling through the six core capabilities."""
    rng = random.Random(seed)
    cols: Columns = {k: [] for k in mmstar_features()}
    for i in range(n):
        words = rng.sample(_WORDS, 4)
        gold = rng.randrange(4)
        cat, l2 = MMSTAR_CATEGORIES[i % len(MMSTAR_CATEGORIES)]
        opts = ", ".join(f"{'ABCD'[k]}: a {w}" for k, w in enumerate(words))
        cols["index"].append(i)
        cols["question"].append(f"What is in the image?\nOptions: {opts}")
        cols["image"].append(png_image(rng))
        cols["answer"].append("ABCD"[gold])
        cols["category"].append(cat)
        cols["l2_category"].append(l2)
        cols["meta_info"].append({"source": "synthetic", "split": split, "image_path": f"images/{i}.jpg"})
    return cols, mmstar_features()


def mmt_features() -> Any:
    """``datasets.Features`` of ``lmms-lab/MMT-Benchmark``."""
    from datasets import Features, Image, Value

    s = Value("string")
    cols: dict[str, Any] = {"index": Value("int32"), "question": s, "answer": s}
    cols.update({letter: s for letter in "ABCDEFGHI"})
    cols.update({"image": Image(), "category": s, "l2-category": s, "split": s})
    return Features(cols)


def mmt_split(n: int = 6, seed: int = 0, split: str = "val") -> tuple[Columns, Any]:
    """``n`` questions with 2-5 options (the other letters null); answers empty on ``test``."""
    rng = random.Random(seed)
    cols: Columns = {k: [] for k in mmt_features()}
    for i in range(n):
        n_opt = 2 + i % 4
        words = rng.sample(_WORDS, n_opt)
        cols["index"].append(100 + i)
        cols["question"].append(f"Which object is shown? ({i})")
        cols["answer"].append("ABCDE"[rng.randrange(n_opt)] if split == "val" else "")
        for k, letter in enumerate("ABCDEFGHI"):
            cols[letter].append(f"a {words[k]}" if k < n_opt else None)
        cols["image"].append(png_image(rng))
        cols["category"].append(["visual_recognition", "ocr"][i % 2])
        cols["l2-category"].append(["object_recognition", "scene_text_recognition"][i % 2])
        cols["split"].append(split.upper())
    return cols, mmt_features()


def write_mmstar_fixture(root: str | Path, n_rows: int = 6, seed: int = 0, split: str = "val") -> Path:
    """MMStar laid out like the hub repo; returns ``root``."""
    cols, features = mmstar_split(n_rows, seed, split)
    write_split(Path(root) / "data" / f"{split}-00000-of-00001.parquet", cols, features)
    return Path(root)


def write_mmt_fixture(root: str | Path, n_rows: int = 6, seed: int = 0, split: str = "val") -> Path:
    """MMT-Bench laid out like the hub repo; returns ``root``."""
    cols, features = mmt_split(n_rows, seed, split)
    write_split(Path(root) / "data" / f"{split}-00000-of-00001.parquet", cols, features)
    return Path(root)

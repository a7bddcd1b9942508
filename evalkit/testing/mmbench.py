"""Synthetic MMBench fixtures in the schema of ``lmms-lab/MMBench`` (configs ``en`` and ``cn``).

Columns (dataset card): ``index`` (string in ``en``, int64 in ``cn``), ``question``, ``hint``,
``answer``, ``A``-``D``, ``category``, ``image`` (image), ``source``, ``L2-category``, ``comment``,
``split``. Missing options and hints are stored as the string ``"nan"`` (as in the hub copy, which
comes from the OpenMMLab TSV). :func:`write_mmbench_fixture` lays the files out like the hub repo
(``<config>/<split>-00000-of-00001.parquet``).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from evalkit.testing.image_qa import png_image, write_split

Columns = dict[str, list[Any]]

_CATEGORIES = [
    ("image_scene", "coarse_perception"),
    ("object_localization", "finegrained_perception (instance-level)"),
    ("physical_relation", "relation_reasoning"),
]
_WORDS = ["cat", "dog", "tree", "car", "boat", "house", "lamp", "cup"]


def mmbench_features(config: str = "en") -> Any:
    """The ``datasets.Features`` of one ``lmms-lab/MMBench`` config."""
    from datasets import Features, Image, Value

    s = Value("string")
    return Features({
        "index": s if config == "en" else Value("int64"), "question": s, "hint": s, "answer": s,
        "A": s, "B": s, "C": s, "D": s, "category": s, "image": Image(), "source": s,
        "L2-category": s, "comment": s, "split": s,
    })  # fmt: skip


def mmbench_split(n: int = 6, seed: int = 0, split: str = "dev", config: str = "en") -> tuple[Columns, Any]:
    """``n`` questions with 2-4 options (missing ones ``"nan"``), every other one with a hint."""
    rng = random.Random(seed)
    cols: Columns = {k: [] for k in mmbench_features(config)}
    for i in range(n):
        n_opt = 2 + i % 3
        words = rng.sample(_WORDS, n_opt)
        gold = rng.randrange(n_opt)
        category, l2 = _CATEGORIES[i % len(_CATEGORIES)]
        cols["index"].append(str(i) if config == "en" else i)
        cols["question"].append(f"Which object is shown in the picture? ({i})")
        cols["hint"].append("The picture is a drawing." if i % 2 else "nan")
        cols["answer"].append("ABCD"[gold] if split == "dev" else "nan")
        for k, letter in enumerate("ABCD"):
            cols[letter].append(f"a {words[k]}" if k < n_opt else "nan")
        cols["category"].append(category)
        cols["image"].append(png_image(rng))
        cols["source"].append("synthetic")
        cols["L2-category"].append(l2)
        cols["comment"].append("nan")
        cols["split"].append(split)
    return cols, mmbench_features(config)


def write_mmbench_fixture(root: str | Path, n_rows: int = 6, seed: int = 0, split: str = "dev",
                          config: str = "en") -> Path:  # fmt: skip
    """Write ``<root>/<config>/<split>-00000-of-00001.parquet``; returns ``root``."""
    root = Path(root)
    cols, features = mmbench_split(n_rows, seed, split, config)
    write_split(root / config / f"{split}-00000-of-00001.parquet", cols, features)
    return root

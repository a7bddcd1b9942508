"""Synthetic fixtures for MME (``lmms-lab/MME``) and HallusionBench (``lmms-lab/HallusionBench``) in
the hub schemas (dataset cards), laid out like the hub repos (``data/<split>-00000-of-00001.parquet``).

* MME: ``question_id`` (the image path, shared by its two questions), ``image``, ``question``,
  ``answer`` (``Yes``/``No``), ``category``; two questions per image (one yes, one no).
* HallusionBench: ``category`` (VD/VS), ``subcategory``, ``visual_input``, ``set_id``,
  ``figure_id``, ``sample_note``, ``question_id``, ``question``, ``gt_answer_details``,
  ``gt_answer`` (``"1"``/``"0"``), ``filename``, ``image`` — every column a string but the image.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from evalkit.testing.image_qa import png_image, write_split

Columns = dict[str, list[Any]]


def mme_features() -> Any:
    """``datasets.Features`` of ``lmms-lab/MME``."""
    from datasets import Features, Image, Value

    s = Value("string")
    return Features({"question_id": s, "image": Image(), "question": s, "answer": s, "category": s})


def mme_split(n_images: int = 3, seed: int = 0, categories: tuple[str, ...] = ("existence", "count", "code_reasoning"),
              split: str = "test") -> tuple[Columns, Any]:  # fmt: skip
    """Two questions per image (gold Yes then No), images cycling through ``categories``."""
    rng = random.Random(seed)
    cols: Columns = {k: [] for k in mme_features()}
    for i in range(n_images):
        category = categories[i % len(categories)]
        image = png_image(rng)
        for gold in ("Yes", "No"):
            cols["question_id"].append(f"{category}/{i:04d}.png")
            cols["image"].append(image)
            cols["question"].append(
                f"Is there a {'red' if gold == 'Yes' else 'blue'} box in the image? Please answer yes or no."
            )
            cols["answer"].append(gold)
            cols["category"].append(category)
    return cols, mme_features()


HB_COLUMNS = ("category", "subcategory", "visual_input", "set_id", "figure_id", "sample_note", "question_id",
              "question", "gt_answer_details", "gt_answer", "filename")  # fmt: skip


def hallusion_features() -> Any:
    """``datasets.Features`` of ``lmms-lab/HallusionBench``."""
    from datasets import Features, Image, Value

    return Features({**{c: Value("string") for c in HB_COLUMNS}, "image": Image()})


def hallusion_rows(rows: list[dict[str, Any]], seed: int = 0) -> tuple[Columns, Any]:
    """Columns for explicit rows (``category``, ``subcategory``, ``set_id``, ``figure_id``,
    ``question_id``, ``gt_answer`` given; the rest filled in)."""
    rng = random.Random(seed)
    cols: Columns = {k: [] for k in hallusion_features()}
    for r in rows:
        full = {"visual_input": "1" if str(r.get("figure_id")) == "0" else "2", "sample_note": "synthetic",
                "question": f"Is the {r.get('subcategory', 'chart')} value above 10? ({r.get('question_id')})",
                "gt_answer_details": "yes" if str(r.get("gt_answer")) == "1" else "no",
                "filename": f"{r.get('set_id')}_{r.get('figure_id')}.png", **r}  # fmt: skip
        for c in HB_COLUMNS:
            cols[c].append(None if full.get(c) is None else str(full[c]))
        cols["image"].append(r.get("image", png_image(rng)))
    return cols, hallusion_features()


def hallusion_split(n_sets: int = 2, seed: int = 0, split: str = "image") -> tuple[Columns, Any]:
    """``n_sets`` question sets, each 2 questions x 2 figures, alternating VD (figures ``0`` original
    and ``1`` edited) and VS (figures ``1`` and ``2``: figure ``0`` of a VS set means "no figure");
    gold answers flip on the second figure."""
    rows = []
    for s in range(n_sets):
        cat = "VD" if s % 2 == 0 else "VS"
        figures = ("0", "1") if cat == "VD" else ("1", "2")
        for fig in figures:
            for q in ("0", "1"):
                gold = "1" if (fig == figures[0]) == (q == "0") else "0"
                rows.append({"category": cat, "subcategory": "chart", "set_id": str(s), "figure_id": fig,
                             "question_id": q, "gt_answer": gold})  # fmt: skip
    return hallusion_rows(rows, seed)


def write_mme_fixture(root: str | Path, n_images: int = 3, seed: int = 0, split: str = "test") -> Path:
    """MME laid out like the hub repo; returns ``root``."""
    cols, features = mme_split(n_images, seed, split=split)
    write_split(Path(root) / "data" / f"{split}-00000-of-00001.parquet", cols, features)
    return Path(root)


def write_hallusion_fixture(root: str | Path, n_sets: int = 2, seed: int = 0, split: str = "image") -> Path:
    """HallusionBench laid out like the hub repo; returns ``root``."""
    cols, features = hallusion_split(n_sets, seed, split)
    write_split(Path(root) / "data" / f"{split}-00000-of-00001.parquet", cols, features)
    return Path(root)

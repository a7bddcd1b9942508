"""Synthetic VCR-wiki data in the exact schema of ``vcr-org/VCR-wiki-{en,zh}-easy-test`` (split
``test``): question_id, image, caption, stacked_image, only_it_image, only_it_image_small,
crossed_text (the covered spans)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from evalkit.testing.image_qa import Columns, png_image, write_split

EN_ROWS = [
    ("The quick brown fox jumps over the lazy dog near the river bank.", ["brown fox", "lazy dog"]),
    ("Paris is the capital and most populous city of France.", ["most populous city"]),
    ("The Eiffel Tower was completed in 1889 for the World's Fair.", ["completed in 1889", "World's Fair"]),
]
ZH_ROWS = [
    ("北京是中华人民共和国的首都。", ["中华人民", "首都"]),
    ("长江是亚洲最长的河流。", ["最长的河流"]),
]


def vcr_split(rows: list[tuple[str, list[str]]], seed: int = 0) -> tuple[Columns, Any]:
    """Rows are ``(caption, crossed spans)``; question ids count from 0."""
    from datasets import Features, Image, Sequence, Value

    rng = random.Random(seed)
    names = (
        "question_id",
        "image",
        "caption",
        "stacked_image",
        "only_it_image",
        "only_it_image_small",
        "crossed_text",
    )
    cols: Columns = {c: [] for c in names}
    for i, (caption, spans) in enumerate(rows):
        cols["question_id"].append(i)
        cols["image"].append(png_image(rng, size=48))
        cols["caption"].append(caption)
        cols["stacked_image"].append(png_image(rng, text="VCR", size=64))
        cols["only_it_image"].append(png_image(rng, size=40))
        cols["only_it_image_small"].append(png_image(rng, size=32))
        cols["crossed_text"].append(list(spans))
    features = Features(
        {"question_id": Value("int64"), "image": Image(), "caption": Value("string"), "stacked_image": Image(),
         "only_it_image": Image(), "only_it_image_small": Image(), "crossed_text": Sequence(Value("string"))}
    )  # fmt: skip
    return cols, features


def write_vcr_fixture(root: str | Path, language: str = "en", rows: list[tuple[str, list[str]]] | None = None,
                      seed: int = 0) -> Path:  # fmt: skip
    """``<root>/data/test-00000-of-00001.parquet``; returns ``root``."""
    default = EN_ROWS if language == "en" else ZH_ROWS
    cols, features = vcr_split(rows if rows is not None else default, seed=seed)
    write_split(Path(root) / "data" / "test-00000-of-00001.parquet", cols, features)
    return Path(root)

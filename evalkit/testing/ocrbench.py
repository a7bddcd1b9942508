"""Synthetic OCRBench data in the exact schema of ``echo840/OCRBench`` (split ``test``): dataset,
question, question_type (the ten categories), answer (a list of strings), image."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from evalkit.testing.image_qa import Columns, png_image, write_split


def ocrbench_split(rows: list[tuple[str, str, str, list[str]]], seed: int = 0) -> tuple[Columns, Any]:
    """Rows are ``(dataset, question_type, question, answers)``."""
    from datasets import Features, Image, Sequence, Value

    rng = random.Random(seed)
    cols: Columns = {"dataset": [], "question": [], "question_type": [], "answer": [], "image": []}
    for dataset, qtype, question, answers in rows:
        cols["dataset"].append(dataset)
        cols["question"].append(question)
        cols["question_type"].append(qtype)
        cols["answer"].append(list(answers))
        cols["image"].append(png_image(rng, text=answers[0] if answers else "", size=48))
    features = Features(
        {"dataset": Value("string"), "question": Value("string"), "question_type": Value("string"),
         "answer": Sequence(Value("string")), "image": Image()}
    )  # fmt: skip
    return cols, features


DEFAULT_ROWS = [
    ("IIIT5K", "Regular Text Recognition", "what is written in the image?", ["CAFE"]),
    ("SVTP", "Irregular Text Recognition", "what is written in the image?", ["exit"]),
    ("WordArt", "Artistic Text Recognition", "what is written in the image?", ["Sale"]),
    ("IAM", "Handwriting Recognition", "what is written in the image?", ["hello world"]),
    ("ORAND", "Digit String Recognition", "what is the number in the image?", ["20931"]),
    ("NonSemanticText", "Non-Semantic Text Recognition", "what is written in the image?", ["xqzt"]),
    ("textVQA", "Scene Text-centric VQA", "what brand is this?", ["nike", "Nike"]),
    ("docVQA", "Doc-oriented VQA", "what is the date?", ["May 5, 1990"]),
    ("FUNSD", "Key Information Extraction", "what is the name?", ["J. Smith"]),
    (
        "HME100k",
        "Handwritten Mathematical Expression Recognition",
        "write the expression in LaTeX",
        ["x ^ { 2 } + 1"],
    ),
]


def write_ocrbench_fixture(root: str | Path, rows: list[tuple[str, str, str, list[str]]] | None = None,
                           seed: int = 0) -> Path:  # fmt: skip
    """``<root>/data/test-00000-of-00001.parquet`` (the hub layout); returns ``root``."""
    cols, features = ocrbench_split(rows if rows is not None else DEFAULT_ROWS, seed=seed)
    write_split(Path(root) / "data" / "test-00000-of-00001.parquet", cols, features)
    return Path(root)

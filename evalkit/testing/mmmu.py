"""Synthetic MMMU and MMMU-Pro data in the exact hub schemas (see ``tasks/mmmu.py``).

* :func:`mmmu_subject_split` — one ``MMMU/MMMU`` subject config: id, question, options (a Python
  list literal *string*), explanation, image_1..image_7, img_type, answer, topic_difficulty,
  question_type, subfield.
* :func:`mmmu_pro_standard_split` / :func:`mmmu_pro_vision_split` — ``MMMU/MMMU_Pro`` configs
  ``standard (10 options)`` and ``vision``.
* :func:`write_mmmu_fixture` lays subjects out like the hub repository
  (``<Subject>/validation-00000-of-00001.parquet``).

Rows are given explicitly (``MMMURow``) so tests know every gold answer and image placement.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.testing.image_qa import Columns, png_image, write_split

MAX_IMAGES = 7


@dataclass
class MMMURow:
    """One question: its text (with ``<image k>`` tags), options, answer and which images exist."""

    question: str
    answer: str
    options: list[str] = field(default_factory=list)
    question_type: str = "multiple-choice"
    images: tuple[int, ...] = (1,)
    difficulty: str = "Easy"


def _image_features() -> dict[str, Any]:
    from datasets import Image

    return {f"image_{k}": Image() for k in range(1, MAX_IMAGES + 1)}


def _question_columns(
    ids: list[str], rows: list[MMMURow], rng: random.Random
) -> tuple[Columns, dict[str, Any]]:
    """The columns MMMU and MMMU-Pro standard share, in hub order (id .. topic_difficulty), and their features.

    Images are drawn from ``rng`` row by row, image_1 first; callers append their own last columns.
    """
    from datasets import Value

    names = ["id", "question", "options", "explanation", *(f"image_{k}" for k in range(1, MAX_IMAGES + 1)),
             "img_type", "answer", "topic_difficulty"]  # fmt: skip
    cols: Columns = {c: [] for c in names}
    for row_id, row in zip(ids, rows, strict=True):
        cols["id"].append(row_id)
        cols["question"].append(row.question)
        cols["options"].append(repr(row.options))
        cols["explanation"].append("")
        for k in range(1, MAX_IMAGES + 1):
            cols[f"image_{k}"].append(png_image(rng, text=f"{k}", size=40) if k in row.images else None)
        cols["img_type"].append(repr(["Diagrams"]))
        cols["answer"].append(row.answer)
        cols["topic_difficulty"].append(row.difficulty)
    features = {
        "id": Value("string"),
        "question": Value("string"),
        "options": Value("string"),
        "explanation": Value("string"),
        **_image_features(),
        "img_type": Value("string"),
        "answer": Value("string"),
        "topic_difficulty": Value("string"),
    }
    return cols, features


def default_rows(subject: str) -> list[MMMURow]:
    """Three questions per subject: a one-image choice, a two-image interleaved choice, an open one."""
    return [
        MMMURow(
            f"Which shape is shown in <image 1>? ({subject})", "B", ["circle", "square", "triangle", "star"]
        ),
        MMMURow(
            "Compare <image 1> and <image 2>. Which is larger?",
            "A",
            ["the first", "the second", "equal", "cannot tell"],
            images=(1, 2),
            difficulty="Medium",
        ),
        MMMURow("What is the area in <image 1> in m^2?", "12.5", question_type="open", difficulty="Hard"),
    ]


def mmmu_subject_split(
    subject: str, rows: list[MMMURow] | None = None, seed: int = 0, split: str = "validation"
) -> tuple[Columns, Any]:
    """``MMMU/MMMU`` config ``<subject>``: ids ``<split>_<subject>_<n>`` (1-based)."""
    from datasets import Features, Value

    rng = random.Random(f"{seed}:{subject}")
    rows = rows if rows is not None else default_rows(subject)
    ids = [f"{split}_{subject}_{n}" for n in range(1, len(rows) + 1)]
    cols, features = _question_columns(ids, rows, rng)
    cols["question_type"] = [row.question_type for row in rows]
    cols["subfield"] = [subject.replace("_", " ")] * len(rows)
    features.update({"question_type": Value("string"), "subfield": Value("string")})
    return cols, Features(features)


def write_mmmu_fixture(
    root: str | Path,
    subjects: dict[str, list[MMMURow] | None] | list[str],
    seed: int = 0,
    split: str = "validation",
) -> Path:
    """``<root>/<Subject>/<split>-00000-of-00001.parquet`` for each subject; returns ``root``."""
    root = Path(root)
    items = subjects.items() if isinstance(subjects, dict) else ((s, None) for s in subjects)
    for subject, rows in items:
        cols, features = mmmu_subject_split(subject, rows, seed=seed, split=split)
        write_split(root / subject / f"{split}-00000-of-00001.parquet", cols, features)
    return root


PRO_STANDARD = "standard (10 options)"


def mmmu_pro_standard_split(rows: list[tuple[str, MMMURow]], seed: int = 0) -> tuple[Columns, Any]:
    """``MMMU/MMMU_Pro`` ``standard (10 options)``: (subject, row) pairs; ids ``test_<subject>_<n>``."""
    from datasets import Features, Value

    rng = random.Random(seed)
    ids = [f"test_{subject}_{n}" for n, (subject, _) in enumerate(rows, 1)]
    cols, features = _question_columns(ids, [row for _, row in rows], rng)
    cols["subject"] = [subject.replace("_", " ") for subject, _ in rows]
    features["subject"] = Value("string")
    return cols, Features(features)


def mmmu_pro_vision_split(rows: list[tuple[str, list[str], str]], seed: int = 0) -> tuple[Columns, Any]:
    """``MMMU/MMMU_Pro`` ``vision``: (subject, options, answer) triples; the image shows the question."""
    from datasets import Features, Image, Value

    rng = random.Random(seed)
    cols: Columns = {c: [] for c in ("id", "image", "options", "answer", "subject")}
    for n, (subject, options, answer) in enumerate(rows, 1):
        cols["id"].append(f"test_{subject}_{n}")
        cols["image"].append(png_image(rng, text="Q?", size=56))
        cols["options"].append(repr(options))
        cols["answer"].append(answer)
        cols["subject"].append(subject.replace("_", " "))
    features = Features(
        {"id": Value("string"), "image": Image(), "options": Value("string"), "answer": Value("string"),
         "subject": Value("string")}
    )  # fmt: skip
    return cols, features


def write_mmmu_pro_fixture(root: str | Path, config: str, cols: Columns, features: Any) -> Path:
    """``<root>/<config>/test-00000-of-00001.parquet``; returns ``root``."""
    root = Path(root)
    write_split(root / config / "test-00000-of-00001.parquet", cols, features)
    return root

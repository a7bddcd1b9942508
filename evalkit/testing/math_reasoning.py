"""Synthetic MathVista and MATH-Vision data in the exact hub schemas (see ``tasks/math_reasoning.py``).

* ``AI4Math/MathVista`` (split ``testmini``): pid, question, image (file name), decoded_image,
  choices (list or null), unit, precision (float or null), answer, question_type, answer_type,
  metadata (struct: category, context, grade, img_height, img_width, language, skills, source,
  split, task), query.
* ``MathLLMs/MathVision`` (``test`` / ``testmini``): id, question, options (list), image (file
  name), decoded_image, answer, solution, level, subject.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.testing.image_qa import Columns, png_image, write_split


@dataclass
class MathVistaRow:
    """One MathVista problem."""

    question: str
    answer: str
    question_type: str = "free_form"
    answer_type: str = "integer"
    choices: list[str] | None = None
    precision: float | None = None
    unit: str | None = None
    task: str = "math word problem"
    skills: list[str] = field(default_factory=lambda: ["arithmetic reasoning"])


DEFAULT_MATHVISTA = [
    MathVistaRow(
        "How many circles are there?", "3", task="math word problem", skills=["arithmetic reasoning"]
    ),
    MathVistaRow(
        "Which shape is red?",
        "square",
        "multi_choice",
        "text",
        ["circle", "square", "triangle"],
        task="figure question answering",
        skills=["scientific reasoning"],
    ),  # fmt: skip
    MathVistaRow(
        "What is the length of the side?",
        "2.5",
        answer_type="float",
        precision=1.0,
        unit="cm",
        task="geometry problem solving",
        skills=["geometry reasoning", "algebraic reasoning"],
    ),  # fmt: skip
    MathVistaRow(
        "List the first two values.",
        "[1, 2]",
        answer_type="list",
        task="textbook question answering",
        skills=["statistical reasoning"],
    ),  # fmt: skip
]


def official_query(row: MathVistaRow) -> str:
    """A ``query`` cell in the style the dataset stores (hint, question, choices)."""
    if row.question_type == "multi_choice":
        hint = "Hint: Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end."
    else:
        hint = f"Hint: Please answer the question requiring an {row.answer_type} answer and provide the final value at the end."
    text = f"{hint}\nQuestion: {row.question}"
    if row.choices:
        text += "\nChoices:\n" + "\n".join(f"({chr(65 + i)}) {c}" for i, c in enumerate(row.choices))
    return text


def mathvista_split(rows: list[MathVistaRow] | None = None, seed: int = 0) -> tuple[Columns, Any]:
    """``AI4Math/MathVista`` testmini rows; pids count from 1."""
    from datasets import Features, Image, Sequence, Value

    rng = random.Random(seed)
    rows = rows if rows is not None else DEFAULT_MATHVISTA
    names = ("pid", "question", "image", "decoded_image", "choices", "unit", "precision", "answer",
             "question_type", "answer_type", "metadata", "query")  # fmt: skip
    cols: Columns = {c: [] for c in names}
    for i, row in enumerate(rows, 1):
        cols["pid"].append(str(i))
        cols["question"].append(row.question)
        cols["image"].append(f"images/{i}.jpg")
        cols["decoded_image"].append(png_image(rng, size=48))
        cols["choices"].append(row.choices)
        cols["unit"].append(row.unit)
        cols["precision"].append(row.precision)
        cols["answer"].append(row.answer)
        cols["question_type"].append(row.question_type)
        cols["answer_type"].append(row.answer_type)
        cols["metadata"].append({"category": "math-targeted-vqa", "context": "synthetic scene", "grade": "elementary school",
                                 "img_height": 48, "img_width": 48, "language": "english", "skills": row.skills,
                                 "source": "synthetic", "split": "testmini", "task": row.task})  # fmt: skip
        cols["query"].append(official_query(row))
    features = Features(
        {
            "pid": Value("string"), "question": Value("string"), "image": Value("string"), "decoded_image": Image(),
            "choices": Sequence(Value("string")), "unit": Value("string"), "precision": Value("float64"),
            "answer": Value("string"), "question_type": Value("string"), "answer_type": Value("string"),
            "metadata": {"category": Value("string"), "context": Value("string"), "grade": Value("string"),
                         "img_height": Value("int64"), "img_width": Value("int64"), "language": Value("string"),
                         "skills": Sequence(Value("string")), "source": Value("string"), "split": Value("string"),
                         "task": Value("string")},
            "query": Value("string"),
        }
    )  # fmt: skip
    return cols, features


def write_mathvista_fixture(root: str | Path, rows: list[MathVistaRow] | None = None, seed: int = 0) -> Path:
    """``<root>/data/testmini-00000-of-00001.parquet``; returns ``root``."""
    cols, features = mathvista_split(rows, seed)
    write_split(Path(root) / "data" / "testmini-00000-of-00001.parquet", cols, features)
    return Path(root)


DEFAULT_MATHVISION = [  # (question, options, answer, subject, level)
    (
        "<image1>\nWhich figure has the most sides?",
        ["A", "B", "C", "D", "E"],
        "C",
        "metric geometry - angle",
        2,
    ),
    ("<image1>\nHow many dots are there?", [], "7", "counting", 1),
    ("<image1>\nWhat is the ratio of the areas?", [], "\\frac{1}{2}", "metric geometry - area", 3),
    ("<image1>\nWhich number is largest?", ["3", "5", "8", "2", "1"], "C", "arithmetic", 1),
]


def mathvision_split(rows: list[tuple[str, list[str], str, str, int]] | None = None, seed: int = 0,
                     split: str = "test") -> tuple[Columns, Any]:  # fmt: skip
    """``MathLLMs/MathVision`` rows; ids count from 1."""
    from datasets import Features, Image, Sequence, Value

    rng = random.Random(seed)
    rows = rows if rows is not None else DEFAULT_MATHVISION
    names = ("id", "question", "options", "image", "decoded_image", "answer", "solution", "level", "subject")
    cols: Columns = {c: [] for c in names}
    for i, (question, options, answer, subject, level) in enumerate(rows, 1):
        cols["id"].append(str(i))
        cols["question"].append(question)
        cols["options"].append(list(options))
        cols["image"].append(f"images/{i}.jpg")
        cols["decoded_image"].append(png_image(rng, size=48))
        cols["answer"].append(answer)
        cols["solution"].append(None)
        cols["level"].append(level)
        cols["subject"].append(subject)
    features = Features(
        {"id": Value("string"), "question": Value("string"), "options": Sequence(Value("string")),
         "image": Value("string"), "decoded_image": Image(), "answer": Value("string"), "solution": Value("string"),
         "level": Value("int64"), "subject": Value("string")}
    )  # fmt: skip
    return cols, features


def write_mathvision_fixture(root: str | Path, rows: list[tuple[str, list[str], str, str, int]] | None = None,
                             seed: int = 0, split: str = "test") -> Path:  # fmt: skip
    """``<root>/data/<split>-00000-of-00001.parquet``; returns ``root``."""
    cols, features = mathvision_split(rows, seed, split)
    write_split(Path(root) / "data" / f"{split}-00000-of-00001.parquet", cols, features)
    return Path(root)

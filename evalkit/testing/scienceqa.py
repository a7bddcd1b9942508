"""Synthetic ScienceQA-IMG fixture in the hub schema of ``lmms-lab/ScienceQA`` (config
``ScienceQA-IMG``, split ``test``; the columns of ``derek-thomas/ScienceQA``), laid out like the hub
repo: ``ScienceQA-IMG/test-00000-of-00001.parquet``.

Columns: ``image`` (``{"bytes", "path"}``), ``question``, ``choices`` (list of strings, 2-5),
``answer`` (int8, index of the right choice), ``hint``, ``task``, ``grade``, ``subject``,
``topic``, ``category``, ``skill``, ``lecture``, ``solution``. ``bad`` adds rows with a corrupt
image, an out-of-range answer index and a single choice (each an input error).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from evalkit.testing.image_qa import png_image, write_split

SUBJECTS = ("natural science", "social science", "language science")
_WORDS = ["magnet", "plant", "rock", "cloud", "river", "desert", "ocean", "forest", "metal"]


def scienceqa_features() -> Any:
    """``datasets.Features`` of ``lmms-lab/ScienceQA`` / ``derek-thomas/ScienceQA``."""
    from datasets import Features, Image, Sequence, Value

    s = Value("string")
    return Features({"image": Image(), "question": s, "choices": Sequence(s), "answer": Value("int8"),
                     "hint": s, "task": s, "grade": s, "subject": s, "topic": s, "category": s,
                     "skill": s, "lecture": s, "solution": s})  # fmt: skip


def write_scienceqa_fixture(root: str | Path, n_rows: int = 8, seed: int = 0, bad: bool = False) -> Path:
    """Write ``n_rows`` questions (2-5 choices, every other one with a hint); returns ``root``."""
    rng = random.Random(seed)
    cols: dict[str, list[Any]] = {k: [] for k in scienceqa_features()}

    def add(image: Any, choices: list[str], answer: int, hint: str, i: int) -> None:
        cols["image"].append(image)
        cols["question"].append(f"Which of these is shown in picture {i}?")
        cols["choices"].append(choices)
        cols["answer"].append(answer)
        cols["hint"].append(hint)
        cols["task"].append("closed choice")
        cols["grade"].append(f"grade{2 + i % 3}")
        cols["subject"].append(SUBJECTS[i % len(SUBJECTS)])
        cols["topic"].append("science-and-engineering-practices")
        cols["category"].append("Designing experiments" if i % 2 else "Weather and climate")
        cols["skill"].append("Identify the experimental question")
        cols["lecture"].append("Experiments can be designed to answer specific questions.")
        cols["solution"].append(f"The answer is choice {answer}.")

    for i in range(n_rows):
        n = 2 + i % 4
        choices = [f"a {w}" for w in rng.sample(_WORDS, n)]
        hint = f"The picture shows a {rng.choice(_WORDS)}." if i % 2 else ""
        add(png_image(rng), choices, rng.randrange(n), hint, i)
    if bad:
        add({"bytes": b"not an image", "path": None}, ["a cat", "a dog"], 0, "", n_rows)
        add(png_image(rng), ["a cat", "a dog"], 7, "", n_rows + 1)
        add(png_image(rng), ["a cat"], 0, "", n_rows + 2)
    root = Path(root)
    write_split(root / "ScienceQA-IMG" / "test-00000-of-00001.parquet", cols, scienceqa_features())
    return root

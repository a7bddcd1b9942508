"""Synthetic fixtures for PerceptionTest and EgoSchema, laid out exactly like the hub repositories.

* :func:`write_perceptiontest_fixture` - ``lmms-lab/PerceptionTest_Val``:
  ``mc_question_val/validation-00000-of-00001.parquet`` with the hub features (``video_name``,
  ``question``, ``question_id``, ``options`` [3 strings], ``answer_id`` (str), ``area``,
  ``reasoning``, ``tag`` [list of str]); with ``test=True`` also ``lmms-lab/PerceptionTest``'s
  ``mc_question/test-00000-of-00001.parquet`` (``video_name``, ``question``, ``question_id``,
  ``options`` only). Videos: ``videos/<video_name>.mp4``.
* :func:`write_egoschema_fixture` - ``lmms-lab/egoschema``: ``Subset/test-00000-of-00001.parquet``
  and ``MC/test-00000-of-00001.parquet`` (``question_idx``, ``question``, ``video_idx``,
  ``option`` [5 ``"A. ..."`` strings], ``answer`` (index as text; empty in ``MC``)); videos
  ``videos/<video_idx>.mp4``.

Videos are index-encoding (:mod:`evalkit.media.synthetic`), 64 x 48 px at 2 fps; bad videos
(missing, empty, truncated, garbage) come from :mod:`evalkit.testing.video_qa`.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from evalkit.media.synthetic import write_index_video
from evalkit.testing.video_qa import _write_bad

PT_AREAS = ("Memory", "Abstraction", "Physics", "Semantics")
PT_REASONING = ("Descriptive", "Explanatory", "Predictive", "Counterfactual")
PT_TAGS = ("Motion", "Counting", "Object permanence", "Spatial relations")


def _write_parquet(rows: list[dict[str, Any]], features: Any, path: Path) -> None:
    import datasets

    datasets.utils.logging.disable_progress_bar()
    path.parent.mkdir(parents=True, exist_ok=True)
    table = {name: [r[name] for r in rows] for name in features}
    datasets.Dataset.from_dict(table, features=features).to_parquet(str(path))


def _write_video(root: Path, name: str, kind: str | None, seconds: int, rng: random.Random) -> str:
    """Write ``<root>/videos/<name>.mp4``: a good index video of ``seconds`` at 2 fps when ``kind``
    is None, else a bad video of that kind (drawing from ``rng``); returns the kind, ``"good"`` for
    a good one."""
    path = root / "videos" / f"{name}.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind is None:
        write_index_video(path, n_frames=2 * seconds, fps=2, gop=4)
    else:
        _write_bad(path, kind, rng)
    return kind or "good"


def write_perceptiontest_fixture(
    root: str | Path,
    n_videos: int = 3,
    questions_per_video: int = 2,
    seed: int = 0,
    bad: tuple[str, ...] = (),
    test: bool = False,
) -> dict[str, Any]:
    """Write a PerceptionTest fixture; returns ``{"root", "rows", "kinds"}`` (``kinds``: video -> kind).

    Video ``k`` lasts ``6 + 2k`` seconds at 2 fps. Question ids restart at 0 in every video (as in
    the real annotations), so only ``<video_name>-<question_id>`` is unique. Each bad kind gets
    one video with one question.
    """
    import datasets

    root = Path(root)
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    kinds: dict[str, str] = {}
    for k, kind in enumerate([None] * n_videos + list(bad)):
        name = f"video_{1000 + 37 * k + seed}"
        kinds[name] = _write_video(root, name, kind, seconds=6 + 2 * k, rng=rng)
        for q in range(1 if kind else questions_per_video):
            n = len(rows)
            rows.append(
                {
                    "video_name": name,
                    "question": f"What happens to the object in {name} (question {q})?",
                    "question_id": str(q),
                    "options": ["it moves left", "it stays still", "it disappears"],
                    "answer_id": str(rng.randrange(3)),
                    "area": PT_AREAS[n % len(PT_AREAS)],
                    "reasoning": PT_REASONING[(n // 2) % len(PT_REASONING)],
                    "tag": list(PT_TAGS[: 1 + n % 3]),
                }
            )
    val = datasets.Features(
        {
            "video_name": datasets.Value("string"),
            "question": datasets.Value("string"),
            "question_id": datasets.Value("string"),
            "options": datasets.Sequence(datasets.Value("string")),
            "answer_id": datasets.Value("string"),
            "area": datasets.Value("string"),
            "reasoning": datasets.Value("string"),
            "tag": datasets.Sequence(datasets.Value("string")),
        }
    )
    _write_parquet(rows, val, root / "mc_question_val" / "validation-00000-of-00001.parquet")
    if test:
        test_features = datasets.Features(
            {k: val[k] for k in ("video_name", "question", "question_id", "options")}
        )
        _write_parquet(rows, test_features, root / "mc_question" / "test-00000-of-00001.parquet")
    return {"root": root, "rows": rows, "kinds": kinds}


def write_egoschema_fixture(
    root: str | Path, n_questions: int = 5, seed: int = 0, bad: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Write an EgoSchema fixture (``Subset`` with answers, ``MC`` without); one clip per question
    (``8 + k`` seconds at 2 fps), plus one question per bad video kind. Returns
    ``{"root", "rows", "kinds"}``."""
    import datasets

    root = Path(root)
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    kinds: dict[str, str] = {}
    for k, kind in enumerate([None] * n_questions + list(bad)):
        uid = f"{seed:02d}{k:02d}a1b2-c3d4-4e5f-8a9b-{k:012d}"
        kinds[uid] = _write_video(root, uid, kind, seconds=8 + k, rng=rng)
        options = ["C is cooking", "C is cleaning", "C is reading", "C is painting", "C is gardening"]
        rows.append(
            {
                "question_idx": str(k),
                "question": f"What is the overall activity of C in clip {k}?",
                "video_idx": uid,
                "option": [f"{letter}. {text}" for letter, text in zip("ABCDE", options, strict=True)],
                "answer": str(rng.randrange(5)),
            }
        )
    features = datasets.Features(
        {
            "question_idx": datasets.Value("string"),
            "question": datasets.Value("string"),
            "video_idx": datasets.Value("string"),
            "option": datasets.Sequence(datasets.Value("string")),
            "answer": datasets.Value("string"),
        }
    )
    _write_parquet(rows, features, root / "Subset" / "test-00000-of-00001.parquet")
    hidden = [{**r, "answer": ""} for r in rows]
    _write_parquet(hidden, features, root / "MC" / "test-00000-of-00001.parquet")
    return {"root": root, "rows": rows, "kinds": kinds}

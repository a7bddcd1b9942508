"""Shared helpers of the task tests: build a task on a fixture, and run it in-process with the
scripted ``fake`` backend answering by sample id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evalkit.api import IncompleteRunError, compose, evaluate
from evalkit.tasks.registry import build_task


def run_dir(root: Path) -> Path:
    """The folder holding results.json under a sweep's output_dir (sweeps may add a per-run subfolder)."""
    return next(root.rglob("results.json")).parent


def loaded_task(name: str, data: Path, *overrides: str) -> tuple[Any, list]:
    """The task ``name`` on the fixture ``data``, loaded, with its samples."""
    task = build_task(compose(name, "tiny", [f"task.dataset.path={data}", *overrides])["task"])
    task.load()
    return task, task.samples()


def scripted_run(
    task: str,
    data: Path,
    answers: dict[str, Any],
    answers_file: Path,
    output_dir: Path,
    *overrides: str,
    allow_incomplete: bool = True,
) -> dict:
    """Write ``answers`` (sample id -> answer) to ``answers_file`` and evaluate ``task`` on ``data``
    with the ``fake`` backend reading it, outputs in ``output_dir``; the results.json content. A run
    whose fixture holds bad rows on purpose is marked incomplete (results still written): its
    results are returned all the same, the exit-code rule is tested on its own; with
    ``allow_incomplete=False`` the :class:`IncompleteRunError` is raised."""
    answers_file.parent.mkdir(parents=True, exist_ok=True)
    answers_file.write_text(json.dumps(answers, ensure_ascii=False))
    try:
        return evaluate(task, "tiny", [f"task.dataset.path={data}", f"output_dir={output_dir}", "model.backend=fake",
                                       "+model.mode=table", f"+model.answers={answers_file}", "runner.progress=false",
                                       "runner.cache=false", *overrides])  # fmt: skip
    except IncompleteRunError as exc:
        if not allow_incomplete:
            raise
        return exc.results


def fake_run(out: Path, task: str, data: Path, answers: dict[str, str], *overrides: str) -> dict:
    """Evaluate ``task`` on ``data`` with scripted answers (``out/answers.json``, outputs in
    ``out/out``); the results.json content, incomplete runs included."""
    return scripted_run(task, data, answers, out / "answers.json", out / "out", *overrides)


def fake_run_per_task(
    tmp_path: Path,
    task: str,
    data: Path,
    answers: dict[str, Any],
    *overrides: str,
    allow_incomplete: bool = True,
) -> dict:
    """As :func:`fake_run`, with one answers file and output folder per task in ``tmp_path``
    (``answers-<task>.json``, ``out-<task>/``), so one test can run several tasks side by side."""
    answers_file, output_dir = tmp_path / f"answers-{task}.json", tmp_path / f"out-{task}"
    return scripted_run(
        task, data, answers, answers_file, output_dir, *overrides, allow_incomplete=allow_incomplete
    )

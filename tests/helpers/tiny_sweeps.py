"""A multirun sweep of several tasks on their fixtures with the tiny Qwen2-VL, through the CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.helpers.fake_runs import run_dir


def sweep_on_tiny_model(
    cli: Callable[..., Any], tmp_path: Path, tiny_model_dir: Path, fixtures: dict[str, Path], *overrides: str
) -> dict[str, Path]:
    """``evalkit run -m task=<a>,<b>,...`` with the tiny model on ``fixtures`` (task name -> fixture
    root, linked under ``tmp_path/data/<task>``), each task's outputs in ``tmp_path/<task>``; asserts
    the sweep exits 0 and returns each task's run folder (the one holding results.json)."""
    data = tmp_path / "data"
    data.mkdir()
    for name, root in fixtures.items():
        (data / name).symlink_to(root)
    proc = cli("run", "-m", f"task={','.join(fixtures)}", "model=hf", f"model.pretrained={tiny_model_dir}",
               "model.max_pixels=50176", f"task.dataset.path={data}/${{task.name}}",
               f"output_dir={tmp_path}/${{task.name}}", *overrides, "runner.progress=false")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {name: run_dir(tmp_path / name) for name in fixtures}

"""A wheel install works, not only an editable one: configs, task plugins and the mini data ship."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    # zero warnings from our own packaging (package-data layout, license field...)
    noise = [
        line for line in (proc.stdout + proc.stderr).splitlines() if "Warning" in line or "warning:" in line
    ]
    assert not noise, noise[:5]
    return next(out.glob("evalkit_vlm-*.whl"))  # distribution evalkit-vlm; import name evalkit


def test_every_python_package_ships(wheel):
    """Each folder of evalkit/ with Python modules is in the wheel (a missing packages entry
    would drop it silently from a non-editable install)."""
    names = set(zipfile.ZipFile(wheel).namelist())
    for init in (REPO / "evalkit").rglob("__init__.py"):
        rel = init.relative_to(REPO).as_posix()
        assert rel in names, rel


def test_wheel_contains_configs_plugins_and_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "evalkit/cli.py",
        "evalkit/configs/config.yaml",
        "evalkit/configs/task/docvqa.yaml",
        "evalkit/configs/model/qwen2-vl-7b.yaml",
        "evalkit/configs/runner/default.yaml",
        "evalkit/plugins/docvqa.py",
        "evalkit/data/docvqa_mini/DocVQA/validation-00000-of-00001.parquet",
    ):
        assert required in names, required
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "evalkit = evalkit.cli:entry" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_wheel_install_runs_the_bundled_default(wheel, tmp_path):
    target = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    env = dict(os.environ, PYTHONPATH=str(target))
    code = "import evalkit, sys; from evalkit.cli import main; print(evalkit.__file__); sys.exit(main(sys.argv[1:]))"
    args = [
        "run",
        "task=docvqa_mini",
        "model=tiny",
        "model.backend=fake",
        "limit=3",
        f"output_dir={tmp_path / 'out'}",
    ]
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines()[0].startswith(str(target))  # the installed copy ran, not the checkout
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["tasks"]["docvqa_mini"]["n_samples"] == 3

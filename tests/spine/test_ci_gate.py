"""The repo's own CI gate: the mini benchmark on the tiny model against the committed baseline.
An identical run passes; a deliberate change to the prompt or to the scorer fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from evalkit.report.cli import gate_main
from tests.conftest import run_cli_here as run_cli

BASELINE = Path(__file__).resolve().parents[2] / "results" / "baselines" / "docvqa_mini-tiny"
ARGS = ("run", "task=docvqa_mini", "model=tiny", "runner.progress=false")


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory):
    # one cache for the module: the trained tiny model is built once; responses are keyed by
    # request, so the changed prompt/scorer runs below do generate anew where they must
    return {"EVALKIT_CACHE_DIR": str(tmp_path_factory.mktemp("gate-cache"))}


def _run(out: Path, env: dict, *extra: str) -> Path:
    proc = run_cli(*ARGS, f"output_dir={out}", *extra, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def test_same_code_passes_the_gate(tmp_path, model_cache):
    current = _run(tmp_path / "now", model_cache)
    assert gate_main(["--baseline", str(BASELINE), "--current", str(current)]) == 0


def test_prompt_change_fails_the_gate(tmp_path, model_cache):
    current = _run(tmp_path / "prompt", model_cache, "task.prompt='{question}'")
    assert gate_main(["--baseline", str(BASELINE), "--current", str(current)]) == 1


def test_scorer_change_fails_the_gate(tmp_path, model_cache):
    # a stricter ANLS (rrc keeps 1 - NL >= threshold): fewer partial matches count
    current = _run(tmp_path / "scorer", model_cache, "task.metric.threshold=0.8")
    assert gate_main(["--baseline", str(BASELINE), "--current", str(current)]) == 1

"""``runner.log_to=wandb|mlflow``: metrics, config and the samples table reach the tracker; off by
default, imported lazily, checked before any model work. Neither package is installed here, so
fakes stand in for them (a module file on PYTHONPATH for the CLI, ``sys.modules`` in process)."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from evalkit.api import evaluate
from evalkit.errors import MissingDependencyError, UsageError
from tests.conftest import run_cli

FAKE_WANDB = """
import json, os

LOG = os.environ["FAKE_TRACKER_LOG"]


def _write(kind, payload):
    with open(LOG, "a", encoding="utf-8") as f:
        f.write(json.dumps({"kind": kind, "payload": payload}, default=str) + "\\n")


class Table:
    def __init__(self, columns, data):
        self.columns, self.data = columns, data


class _Run:
    def __init__(self):
        self.summary = {}

    def log(self, data):
        out = {}
        for k, v in data.items():
            out[k] = {"columns": v.columns, "data": v.data} if isinstance(v, Table) else v
        _write("log", out)

    def finish(self):
        _write("finish", {"summary": self.summary})


def init(**kwargs):
    _write("init", kwargs)
    return _Run()
"""


def _fixture_args(docvqa_dir: Path, out: Path) -> list[str]:
    return [
        "task=docvqa", "model=tiny", "model.backend=fake", "+model.mode=echo", f"task.dataset.path={docvqa_dir}",
        "limit=5", "runner.progress=false", f"output_dir={out}",
    ]  # fmt: skip


def test_wandb_gets_metrics_config_and_samples_through_the_cli(tmp_path, docvqa_dir) -> None:
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    (fakes / "wandb.py").write_text(FAKE_WANDB)
    log = tmp_path / "tracker.jsonl"
    env = {
        "PYTHONPATH": f"{fakes}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "FAKE_TRACKER_LOG": str(log),
    }
    out = tmp_path / "run"
    proc = run_cli(
        "run", *_fixture_args(docvqa_dir, out), "runner.log_to=wandb", "runner.log_project=my-evals", env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["kind"] for e in events] == ["init", "log", "log", "finish"]
    init = events[0]["payload"]
    assert init["project"] == "my-evals" and init["name"] == "run"
    assert init["config"]["task"]["name"] == "docvqa" and init["config"]["runner"]["log_to"] == "wandb"
    results = json.loads((out / "results.json").read_text())
    anls = results["tasks"]["docvqa"]["metrics"]["anls"]
    assert events[1]["payload"]["docvqa/anls"] == pytest.approx(anls)
    assert events[1]["payload"]["docvqa/n_samples"] == 5
    table = events[2]["payload"]["samples"]
    assert table["columns"] == ["id", "question", "prediction", "target", "scores", "error"]
    samples = [json.loads(x) for x in (out / "samples" / "docvqa.jsonl").read_text().splitlines()]
    assert [row[0] for row in table["data"]] == [s["id"] for s in samples]
    assert [row[2] for row in table["data"]] == [s["prediction"] for s in samples]
    assert events[3]["payload"]["summary"]["docvqa/anls"] == pytest.approx(anls)


def test_off_by_default_nothing_imported(tmp_path, docvqa_dir) -> None:
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    (fakes / "wandb.py").write_text("raise RuntimeError('imported although runner.log_to is off')\n")
    proc = run_cli("run", *_fixture_args(docvqa_dir, tmp_path / "run"), env={"PYTHONPATH": str(fakes)})
    assert proc.returncode == 0, proc.stderr[-2000:]


class FakeMlflow(types.ModuleType):
    def __init__(self) -> None:
        super().__init__("mlflow")
        self.calls: list[tuple[str, Any]] = []

    def set_experiment(self, name: str) -> None:
        self.calls.append(("experiment", name))

    def start_run(self, run_name: str):  # noqa: ANN201
        self.calls.append(("start", run_name))
        mod = self

        class _Ctx:
            def __enter__(self):  # noqa: ANN204
                return self

            def __exit__(self, *exc: object) -> None:
                mod.calls.append(("end", None))

        return _Ctx()

    def log_params(self, params: dict[str, str]) -> None:
        self.calls.append(("params", params))

    def log_metrics(self, metrics: dict[str, float]) -> None:
        self.calls.append(("metrics", metrics))

    def log_table(self, data: dict[str, list], artifact_file: str) -> None:
        self.calls.append(("table", (artifact_file, data)))

    def log_artifact(self, path: str) -> None:
        self.calls.append(("artifact", Path(path).name))


def _args(docvqa_dir: Path, out: Path, *extra: str) -> list[str]:
    return [f"task.dataset.path={docvqa_dir}", "model.backend=fake", "+model.mode=echo", "limit=4",
            "runner.progress=false", f"output_dir={out}", *extra]  # fmt: skip


def test_mlflow_in_process(tmp_path, docvqa_dir, monkeypatch) -> None:
    fake = FakeMlflow()
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    results = evaluate("docvqa", "tiny", _args(docvqa_dir, tmp_path / "run", "runner.log_to=mlflow"))
    kinds = [k for k, _ in fake.calls]
    assert kinds == ["experiment", "start", "params", "metrics", "table", "artifact", "end"]
    calls = dict(fake.calls)
    assert calls["experiment"] == "evalkit"
    assert calls["params"]["task.name"] == "docvqa" and calls["params"]["limit"] == "4"
    assert calls["metrics"]["docvqa/anls"] == pytest.approx(results["tasks"]["docvqa"]["metrics"]["anls"])
    name, table = calls["table"]
    assert (
        name == "samples.json" and len(table["id"]) == 4 and set(table) >= {"prediction", "target", "scores"}
    )
    assert calls["artifact"] == "results.json"


def test_unknown_or_missing_tracker_fails_before_any_work(tmp_path, docvqa_dir, monkeypatch) -> None:
    with pytest.raises(UsageError, match="runner.log_to='tensorboardx'"):
        evaluate("docvqa", "tiny", _args(docvqa_dir, tmp_path / "a", "runner.log_to=tensorboardx"))
    assert not (tmp_path / "a" / "samples").exists()
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow raises ImportError
    with pytest.raises(MissingDependencyError, match="pip install mlflow"):
        evaluate("docvqa", "tiny", _args(docvqa_dir, tmp_path / "b", "runner.log_to=mlflow"))
    assert not (tmp_path / "b" / "samples").exists()


def test_a_failing_tracker_only_warns(tmp_path, docvqa_dir, monkeypatch, caplog) -> None:
    fake = FakeMlflow()

    def down(name: str) -> None:
        raise ConnectionError("tracking server unreachable")

    fake.set_experiment = down  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    results = evaluate("docvqa", "tiny", _args(docvqa_dir, tmp_path / "run", "runner.log_to=mlflow"))
    assert results["tasks"]["docvqa"]["n_samples"] == 4
    assert "logging failed" in caplog.text and "unreachable" in caplog.text

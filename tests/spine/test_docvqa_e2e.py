"""DocVQA end to end through the real CLI on the tiny Qwen2-VL: the results contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from anls import anls_score

from tests.conftest import read_samples, run_cli, run_cli_here


@pytest.fixture(scope="module")
def docvqa_run(tmp_path_factory, tiny_model_dir, docvqa_dir):
    out_dir = tmp_path_factory.mktemp("docvqa-run")
    proc = run_cli_here(
        "run", "task=docvqa", "model=hf", f"model.pretrained={tiny_model_dir}", "model.max_pixels=50176",
        f"task.dataset.path={docvqa_dir}", f"output_dir={out_dir}", "batch_size=4", "seed=1",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out_dir, proc


def test_results_contract(docvqa_run, docvqa_dir):
    out_dir, proc = docvqa_run
    results = json.loads((out_dir / "results.json").read_text())
    task = results["tasks"]["docvqa"]
    assert set(task) >= {"metrics", "n_samples", "n_errors", "main_metric", "aggregation", "protocol"}
    assert 0.0 <= task["metrics"]["anls"] <= 1.0
    assert task["n_samples"] == 30 and task["n_errors"] == 0
    assert task["protocol"]["prompt"] == "{question}\nAnswer the question using a single word or phrase."
    assert task["protocol"]["generation"] == {"max_new_tokens": 32, "temperature": 0.0}
    assert results["config"]["task"]["dataset"]["path"] == str(docvqa_dir)
    assert results["config"]["batch_size"] == 4
    prov = results["provenance"]
    for key in ("evalkit_version", "git_commit", "model_id", "weights_hash", "dataset_path", "dataset_fingerprint",
                "libraries", "seed", "start_time", "end_time"):  # fmt: skip
        assert key in prov, key
    assert prov["seed"] == 1 and prov["weights_hash"] and prov["libraries"]["transformers"]
    assert prov["command"].startswith("evalkit run task=docvqa")
    timing = results["timing"]
    assert timing["total_s"] > 0 and timing["model_s"] > 0 and timing["samples_per_s"] > 0
    assert "anls" in proc.stdout and "results:" in proc.stdout


def test_samples_file_matches_dataset_and_official_anls(docvqa_run, docvqa_dir):
    import datasets

    out_dir, _ = docvqa_run
    rows = read_samples(out_dir / "samples" / "docvqa.jsonl")
    ds = datasets.load_dataset(
        "parquet", data_files=str(docvqa_dir / "DocVQA" / "validation-00000-of-00001.parquet"), split="train"
    )
    assert [r["id"] for r in rows] == list(ds["questionId"])  # dataset order, dataset ids
    for r, question, answers in zip(rows, ds["question"], ds["answers"], strict=True):
        assert set(r) >= {"id", "prompt", "prediction", "target", "scores", "error"}
        assert r["error"] is None and r["target"] == answers
        assert question in r["prompt"] and r["prompt"].startswith("<|im_start|>system")
        assert "<|image_pad|>" in r["prompt"] and r["prompt"].endswith("<|im_start|>assistant\n")
        assert r["scores"]["anls"] == pytest.approx(
            anls_score(prediction=r["prediction"], gold_labels=answers, threshold=0.5)
        )
    results = json.loads((out_dir / "results.json").read_text())
    mean = sum(r["scores"]["anls"] for r in rows) / len(rows)
    assert results["tasks"]["docvqa"]["metrics"]["anls"] == pytest.approx(mean)


def test_test_split_writes_official_submission(tmp_path, tiny_model_dir, docvqa_dir):
    proc = run_cli_here(
        "run", "task=docvqa", "model=hf", f"model.pretrained={tiny_model_dir}", "model.max_pixels=50176",
        f"task.dataset.path={docvqa_dir}", "task.dataset.split=test", f"output_dir={tmp_path}", "batch_size=4",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    task = results["tasks"]["docvqa"]
    assert task["metrics"] == {} and task["submission_file"] == "submission/docvqa.json"
    sub = json.loads((tmp_path / task["submission_file"]).read_text())
    rows = read_samples(tmp_path / "samples" / "docvqa.jsonl")
    assert len(sub) == len(rows) > 0
    assert all(set(e) == {"questionId", "answer"} and isinstance(e["questionId"], int) for e in sub)
    # answers as the model's answer is scored: newlines/tabs as spaces, stripped
    # (the server's ANLS measures raw lengths, so padding would lower it)
    stripped = [r["prediction"].replace("\n", " ").replace("\t", " ").strip() for r in rows]
    assert [e["answer"] for e in sub] == stripped


def test_bundled_default_runs(tmp_path):
    """The README's first command: the mini benchmark on the locally built tiny model."""
    proc = run_cli(
        "run", "task=docvqa_mini", "model=tiny", f"output_dir={tmp_path}", "limit=6", "batch_size=3"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["tasks"]["docvqa_mini"]["n_samples"] == 6
    assert Path(tmp_path / "samples" / "docvqa_mini.jsonl").exists()

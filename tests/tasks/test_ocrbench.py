"""OCRBench on a hub-schema fixture: the official substring rules per question type (case and
newline handling, the HME100k special case), the score out of 1000 with per-category points,
``evalkit score`` re-scoring and a CLI run on the tiny Qwen2-VL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from evalkit.plugins.ocrbench import CATEGORIES, TEXT_RECOGNITION, ocrbench_match

from evalkit.testing.ocrbench import DEFAULT_ROWS, write_ocrbench_fixture
from tests.tasks.test_image_qa import _rows, run_fake


def reference_match(prediction: str, answers: list[str], dataset: str) -> int:
    """An independent reading of OCRBench's eval.py rules, written out case by case."""
    if dataset == "HME100k":
        p = "".join(prediction.strip().replace("\n", " ").split(" "))
        return int(any("".join(a.strip().replace("\n", " ").split(" ")) in p for a in answers))
    p = " ".join(prediction.lower().strip().split("\n"))
    return int(any(" ".join(a.lower().strip().split("\n")) in p for a in answers))


@pytest.mark.parametrize(
    "prediction, answers, dataset, expected",
    [
        ("The word is CAFE.", ["cafe"], "IIIT5K", 1.0),  # case-insensitive substring
        ("caf e", ["cafe"], "IIIT5K", 0.0),  # spaces matter outside HME100k
        ("hello\nworld", ["hello world"], "IAM", 1.0),  # newlines become spaces
        ("  Nike shoes ", ["adidas", "nike"], "textVQA", 1.0),  # any of the answers
        ("x^{2}+1", ["x ^ { 2 } + 1"], "HME100k", 1.0),  # HME100k: spaces removed on both sides
        ("X^{2}+1", ["x ^ { 2 } + 1"], "HME100k", 0.0),  # ... but case is kept
        ("$x ^ {2}\n+ 1$", ["x^{2}+1"], "HME100k", 1.0),
        ("", ["a"], "IIIT5K", 0.0),
    ],
)
def test_ocrbench_rules(prediction, answers, dataset, expected):
    assert ocrbench_match(prediction, answers, dataset) == expected
    assert reference_match(prediction, answers, dataset) == expected


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_ocrbench_fixture(tmp_path_factory.mktemp("ocrbench"))


def _answers_with_known_outcome() -> tuple[dict[str, str], int]:
    answers, correct = {}, 0
    for i, (dataset, _qtype, _q, gold) in enumerate(DEFAULT_ROWS):
        if i in (0, 3, 7):
            answers[str(i)] = "no idea"
        elif dataset == "HME100k":
            answers[str(i)] = gold[0].replace(" ", "")
            correct += 1
        else:
            answers[str(i)] = f"It says {gold[0].upper()}"
            correct += 1
    return answers, correct


def test_score_out_of_1000_and_categories_by_hand(tmp_path, data):
    answers, correct = _answers_with_known_outcome()
    t = run_fake(tmp_path, "ocrbench", data, answers)["tasks"]["ocrbench"]
    assert t["paper_scale"] == 1000 and t["main_metric"] == "score"
    assert t["metrics"]["score"] == pytest.approx(correct / 10)
    assert t["counts"]["correct"] == correct
    by_hand = {cat: 0 for cat in CATEGORIES}
    for i, (dataset, qtype, _q, gold) in enumerate(DEFAULT_ROWS):
        by_hand[qtype] += reference_match(answers[str(i)], gold, dataset)
    for cat in CATEGORIES:
        assert t["counts"][f"points_{cat}"] == by_hand[cat]
    assert t["counts"]["points_Text Recognition"] == sum(by_hand[c] for c in TEXT_RECOGNITION)
    assert set(t["breakdowns"]["category"]) == set(CATEGORIES)
    assert t["breakdowns"]["dataset"]["HME100k"] == {"ocrbench": 1.0, "n": 1}


def test_score_cli_rescores(tmp_path, data, cli):
    run_fake(tmp_path, "ocrbench", data, {str(i): "nothing" for i in range(10)})
    samples_file = tmp_path / "out-ocrbench" / "samples" / "ocrbench.jsonl"
    rows = _rows(samples_file)
    rows[0]["prediction"] = "cafe"
    rows[9]["prediction"] = "x^{2}+1"
    samples_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    proc = cli("score", "task=ocrbench", f"samples={samples_file}", f"task.dataset.path={data}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((tmp_path / "out-ocrbench" / "results.json").read_text())["tasks"]["ocrbench"]
    assert res["counts"]["correct"] == 2 and res["metrics"]["score"] == pytest.approx(0.2)


def test_cli_run_on_tiny_model(tmp_path, data, tiny_model_dir, cli):
    out = tmp_path / "out"
    proc = cli("run", "task=ocrbench", "model=hf", f"model.pretrained={tiny_model_dir}", "model.max_pixels=50176",
               f"task.dataset.path={data}", f"output_dir={out}", "batch_size=5", "task.generation.max_new_tokens=4",
               "runner.progress=false")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = next(p.parent for p in out.rglob("results.json"))
    t = json.loads((run_dir / "results.json").read_text())["tasks"]["ocrbench"]
    rows = _rows(run_dir / "samples" / "ocrbench.jsonl")
    assert t["n_samples"] == 10 and t["n_errors"] == 0
    expected = sum(reference_match(r["prediction"], r["target"], r["metadata"]["dataset"]) for r in rows)
    assert t["counts"]["correct"] == expected
    assert t["protocol"]["prompt"] == "{question}" and "substring" in t["protocol"]["metric"]


def test_report_paper_compares_out_of_1000(tmp_path, data):
    """``evalkit report --paper qwen2-vl``: the score (fraction × paper_scale 1000) next to 866."""
    from evalkit.report.leaderboard import CIOptions, build_leaderboard
    from evalkit.report.loading import load_runs
    from evalkit.report.paper import compare_with_paper, load_paper

    answers, correct = _answers_with_known_outcome()
    run_fake(tmp_path, "ocrbench", data, answers, "model.name=qwen2-vl-7b")
    board = build_leaderboard(load_runs([str(tmp_path / "out-ocrbench")]), ci=CIOptions(n_resamples=200))
    comps = {c.paper: c for c in compare_with_paper(board, load_paper("qwen2-vl")) if c.task == "ocrbench"}
    assert set(comps) == {866, 845}  # the paper's Table 2 and the README's number
    for c in comps.values():
        assert c.metric == "score" and not c.note
        assert c.ours == pytest.approx(correct / 10 * 1000)

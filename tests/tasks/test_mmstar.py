"""MMStar and MMT-Bench on hub-schema fixtures: MMStar's official first-letter rule by hand, the
per-capability breakdown and lmms-eval's macro average, MMT-Bench's deterministic extraction over up
to nine options and its test submission, a real CLI run on the tiny model and re-scoring."""

from __future__ import annotations

import csv
import json

import pytest
from evalkit.plugins.mmstar import mmstar_match, mmstar_options

from evalkit.testing.mmstar import write_mmstar_fixture, write_mmt_fixture
from tests.conftest import read_samples
from tests.conftest import run_cli_here as run_cli
from tests.helpers.fake_runs import fake_run as _fake_run
from tests.helpers.fake_runs import loaded_task as _task
from tests.helpers.tiny_sweeps import sweep_on_tiny_model

pytestmark = pytest.mark.filterwarnings("ignore:.*samples had errors:UserWarning")


@pytest.mark.parametrize(
    ("prediction", "gold", "score"),
    [
        ("B", "B", 1.0),
        ("b. a dog", "B", 1.0),
        ("(C) a cat", "C", 1.0),
        ("Option D", "D", 1.0),
        ("The answer is A.", "A", 1.0),
        ("\n  a", "A", 1.0),  # stripped first
        ("Answer: B", "B", 0.0),  # not one of the official forms (first character is "a")
        ("A cat", "C", 0.0),
        ("A cat", "A", 1.0),  # the rule only looks at the first character
        ("", "A", 0.0),
        ("(", "A", 0.0),
    ],
)
def test_mmstar_official_rule(prediction, gold, score):
    assert mmstar_match(prediction, gold) == score


def test_mmstar_options_parsed_from_question():
    q = "Which is right?\nOptions: A: 3, 4 and 5, B: the cat, C: none, D: a: b"
    assert mmstar_options(q) == {"A": "3, 4 and 5", "B": "the cat", "C": "none", "D": "a: b"}
    assert mmstar_options("no options here") == {}


def test_mmstar_by_hand_with_breakdowns(tmp_path):
    root = write_mmstar_fixture(tmp_path / "d", n_rows=6)
    task, samples = _task("mmstar", root)
    answers = {s.id: s.target for s in samples}
    answers["1"] = "My answer: " + samples[1].target  # right letter, but not an official form -> wrong
    answers["2"] = "Z"
    t = _fake_run(tmp_path, "mmstar", root, answers)["tasks"]["mmstar"]
    assert t["metrics"]["accuracy"] == pytest.approx(4 / 6)
    assert t["metrics"]["accuracy_macro_l2"] == pytest.approx(4 / 6)  # one question per l2 axis here
    cats = t["breakdowns"]["category"]
    assert set(cats) == {"coarse perception", "fine-grained perception", "instance reasoning",
                         "logical reasoning", "science & technology", "math"}  # fmt: skip
    assert cats["fine-grained perception"]["accuracy"] == 0.0 and cats["math"]["accuracy"] == 1.0
    assert t["protocol"]["scorer"] == "mmstar"
    # the extract_choice scorer reads "answer: X" (cue rule)
    t2 = _fake_run(tmp_path / "b", "mmstar", root, answers, "task.scorer=extract_choice")["tasks"]["mmstar"]
    assert t2["metrics"]["accuracy"] == pytest.approx(5 / 6)


def test_mmstar_macro_l2_differs_from_pooled(tmp_path):
    root = write_mmstar_fixture(tmp_path / "d", n_rows=7)  # question 6 shares l2 axis with question 0
    task, samples = _task("mmstar", root)
    answers = {s.id: s.target for s in samples}
    answers["0"] = answers["1"] = "none"
    t = _fake_run(tmp_path, "mmstar", root, answers)["tasks"]["mmstar"]
    # pooled 5/7; per l2 axis: scene {0 wrong, 6 right} = 1/2, counting 0, the other four 1 -> (0.5 + 0 + 4) / 6
    assert t["metrics"]["accuracy"] == pytest.approx(5 / 7)
    assert t["metrics"]["accuracy_macro_l2"] == pytest.approx(4.5 / 6)


def test_mmt_bench_by_hand_and_test_submission(tmp_path):
    root = write_mmt_fixture(tmp_path / "d", n_rows=6)
    task, samples = _task("mmt_bench", root)
    assert [len(task.items[s.id][0]) for s in samples] == [2, 3, 4, 5, 2, 3]
    text = task.build_request(samples[3]).messages[0].content[-1].text
    assert (
        text.startswith("Question: Which object is shown? (3)\nA: ")
        and "\nE: " in text
        and "\nF:" not in text
    )
    answers = {s.id: f"({s.target})" for s in samples}
    answers["101"] = "I think A or B"  # ambiguous -> unparsed, wrong
    answers["103"] = "F"  # not an option of a five-option question -> unparsed, wrong
    t = _fake_run(tmp_path, "mmt_bench", root, answers)["tasks"]["mmt_bench"]
    assert t["metrics"]["accuracy"] == pytest.approx(4 / 6) and t["counts"]["unparsed"] == 2
    assert t["breakdowns"]["category"]["visual_recognition"]["accuracy"] == 1.0  # 100, 102, 104
    assert t["breakdowns"]["category"]["ocr"]["accuracy"] == pytest.approx(1 / 3)  # 101, 103 unparsed
    assert set(t["breakdowns"]["l2_category"]) == {"object_recognition", "scene_text_recognition"}

    test_root = write_mmt_fixture(tmp_path / "t", n_rows=3, split="test")
    res = _fake_run(tmp_path / "r", "mmt_bench_test", test_root, {"100": "B", "101": "C", "102": "?"})
    tt = res["tasks"]["mmt_bench_test"]
    assert (
        all(v is None for v in tt["metrics"].values())
        and tt["submission_file"] == "submission/mmt_bench_test.tsv"
    )
    with (tmp_path / "r" / "out" / tt["submission_file"]).open(encoding="utf-8") as f:
        table = list(csv.DictReader(f, delimiter="\t"))
    assert [(r["index"], r["prediction"], r["extracted"]) for r in table] == [
        ("100", "B", "B"), ("101", "C", "C"), ("102", "?", "")]  # fmt: skip


def test_cli_sweep_on_tiny_model_and_rescore(tmp_path, tiny_model_dir):
    fixtures = {
        "mmstar": write_mmstar_fixture(tmp_path / "fixtures" / "mmstar", n_rows=3),
        "mmt_bench": write_mmt_fixture(tmp_path / "fixtures" / "mmt_bench", n_rows=3),
    }
    run_dirs = sweep_on_tiny_model(
        run_cli, tmp_path, tiny_model_dir, fixtures, "task.generation.max_new_tokens=4"
    )
    for name in ("mmstar", "mmt_bench"):
        run_dir = run_dirs[name]
        t = json.loads((run_dir / "results.json").read_text())["tasks"][name]
        assert t["n_samples"] == 3 and t["n_errors"] == 0
        rows = read_samples(run_dir / "samples" / f"{name}.jsonl")
        assert t["metrics"]["accuracy"] == pytest.approx(sum(r["scores"]["accuracy"] for r in rows) / 3)
    star_dir = run_dirs["mmstar"]
    rows = read_samples(star_dir / "samples" / "mmstar.jsonl")
    for r in rows:
        assert r["scores"]["accuracy"] == mmstar_match(r["prediction"], r["target"])
        r["prediction"] = f"The answer is {r['target']}"
    path = star_dir / "samples" / "mmstar.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = run_cli("score", "task=mmstar", f"samples={path}", f"task.dataset.path={fixtures['mmstar']}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    again = json.loads((star_dir / "results.json").read_text())["tasks"]["mmstar"]
    assert again["metrics"]["accuracy"] == 1.0

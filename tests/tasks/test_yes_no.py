"""MME and HallusionBench on hub-schema fixtures: the official yes/no parsing rules, MME's acc+ pairs
and (acc + acc+) x 100 subtask sums, HallusionBench's figure/question grouping, all checked against
values computed by hand; a real CLI run on the tiny model and ``evalkit score`` re-scoring."""

from __future__ import annotations

import json

import pytest
from evalkit.plugins.yes_no import hallusion_scores, mme_parse, mme_subtask_scores, mme_totals, yes_no_words

from evalkit.testing.image_qa import write_split
from evalkit.testing.yes_no import hallusion_rows, mme_split, write_hallusion_fixture, write_mme_fixture
from tests.conftest import read_samples
from tests.conftest import run_cli_here as run_cli
from tests.helpers.fake_runs import fake_run as _fake_run
from tests.helpers.fake_runs import loaded_task as _task
from tests.helpers.tiny_sweeps import sweep_on_tiny_model

pytestmark = pytest.mark.filterwarnings("ignore:.*samples had errors:UserWarning")


# --------------------------------------------------------------------------- MME parsing
@pytest.mark.parametrize(
    ("prediction", "official", "lmms_eval"),
    [
        ("Yes", "yes", "yes"),
        ("no", "no", "no"),
        ("Yes.", "yes", "yes"),  # "yes." is not exact, but "yes" is in the first four characters
        (" Yes", "yes", "yes"),
        ("No, there is none.", "no", "no"),
        ("Not really", "no", "no"),  # calculation.py quirk: "not " contains "no"
        ("There is a cat: yes", "other", "other"),  # the answer word comes too late
        ("y", "other", "yes"),  # only lmms-eval reads a lone letter
        ("N.", "other", "no"),
        ("", "other", "other"),
        ("nope", "no", "no"),
        ("yesno", "yes", "yes"),  # "yes" is checked first
    ],
)
def test_mme_parsing_rules(prediction, official, lmms_eval):
    assert mme_parse(prediction, "official") == official
    assert mme_parse(prediction, "lmms_eval") == lmms_eval


def test_mme_acc_plus_pairs_by_hand():
    # existence: image a both right, image b one right -> acc 3/4 = 75, acc+ 1/2 = 50 -> 125
    # code_reasoning: image c both wrong -> 0; OCR: image d both right -> 200
    rows = [("existence", "a", 1.0), ("existence", "a", 1.0), ("existence", "b", 1.0), ("existence", "b", 0.0),
            ("code_reasoning", "c", 0.0), ("code_reasoning", "c", 0.0), ("OCR", "d", 1.0), ("OCR", "d", 1.0)]  # fmt: skip
    subtasks = mme_subtask_scores(rows)
    assert subtasks["existence"] == {
        "acc": 75.0,
        "acc_plus": 50.0,
        "score": 125.0,
        "n_questions": 4,
        "n_images": 2,
    }
    assert subtasks["code_reasoning"]["score"] == 0.0 and subtasks["OCR"]["score"] == 200.0
    assert mme_totals(subtasks) == {"perception": 325.0, "cognition": 0.0, "total": 325.0}


def test_mme_task_scores_by_hand(tmp_path):
    # 3 images: existence (yes/no), count (yes/no), code_reasoning (yes/no)
    root = write_mme_fixture(tmp_path / "d", n_images=3)
    task, samples = _task("mme", root)
    assert [s.target for s in samples] == ["Yes", "No"] * 3
    answers = {
        "0": "Yes", "1": "No",  # existence: both right -> 100 + 100
        "2": "Yes", "3": "Yes, there is.",  # count: one right -> 50 + 0
        "4": "The answer is no", "5": "no",  # code_reasoning: "the " -> other (wrong); right -> 50 + 0
    }  # fmt: skip
    t = _fake_run(tmp_path, "mme", root, answers)["tasks"]["mme"]
    assert t["metrics"]["perception"] == pytest.approx(250.0)
    assert t["metrics"]["cognition"] == pytest.approx(50.0)
    assert t["metrics"]["total"] == pytest.approx(300.0)
    assert t["metrics"]["accuracy"] == pytest.approx(4 / 6)
    assert t["paper_scale"] == 1.0 and t["main_metric"] == "total"
    assert t["breakdowns"]["category"]["count"]["acc"] == pytest.approx(50.0)
    assert t["breakdowns"]["category"]["count"]["acc_plus"] == 0.0
    assert t["counts"] == {"other": 1, "images_not_paired": 0}
    assert not {"total", "perception", "cognition"} & set(t["notes"])  # computed: no "no scored samples" note
    rows = read_samples(tmp_path / "out" / "samples" / "mme.jsonl")
    assert [r["parsed"] for r in rows] == ["yes", "no", "yes", "yes", "other", "no"]
    assert t["protocol"]["parser"] == "official"


def test_mme_prompts_and_bad_gold(tmp_path):
    cols, features = mme_split(2)
    cols["answer"][3] = "Maybe"
    write_split(tmp_path / "d" / "data" / "test-00000-of-00001.parquet", cols, features)
    task, samples = _task("mme", tmp_path / "d")
    text = task.build_request(samples[0]).messages[0].content[-1].text
    assert text == "Is there a red box in the image?\nAnswer the question using a single word or phrase."
    official, osamples = _task("mme", tmp_path / "d", "task.prompt=official")
    assert (
        official.build_request(osamples[0]).messages[0].content[-1].text.endswith("Please answer yes or no.")
    )
    t = _fake_run(tmp_path, "mme", tmp_path / "d", {str(i): "yes" for i in range(4)})["tasks"]["mme"]
    assert t["n_errors"] == 1 and t["counts"]["images_not_paired"] == 1  # the image left with one question
    # count image: only its yes question is scored (right) -> acc 100, acc+ 100
    assert t["breakdowns"]["category"]["count"]["score"] == pytest.approx(200.0)
    assert "acc_plus" in t["notes"]


# --------------------------------------------------------------------------- HallusionBench
@pytest.mark.parametrize(
    ("prediction", "parsed"),
    [("Yes", "yes"), ("No.", "no"), ("yes, it is.", "yes"), ("Yes and no.", "unknown"), ("Not sure", "unknown"),
     ("The answer is: NO!", "no"), ("eyes open", "unknown"), ("", "unknown")],
)  # fmt: skip
def test_hallusion_yes_no_words(prediction, parsed):
    assert yes_no_words(prediction) == parsed


def _hb_meta(cat, sub, s, fig, q):
    return {"category": cat, "subcategory": sub, "set_id": s, "figure_id": fig, "question_id": q}


def test_hallusion_grouping_by_hand():
    rows = [
        (_hb_meta("VD", "chart", "0", "0", "0"), 1.0),
        (_hb_meta("VD", "chart", "0", "0", "1"), 1.0),  # figure (VD,chart,0,0): all right
        (_hb_meta("VD", "chart", "0", "1", "0"), 1.0),
        (_hb_meta("VD", "chart", "0", "1", "1"), 0.0),  # figure (VD,chart,0,1): one wrong
        (_hb_meta("VS", "map", "0", "0", "0"), 0.0),  # VS without figure: not a figure group
        (_hb_meta("VS", "map", "0", "1", "0"), 1.0),  # figure (VS,map,0,1): right
    ]
    s = hallusion_scores(rows)
    assert s["aAcc"] == pytest.approx(4 / 6)
    assert s["fAcc"] == pytest.approx(2 / 3)
    # questions (cat, sub, set, q): VD-0-0 right on both figures; VD-0-1 wrong on figure 1; VS-0-0 wrong once
    assert s["qAcc"] == pytest.approx(1 / 3)
    assert s["average"] == pytest.approx((4 / 6 + 2 / 3 + 1 / 3) / 3)


def test_hallusion_task_by_hand(tmp_path):
    root = write_hallusion_fixture(tmp_path / "d", n_sets=2)
    task, samples = _task("hallusionbench", root)
    golds = ["yes" if s.target == "1" else "no" for s in samples]
    answers = {s.id: g.capitalize() for s, g in zip(samples, golds, strict=True)}
    answers["3"] = "I cannot tell"  # set 0 (VD), figure 1, question 1 -> unknown = wrong
    t = _fake_run(tmp_path, "hallusionbench", root, answers)["tasks"]["hallusionbench"]
    m = t["metrics"]
    assert (
        m["aAcc"] == pytest.approx(7 / 8)
        and m["fAcc"] == pytest.approx(3 / 4)
        and m["qAcc"] == pytest.approx(3 / 4)
    )
    assert m["average"] == pytest.approx((7 / 8 + 3 / 4 + 3 / 4) / 3)
    assert t["counts"]["unknown"] == 1 and t["breakdowns"]["category"]["VS"]["aAcc"] == 1.0
    assert not {"average", "fAcc", "qAcc"} & set(t["notes"])


def test_hallusion_vs_without_figure_unknown_counts_right(tmp_path):
    rows = [{"category": "VS", "subcategory": "map", "set_id": "0", "figure_id": "0", "question_id": "0",
             "gt_answer": "1", "visual_input": "0", "image": None},
            {"category": "VS", "subcategory": "map", "set_id": "0", "figure_id": "1", "question_id": "0",
             "gt_answer": "0"}]  # fmt: skip
    cols, features = hallusion_rows(rows)
    write_split(tmp_path / "d" / "data" / "non_image-00000-of-00001.parquet", cols, features)
    task, samples = _task("hallusionbench", tmp_path / "d", "task.dataset.split=non_image")
    assert len(task.build_request(samples[0]).images) == 0  # text-only question
    t = _fake_run(tmp_path, "hallusionbench", tmp_path / "d", {"0": "I am not sure", "1": "I am not sure"},
                  "task.dataset.split=non_image")["tasks"]["hallusionbench"]  # fmt: skip
    # question 0 (no figure): unclear counts as right (official rule); question 1: unknown = wrong
    assert t["metrics"]["aAcc"] == pytest.approx(0.5) and t["metrics"]["fAcc"] == 0.0


# --------------------------------------------------------------------------- CLI, tiny model
def test_cli_sweep_on_tiny_model_and_rescore(tmp_path, tiny_model_dir):
    mme_root = tmp_path / "fixtures" / "mme"
    write_mme_fixture(mme_root, n_images=2)
    hb_root = tmp_path / "fixtures" / "hallusionbench"
    write_hallusion_fixture(hb_root, n_sets=1)
    run_dirs = sweep_on_tiny_model(
        run_cli,
        tmp_path,
        tiny_model_dir,
        {"mme": mme_root, "hallusionbench": hb_root},
        "task.generation.max_new_tokens=4",
    )
    mme_dir, hb_dir = run_dirs["mme"], run_dirs["hallusionbench"]
    mme = json.loads((mme_dir / "results.json").read_text())["tasks"]["mme"]
    rows = read_samples(mme_dir / "samples" / "mme.jsonl")
    assert mme["n_samples"] == 4 and mme["n_errors"] == 0
    for r in rows:
        assert r["scores"]["correct"] == (1.0 if mme_parse(r["prediction"]) == r["target"].lower() else 0.0)
    hb = json.loads((hb_dir / "results.json").read_text())["tasks"]["hallusionbench"]
    assert hb["n_samples"] == 4 and set(hb["metrics"]) == {"average", "aAcc", "fAcc", "qAcc"}

    # re-score with every prediction right: MME 2 images x 200
    for r in rows:
        r["prediction"] = r["target"]
    path = mme_dir / "samples" / "mme.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = run_cli("score", "task=mme", f"samples={path}", f"task.dataset.path={mme_root}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    again = json.loads((mme_dir / "results.json").read_text())["tasks"]["mme"]
    assert again["metrics"]["total"] == pytest.approx(400.0)

"""Scorer variants and submission files of the image-QA tasks (issue 14, points 1, 2, 5, 8):

* TextVQA scores with the TextVQA authors' rule (mmf) by default, vqaEval.py's on request;
* DocVQA / InfoVQA ANLS: ``rrc`` (the leaderboard script) by default, ``paper`` on request,
  recorded in the protocol;
* ChartQA ``qwen_vl`` (Qwen-VL's swapped tolerance);
* DocVQA / InfoVQA submission answers stripped; VQAv2 test-dev padded to a questions file.

Expected values are worked out by hand from the definitions (see tests/metrics for the
independent reference implementations of the metrics themselves).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evalkit.api import compose
from evalkit.errors import UsageError
from evalkit.tasks.registry import build_task
from evalkit.testing.image_qa import (
    chartqa_split,
    infovqa_split,
    textvqa_split,
    write_image_qa_fixture,
    write_split,
)
from tests.helpers.fake_runs import scripted_run

pytestmark = pytest.mark.filterwarnings("ignore:.*samples had errors:UserWarning")


def run_fake(out: Path, task: str, data: Path, answers: dict[str, Any], *overrides: str) -> dict:
    """Evaluate in-process with the scripted backend answering by sample id (outputs in ``out/run``;
    an incomplete run raises)."""
    answers_file = out / f"answers-{task}.json"
    return scripted_run(task, data, answers, answers_file, out / "run", *overrides, allow_incomplete=False)


def _build(task: str, *overrides: str):
    return build_task(compose(task, "tiny", list(overrides))["task"])


# ------------------------------------------------------------------------------ TextVQA (point 1)


def _textvqa_data(tmp_path: Path) -> tuple[Path, list[int]]:
    cols, features = textvqa_split(3, seed=1)
    cols["answers"] = [
        ["Coca-Cola"] * 10,  # identical answers: vqaEval.py compares raw strings
        ["1,000"] * 3 + ["thousand"] * 7,
        ["what?"] * 10,
    ]
    data = write_split(tmp_path / "tv" / "data" / "validation-00000-of-00001.parquet", cols, features)
    return data.parent.parent, [str(q) for q in cols["question_id"]]


def test_textvqa_defaults_to_the_mmf_rule_and_vqaeval_is_selectable(tmp_path):
    data, ids = _textvqa_data(tmp_path)
    preds = {ids[0]: "coca-cola", ids[1]: "1000", ids[2]: "What"}
    t = run_fake(tmp_path / "mmf", "textvqa", data, preds)["tasks"]["textvqa"]
    # mmf: 1 (normalised: "coca cola"), 0.9 (three "1000"), 1 ('?' deleted, lower-cased)
    assert t["metrics"]["vqa_accuracy"] == pytest.approx((1 + 0.9 + 1) / 3)
    assert t["protocol"]["metric_variant"] == "mmf" and "mmf" in t["protocol"]["metric"]
    assert t["task_version"] == "textvqa-2"
    t = run_fake(tmp_path / "vqaeval", "textvqa", data, preds, "task.metric.variant=vqaeval")["tasks"][
        "textvqa"
    ]
    # vqaEval.py: 0 (identical answers: exact), 0.9, 0 ("What" != "what?")
    assert t["metrics"]["vqa_accuracy"] == pytest.approx(0.9 / 3)
    assert t["protocol"]["metric_variant"] == "vqaeval" and "vqaEval.py" in t["protocol"]["metric"]


def test_unknown_variants_are_usage_errors():
    with pytest.raises(UsageError, match="unknown metric.variant 'official'.*mmf, vqaeval"):
        _build("textvqa", "task.metric.variant=official")
    with pytest.raises(UsageError, match="unknown metric.variant 'leaderboard'.*rrc, paper"):
        _build("docvqa", "task.metric.variant=leaderboard")
    with pytest.raises(UsageError, match="unknown metric.variant"):
        _build("infovqa", "task.metric.variant=x")


# ------------------------------------------------------------------------------ ANLS (point 2)


def _boundary_predictions(samples) -> tuple[dict[str, str], list[str]]:
    """Per sample: the first half of an even-length, space-free gold answer (NL = 0.5 exactly)."""
    preds, ids = {}, []
    for s in samples:
        gold = next((a for a in s.target if len(a) >= 2 and len(a) % 2 == 0 and " " not in a), None)
        if gold is not None and len(ids) < 3:
            others = [a for a in s.target if a != gold]
            if all(len(a) != len(gold) for a in others):
                preds[s.id] = gold[: len(gold) // 2]
                ids.append(s.id)
    return preds, ids


def test_docvqa_anls_rrc_by_default_paper_on_request(tmp_path, docvqa_dir):
    task = _build("docvqa", f"task.dataset.path={docvqa_dir}")
    task.load()
    samples = task.samples()
    preds, ids = _boundary_predictions(samples)
    assert len(ids) >= 2
    limit = f"limit={len(samples)}"
    rest = {s.id: (s.target[0] if s.id not in preds else preds[s.id]) for s in samples}
    t = run_fake(tmp_path / "rrc", "docvqa", docvqa_dir, rest, limit)["tasks"]["docvqa"]
    n = len(samples)
    # every other sample answers a gold answer exactly (1); the boundary ones keep 0.5 (rrc)
    assert t["metrics"]["anls"] == pytest.approx((n - len(ids) + 0.5 * len(ids)) / n)
    assert t["protocol"]["metric_variant"] == "rrc" and "variant='rrc'" in t["protocol"]["metric"]
    assert t["task_version"] == "docvqa-2"
    t = run_fake(tmp_path / "paper", "docvqa", docvqa_dir, rest, limit, "task.metric.variant=paper")
    t = t["tasks"]["docvqa"]
    assert t["metrics"]["anls"] == pytest.approx((n - len(ids)) / n)  # NL = 0.5 is not < 0.5
    assert t["protocol"]["metric_variant"] == "paper"


def test_infovqa_rrc_counts_raw_lengths(tmp_path):
    cols, features = infovqa_split(3, seed=1)
    cols["answers"] = [["canada"], ["abcd"], ["1998"]]
    data = tmp_path / "info"
    write_split(data / "InfographicVQA" / "validation-00000-of-00001.parquet", cols, features)
    ids = [str(q) for q in cols["questionId"]]
    preds = {ids[0]: "canda", ids[1]: "ab", ids[2]: "  199  "}
    t = run_fake(tmp_path / "rrc", "infovqa", data, preds)["tasks"]["infovqa"]
    # 1 - 1/6; NL = 2/4 kept (0.5); 1 edit / raw length 7 -> 6/7
    assert t["metrics"]["anls"] == pytest.approx((5 / 6 + 0.5 + 6 / 7) / 3)
    assert t["protocol"]["metric_variant"] == "rrc"
    t = run_fake(tmp_path / "paper", "infovqa", data, preds, "task.metric.variant=paper")["tasks"]["infovqa"]
    # paper: 1 - 1/6; 0 (NL = 0.5); 1 edit / normalised length 4 -> 0.75
    assert t["metrics"]["anls"] == pytest.approx((5 / 6 + 0 + 0.75) / 3)


# ------------------------------------------------------------------------------ ChartQA (point 8)


def test_chartqa_qwen_vl_variant_swaps_the_tolerance(tmp_path):
    _, features = chartqa_split(1)
    golds, preds = ["100", "100", "Yes"], ["95.2", "105.2", " yes"]
    cols = {
        "type": ["human_test"] * 3,
        "question": ["Q0?", "Q1?", "Q2?"],
        "answer": golds,
        "image": chartqa_split(3, seed=2)[0]["image"],
    }
    data = write_split(tmp_path / "cq" / "data" / "test-00000-of-00001.parquet", cols, features).parent.parent
    answers = {str(k): p for k, p in enumerate(preds)}
    t = run_fake(tmp_path / "default", "chartqa", data, answers)["tasks"]["chartqa"]
    # relative to the target: 4.8% ok, 5.2% not, text ok
    assert t["metrics"]["relaxed_accuracy"] == pytest.approx(2 / 3)
    assert t["protocol"]["metric_variant"] == "default"
    t = run_fake(tmp_path / "qwen", "chartqa", data, answers, "task.metric.variant=qwen_vl")["tasks"][
        "chartqa"
    ]
    # relative to the prediction: 4.8/95.2 = 5.04% not, 5.2/105.2 = 4.94% ok, text ok
    assert t["metrics"]["relaxed_accuracy"] == pytest.approx(2 / 3)
    rows = [
        json.loads(x)
        for x in (tmp_path / "qwen" / "run" / "samples" / "chartqa.jsonl").read_text().splitlines()
    ]
    assert [r["scores"]["relaxed_accuracy"] for r in rows] == [0.0, 1.0, 1.0]
    assert t["protocol"]["metric_variant"] == "qwen_vl" and "swapped" in t["protocol"]["metric"]


# ------------------------------------------------------------------------------ submissions (point 5)


def test_docvqa_test_submission_answers_are_stripped(tmp_path, docvqa_dir):
    task = _build("docvqa", f"task.dataset.path={docvqa_dir}", "task.dataset.split=test")
    task.load()
    samples = task.samples()
    preds = {s.id: f"  answer {k}\n" for k, s in enumerate(samples)}
    t = run_fake(tmp_path, "docvqa", docvqa_dir, preds, "task.dataset.split=test")["tasks"]["docvqa"]
    sub = json.loads((tmp_path / "run" / t["submission_file"]).read_text())
    assert [e["answer"] for e in sub] == [f"answer {k}" for k in range(len(samples))]


def _vqav2_testdev(tmp_path: Path) -> tuple[Path, list[int]]:
    data = write_image_qa_fixture("vqav2", tmp_path / "vqav2", n_rows=3, seed=3, split="testdev")
    task = _build("vqav2", f"task.dataset.path={data}", "task.dataset.split=testdev")
    task.load()
    return data, [int(s.id) for s in task.samples()]


def test_vqav2_testdev_submission_padded_to_the_questions_file(tmp_path):
    data, ids = _vqav2_testdev(tmp_path)
    extra = [ids[0] - 7, max(ids) + 11]  # test2015 questions that are not in test-dev
    questions = tmp_path / "v2_OpenEnded_mscoco_test2015_questions.json"
    order = [extra[0], *ids, extra[1]]
    questions.write_text(
        json.dumps({"questions": [{"question_id": q, "image_id": 1, "question": "?"} for q in order]})
    )
    preds = {str(q): f" yes {k}\n" for k, q in enumerate(ids)}
    t = run_fake(tmp_path / "a", "vqav2", data, preds, "task.dataset.split=testdev",
                 f"task.submission.questions={questions}")["tasks"]["vqav2"]  # fmt: skip
    sub = json.loads((tmp_path / "a" / "run" / t["submission_file"]).read_text())
    assert [e["question_id"] for e in sub] == order
    assert [e["answer"] for e in sub] == ["", *(f"yes {k}" for k in range(len(ids))), ""]
    assert "padded to the 5 question ids" in t["notes"]["submission"]
    assert t["task_version"] == "vqav2-2"


def test_vqav2_testdev_without_questions_file_says_so(tmp_path):
    data, ids = _vqav2_testdev(tmp_path)
    t = run_fake(tmp_path, "vqav2", data, {str(q): "no" for q in ids}, "task.dataset.split=testdev")
    t = t["tasks"]["vqav2"]
    sub = json.loads((tmp_path / "run" / t["submission_file"]).read_text())
    assert [e["question_id"] for e in sub] == ids
    assert "task.submission.questions=" in t["notes"]["submission"]


def test_vqav2_bad_questions_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot read"):
        _build("vqav2", f"task.submission.questions={tmp_path / 'missing.json'}")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"id": 1}]))
    with pytest.raises(UsageError, match="not a VQA questions file"):
        _build("vqav2", f"task.submission.questions={bad}")

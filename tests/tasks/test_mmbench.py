"""MMBench on hub-schema fixtures: CircularEval by hand (a group with one wrong shift fails), option
rotation against an independent reference, vanilla accuracy, the submission table of the test split,
stored circular copies, the opt-in LLM fallback, a real CLI run on the tiny model and re-scoring."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from evalkit.plugins.mmbench import CIRCULAR_STRIDE, circular_accuracy, option_columns, rotate_options

from evalkit.metrics.choice import EXTRACTOR_VERSION
from evalkit.testing.image_qa import write_split
from evalkit.testing.mmbench import mmbench_split, write_mmbench_fixture
from tests.conftest import read_samples
from tests.conftest import run_cli_here as run_cli
from tests.helpers.fake_chat_server import FakeChatServer
from tests.helpers.fake_runs import fake_run as _fake_run
from tests.helpers.fake_runs import loaded_task as _task

pytestmark = pytest.mark.filterwarnings("ignore:.*samples had errors:UserWarning")


# --------------------------------------------------------------------------- pure helpers
def _reference_circular(rows: list[tuple[int, float]]) -> float:
    """Independent reference: a question counts when no row of its group is wrong."""
    questions = sorted({i % 1_000_000 for i, _ in rows})
    wrong = {i % 1_000_000 for i, c in rows if c < 1}
    return sum(1 for q in questions if q not in wrong) / len(questions)


def test_circular_accuracy_one_wrong_shift_fails_the_question():
    rows = [(0, 1.0), (1_000_000, 1.0), (2_000_000, 1.0),  # question 0: every shift right
            (1, 1.0), (1_000_001, 0.0), (2_000_001, 1.0), (3_000_001, 1.0),  # question 1: one wrong shift
            (2, 0.0), (1_000_002, 0.0),  # question 2: all wrong
            (7, 1.0)]  # fmt: skip  # question 7: asked once, right
    acc, n = circular_accuracy(rows)
    assert n == 4 and acc == pytest.approx(2 / 4) == pytest.approx(_reference_circular(rows))
    assert circular_accuracy([]) == (None, 0)


def _reference_rotation(texts: list[str], gold: int, k: int) -> tuple[list[str], int]:
    rotated = texts[k:] + texts[:k]
    return rotated, rotated.index(texts[gold])


@pytest.mark.parametrize("n", [2, 3, 4])
def test_rotation_matches_reference(n):
    texts = ["cat", "dog", "cow", "pig"][:n]
    opts = dict(zip("ABCD", texts, strict=False))
    for gold in range(n):
        for k in range(n):
            shown, moved = rotate_options(opts, "ABCD"[gold], k)
            ref_texts, ref_gold = _reference_rotation(texts, gold, k)
            assert list(shown.values()) == ref_texts and moved == "ABCD"[ref_gold]
            assert shown[moved] == texts[gold]


def test_option_columns_stop_at_nan():
    assert option_columns({"A": "x", "B": "nan", "C": "z"}, "ABCD") == {"A": "x"}
    assert option_columns({"A": " x ", "B": "y", "C": None, "D": "w"}, "ABCD") == {"A": "x", "B": "y"}


# --------------------------------------------------------------------------- scripted runs
@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Three questions (2, 3, 4 options) plus one malformed row with a single option."""
    cols, features = mmbench_split(4, seed=1)
    for letter in "BCD":
        cols[letter][3] = "nan"  # question 3: only option A -> an input error for each of its samples
    root = tmp_path_factory.mktemp("mmb")
    write_split(root / "en" / "dev-00000-of-00001.parquet", cols, features)
    return root


def test_circular_vanilla_and_unparsed_by_hand(data, tmp_path):
    task, samples = _task("mmbench_en_dev", data)
    assert [s.id for s in samples] == ["0", "1000000", "1", "1000001", "2000001", "2", "1000002", "2000002",
                                       "3000002", "3"]  # fmt: skip
    answers = {s.id: s.target or "A" for s in samples}
    answers["1000001"] = "ABC".replace(samples[3].target, "")[0]  # question 1: shift 1 answered wrong
    answers["2000002"] = "I am not sure."  # question 2: shift 2 unparsed (wrong)
    answers["0"] = f"The answer is ({samples[0].target})."
    t = _fake_run(tmp_path, "mmbench_en_dev", data, answers)["tasks"]["mmbench_en_dev"]
    assert t["n_samples"] == 10 and t["n_errors"] == 1  # the single-option row
    assert t["metrics"]["accuracy_circular"] == pytest.approx(1 / 3)  # only question 0 survives every shift
    assert t["metrics"]["accuracy_vanilla"] == pytest.approx(1.0)  # every shift-0 answer is right
    assert t["metrics"]["accuracy_all_shifts"] == pytest.approx(7 / 9)
    assert t["counts"]["unparsed"] == 1 and t["counts"]["questions"] == 3
    assert t["counts"]["questions_with_errors"] == 1 and "accuracy_circular" in t["notes"]
    cats = t["breakdowns"]["category"]
    assert cats["image_scene"] == {"accuracy_circular": 1.0, "accuracy_vanilla": 1.0, "n": 1}
    assert cats["object_localization"]["accuracy_circular"] == 0.0
    assert t["aggregation"]["accuracy_circular"] == {"kind": "corpus"}
    assert t["protocol"]["circular"] == "expand" and t["protocol"]["extractor_version"] == EXTRACTOR_VERSION
    rows = {r["id"]: r for r in read_samples(tmp_path / "out" / "samples" / "mmbench_en_dev.jsonl")}
    assert rows["2000002"]["extracted"] is None and rows["0"]["extracted"] == samples[0].target
    assert rows["1000001"]["metadata"] == {"category": "object_localization",
                                           "l2_category": "finegrained_perception (instance-level)",
                                           "question": 1, "shift": 1}  # fmt: skip
    assert rows["3"]["error_type"] == "input" and "two options" in rows["3"]["error"]


def test_prompt_presets_show_rotated_options(data):
    task, samples = _task("mmbench_en_dev", data)
    shifted = next(s for s in samples if s.id == "1000001")
    text = task.build_request(shifted).messages[0].content[-1].text
    opts = task.items["1000001"][0]
    assert text.startswith("The picture is a drawing. Which object")  # hint first (lmms-eval)
    assert "There are several options:\n" + "\n".join(f"{k}. {v}" for k, v in opts.items()) in text
    assert text.endswith("Answer with the option's letter from the given choices directly.")
    vtask, vsamples = _task("mmbench_en_dev", data, "task.prompt=vlmevalkit")
    vtext = vtask.build_request(vsamples[0]).messages[0].content[-1].text
    assert vtext.startswith("Question: Which object") and "Hint:" not in vtext  # question 0 has no hint
    assert vtext.endswith("Please select the correct answer from the options above. \n")


def test_stored_copies_grouped_or_regenerated(tmp_path):
    cols, features = mmbench_split(2, seed=2)
    # a stored shifted copy of question 0 (VLMEvalKit numbering), answered on its own row
    for k in cols:
        cols[k].append(cols[k][0])
    cols["index"][-1] = str(CIRCULAR_STRIDE)
    cols["A"][-1], cols["B"][-1] = cols["B"][0], cols["A"][0]
    cols["answer"][-1] = "B" if cols["answer"][0] == "A" else "A"
    write_split(tmp_path / "d" / "en" / "dev-00000-of-00001.parquet", cols, features)
    stored, s_samples = _task("mmbench_en_dev", tmp_path / "d", "task.circular=stored")
    assert [s.id for s in s_samples] == ["0", "1", "1000000"]
    assert [s.metadata["question"] for s in s_samples] == [0, 1, 0]
    answers = {s.id: s.target for s in s_samples}
    answers["1000000"] = "C"  # not an option of a two-option question -> wrong
    t = _fake_run(tmp_path / "s", "mmbench_en_dev", tmp_path / "d", answers, "task.circular=stored")
    m = t["tasks"]["mmbench_en_dev"]["metrics"]
    assert "accuracy_circular" not in t["tasks"]["mmbench_en_dev"]["notes"]
    assert m["accuracy_circular"] == pytest.approx(1 / 2) and m["accuracy_vanilla"] == pytest.approx(1.0)
    expand, e_samples = _task("mmbench_en_dev", tmp_path / "d")
    assert [s.id for s in e_samples] == ["0", "1000000", "1", "1000001", "2000001"]
    assert expand.dropped_copies == 1


def test_test_split_writes_submission_table(tmp_path):
    root = write_mmbench_fixture(tmp_path / "d", n_rows=3, split="test")
    task, samples = _task("mmbench_en_test", root)
    assert [s.id for s in samples] == ["0", "1", "2"] and all(s.target is None for s in samples)
    res = _fake_run(tmp_path / "r", "mmbench_en_test", root, {"0": "B", "1": "The answer is C.", "2": "x\ty"})
    t = res["tasks"]["mmbench_en_test"]
    assert all(v is None for v in t["metrics"].values())
    assert t["submission_file"] == "submission/mmbench_en_test.tsv"
    with (tmp_path / "r" / "out" / t["submission_file"]).open(encoding="utf-8") as f:
        table = list(csv.DictReader(f, delimiter="\t"))
    assert [r["index"] for r in table] == ["0", "1", "2"]
    assert [r["prediction"] for r in table] == ["B", "The answer is C.", "x y"]
    assert [r["extracted"] for r in table] == ["B", "C", ""]
    assert table[0]["A"] and table[0]["C"] == "" and table[1]["hint"] == "The picture is a drawing."
    assert {"question", "category", "l2_category"} <= set(table[0])


def test_cn_config_and_chinese_prompt(tmp_path):
    root = write_mmbench_fixture(tmp_path / "d", n_rows=2, config="cn")
    task, samples = _task("mmbench_cn_dev", root)
    assert task.config["dataset"]["name"] == "cn" and samples[0].id == "0"  # int64 index in the cn config
    text = task.build_request(samples[0]).messages[0].content[-1].text
    assert "有如下几个选项：\nA. " in text and text.endswith("请直接使用所提供的选项字母作为答案回答。")


# --------------------------------------------------------------------------- LLM fallback
def test_llm_fallback_decides_unparsed_shift(data, tmp_path):
    task, samples = _task("mmbench_en_dev", data)
    answers = {s.id: s.target or "A" for s in samples}
    answers["2000002"] = "Probably the last picture"
    gold = samples[7].target

    def reply(body: dict) -> str:
        text = body["messages"][-1]["content"]
        return gold if "[Answer]\nProbably the last picture\n" in text else "ok"

    with FakeChatServer(models=None, reply_fn=reply) as server:
        opts = ("task.choice_fallback=judge", "judge=local", f"judge.base_url={server.url}")
        t = _fake_run(tmp_path, "mmbench_en_dev", data, answers, *opts)["tasks"]["mmbench_en_dev"]
    assert t["counts"]["llm_fallback"] == 1 and t["counts"]["unparsed"] == 0
    assert t["metrics"]["accuracy_circular"] == pytest.approx(1.0)  # the judge's letter completes question 2
    assert t["protocol"]["choice_fallback"] == "judge"
    rows = {r["id"]: r for r in read_samples(tmp_path / "out" / "samples" / "mmbench_en_dev.jsonl")}
    assert rows["2000002"]["choice_source"] == "llm" and rows["2000002"]["extracted"] == gold


# --------------------------------------------------------------------------- CLI, tiny model
def test_cli_run_on_tiny_model_and_rescore(tmp_path, tiny_model_dir):
    root = write_mmbench_fixture(tmp_path / "d", n_rows=2, seed=3)
    out = tmp_path / "run"
    proc = run_cli("run", "task=mmbench_en_dev", "model=hf", f"model.pretrained={tiny_model_dir}",
                   "model.max_pixels=50176", f"task.dataset.path={root}", f"output_dir={out}",
                   "task.generation.max_new_tokens=4", "runner.progress=false")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    t = json.loads((out / "results.json").read_text())["tasks"]["mmbench_en_dev"]
    assert t["n_samples"] == 5 and t["n_errors"] == 0  # 2 + 3 shifts
    rows = read_samples(out / "samples" / "mmbench_en_dev.jsonl")
    by_q: dict[Any, list[float]] = {}
    for r in rows:
        assert r["scores"]["accuracy"] == (1.0 if r["extracted"] == r["target"] else 0.0)
        by_q.setdefault(r["metadata"]["question"], []).append(r["scores"]["accuracy"])
    expected = sum(1 for v in by_q.values() if all(v)) / len(by_q)
    assert t["metrics"]["accuracy_circular"] == pytest.approx(expected)
    assert t["protocol"]["generation"]["max_new_tokens"] == 4 and t["protocol"]["dataset"]["name"] == "en"

    # re-score edited predictions: every shift right -> CircularEval 1.0
    for r in rows:
        r["prediction"] = r["target"]
    samples_file = out / "samples" / "mmbench_en_dev.jsonl"
    samples_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    proc = run_cli("score", "task=mmbench_en_dev", f"samples={samples_file}", f"task.dataset.path={root}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    again = json.loads((out / "results.json").read_text())["tasks"]["mmbench_en_dev"]
    assert again["metrics"]["accuracy_circular"] == 1.0 and again["metrics"]["accuracy_vanilla"] == 1.0


def test_v11_reads_the_openmmlab_tsv_with_base64_images(tmp_path):
    import base64
    import random

    from evalkit.testing.image_qa import png_image

    rng = random.Random(0)
    header = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "l2-category", "split"]
    lines = ["\t".join([*header, "image"])]
    for i in range(2):
        img = base64.b64encode(png_image(rng)["bytes"]).decode()
        lines.append("\t".join([str(i), f"Which one? ({i})", "nan" if i == 0 else "A hint.", "x", "y", "z", "",
                                "C", "attribute", "finegrained", "dev", img]))  # fmt: skip
    (tmp_path / "MMBench_DEV_EN_V11.tsv").write_text("\n".join(lines) + "\n")
    task, samples = _task("mmbench_v11_dev", tmp_path / "MMBench_DEV_EN_V11.tsv")
    assert [s.id for s in samples] == ["0", "1000000", "2000000", "1", "1000001", "2000001"]
    assert [s.target for s in samples[:3]] == [
        "C",
        "B",
        "A",
    ]  # the gold text "z" moves up one letter per shift
    req = task.build_request(samples[3])
    assert len(req.images) == 1 and req.messages[0].content[-1].text.startswith("A hint. Which one? (1)")
    assert samples[0].metadata == {
        "category": "attribute",
        "l2_category": "finegrained",
        "question": 0,
        "shift": 0,
    }

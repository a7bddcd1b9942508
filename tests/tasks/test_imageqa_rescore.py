"""``evalkit score`` on image-QA tasks (evalkit, lmms-eval and VLMEvalKit files) and bad input.

Re-scoring never loads a model: predictions come from the file, scores from the task's current
scorer. Mismatched files fail with a message that counts and lists the mismatches. Bad rows and
non-string predictions become error records and the run completes.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from evalkit.errors import UsageError
from evalkit.metrics import extract_choice
from evalkit.runner.rescore import detect_format, read_lmms_eval, read_vlmevalkit, rescore
from evalkit.runner.runner import score_record
from evalkit.testing.image_qa import (
    chartqa_split,
    lmms_eval_log_entry,
    mtvqa_split,
    png_image,
    vqav2_split,
    write_image_qa_fixture,
    write_split,
    write_xlsx,
)
from evalkit.types import Record
from tests.helpers.fake_runs import loaded_task as _task
from tests.tasks.test_image_qa import LENIENT, _rows, run_fake

pytestmark = pytest.mark.filterwarnings("ignore:.*samples had errors:UserWarning")


def _write_jsonl(path: Path, objs: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs))
    return path


@pytest.fixture(scope="module")
def rw_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_image_qa_fixture("realworldqa", tmp_path_factory.mktemp("rw"), n_rows=6, seed=8)


def _realworldqa_responses(samples) -> tuple[dict[str, str], float, int]:
    """Responses with a known outcome: one unparsable letter, one wrong letter, the rest right."""
    responses, correct, unparsed = {}, 0, 0
    choice = [s for s in samples if s.metadata["answer_format"] == "choice"]
    for s in samples:
        if s is choice[0]:
            responses[s.id] = "E"  # not one of A-D: unparsed, wrong
            unparsed += 1
        elif s is choice[1]:
            wrong = next(c for c in "ABCD" if c != s.target)
            responses[s.id] = f"The answer is {wrong}."
        elif s.metadata["answer_format"] == "choice":
            responses[s.id] = f"({s.target}) that one"
            correct += 1
        else:
            responses[s.id] = f"{s.target}."
            correct += 1
    return responses, correct / len(samples), unparsed


# --------------------------------------------------------------------------- CLI
def test_score_cli_rescores_evalkit_and_lmms_eval_files(tmp_path, rw_data, cli):
    # 1. evalkit's own samples file, with one prediction edited after the run
    vq = write_image_qa_fixture("vqav2", tmp_path / "vqav2", n_rows=4, seed=9)
    task, samples = _task("vqav2", vq)
    first = run_fake(tmp_path / "run", "vqav2", vq, {s.id: "zzz" for s in samples})
    assert first["tasks"]["vqav2"]["metrics"]["vqa_accuracy"] == 0.0
    samples_file = tmp_path / "run" / "out-vqav2" / "samples" / "vqav2.jsonl"
    rows = _rows(samples_file)
    top = max(set(rows[0]["target"]), key=rows[0]["target"].count)
    rows[0]["prediction"] = top  # the majority answer (>= 4 of 10 annotators): VQA accuracy 1
    _write_jsonl(samples_file, rows)
    proc = cli("score", "task=vqav2", f"samples={samples_file}", f"task.dataset.path={vq}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(
        (tmp_path / "run" / "out-vqav2" / "results.json").read_text()
    )  # written beside the samples
    assert res["tasks"]["vqav2"]["metrics"]["vqa_accuracy"] == pytest.approx(1 / 4)
    assert res["provenance"]["rescored_format"] == "evalkit" and res["provenance"]["rescored_from"] == str(
        samples_file
    )
    assert res["model"]["backend"] == "fake"  # the original run's model block is kept

    # 2. an lmms-eval per-sample log (RealWorldQA has no id column: matched by doc_id, checked by question)
    task, samples = _task("realworldqa", rw_data)
    responses, accuracy, unparsed = _realworldqa_responses(samples)
    import pyarrow.parquet as pq

    table = pq.read_table(rw_data / "data" / "test-00000-of-00001.parquet").drop(["image"]).to_pylist()
    lines = [
        lmms_eval_log_entry(i, {**doc, "image": "<PIL>"}, doc["question"], responses[str(i)], doc["answer"],
                            {"exact_match": 0.0}, task="realworldqa")
        for i, doc in enumerate(table)
    ]  # fmt: skip
    log = _write_jsonl(tmp_path / "lmms" / "qwen2_vl" / "20261122_101010_samples_realworldqa.jsonl", lines)
    out = tmp_path / "lmms-out"
    proc = cli(
        "score", "task=realworldqa", f"samples={log}", f"task.dataset.path={rw_data}", f"output_dir={out}"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((out / "results.json").read_text())
    t = res["tasks"]["realworldqa"]
    assert t["metrics"]["accuracy"] == pytest.approx(accuracy) and t["counts"]["unparsed"] == unparsed
    assert res["provenance"]["rescored_format"] == "lmms_eval"
    scored = _rows(out / "samples" / "realworldqa.jsonl")
    assert [r["prediction"] for r in scored] == [responses[str(i)] for i in range(len(table))]
    assert scored[0]["prompt"] == table[0]["question"]  # lmms-eval's arguments[0]
    assert "accuracy" in proc.stdout


# --------------------------------------------------------------------------- lmms-eval, in-process
def _mtvqa_data(tmp_path: Path) -> Path:
    return write_image_qa_fixture("mtvqa", tmp_path / "mtvqa", n_rows=4, seed=3)


def test_lmms_eval_mtvqa_matched_by_question_id_with_bad_predictions(tmp_path):
    data = _mtvqa_data(tmp_path)
    task, samples = _task("mtvqa", data)
    entries = []
    for n, s in enumerate(samples):
        doc = {"question_id": s.id, "id": s.id.split("_")[0], "category": s.metadata["language"],
               "question": task.sample_question(s), "answer": s.target, "image": None}  # fmt: skip
        entries.append(lmms_eval_log_entry(n, doc, doc["question"], f"Antwort: {s.target}.", s.target))
    entries[1]["resps"] = [[{"text": "not a string"}]]  # a non-string prediction -> score error
    entries[1]["filtered_resps"] = [{"text": "x"}]
    entries[2]["resps"], entries[2]["filtered_resps"] = [], []  # no response at all -> model error
    random.Random(0).shuffle(entries)  # ids, not order, decide
    log = _write_jsonl(tmp_path / "samples_mtvqa.jsonl", entries)
    assert detect_format(log) == "lmms_eval"
    res = rescore(
        ["task=mtvqa", f"samples={log}", f"task.dataset.path={data}", f"output_dir={tmp_path / 'o'}", LENIENT]
    )
    t = res["tasks"]["mtvqa"]
    assert t["n_samples"] == len(samples) and t["n_errors"] == 2
    assert t["metrics"]["accuracy_micro"] == 1.0  # every other answer contains its gold answer
    rows = {r["id"]: r for r in _rows(tmp_path / "o" / "samples" / "mtvqa.jsonl")}
    assert rows[samples[1].id]["error_type"] == "score" and "not a string" in rows[samples[1].id]["error"]
    assert rows[samples[2].id]["error_type"] == "model"


def test_lmms_eval_older_json_logs_are_read(tmp_path, rw_data):
    task, samples = _task("realworldqa", rw_data)
    entries = [lmms_eval_log_entry(i, {"question": task.sample_question(s)}, "p", s.target, s.target)
               for i, s in enumerate(samples)]  # fmt: skip
    extra = dict(entries[0], filtered_resps=["A"])  # the same document under a second filter
    path = tmp_path / "realworldqa.json"
    path.write_text(json.dumps({"args": {}, "model_configs": {}, "logs": [*entries, extra]}))
    preds = read_lmms_eval(path)
    assert [p.position for p in preds] == list(range(len(samples))) and preds[0].prediction == samples[
        0
    ].target
    res = rescore(
        [
            "task=realworldqa",
            f"samples={path}",
            f"task.dataset.path={rw_data}",
            f"output_dir={tmp_path / 'o'}",
        ]
    )
    assert res["tasks"]["realworldqa"]["metrics"]["accuracy"] == 1.0


def test_positional_file_of_another_task_is_refused(tmp_path, rw_data):
    cols, features = chartqa_split(6, seed=1)
    cq = write_split(tmp_path / "cq" / "data" / "test-00000-of-00001.parquet", cols, features).parent.parent
    entries = [lmms_eval_log_entry(i, {"question": q, "type": "human_test"}, q, "1", "1")
               for i, q in enumerate(cols["question"])]  # fmt: skip
    log = _write_jsonl(tmp_path / "samples_chartqa.jsonl", entries)
    with pytest.raises(
        UsageError, match=r"6 question\(s\) differ from the dataset's \(first ids: 0, 1, 2, 3, 4\)"
    ):
        rescore(
            [
                "task=realworldqa",
                f"samples={log}",
                f"task.dataset.path={rw_data}",
                f"output_dir={tmp_path / 'o'}",
            ]
        )
    # the same file scores against its own task
    res = rescore(
        ["task=chartqa", f"samples={log}", f"task.dataset.path={cq}", f"output_dir={tmp_path / 'c'}"]
    )
    assert res["tasks"]["chartqa"]["n_samples"] == 6


def test_mismatched_ids_are_counted_and_listed(tmp_path):
    data = write_image_qa_fixture("vqav2", tmp_path / "vqav2", n_rows=6, seed=2)
    task, samples = _task("vqav2", data)
    rows = [{"id": s.id, "prediction": "yes", "prompt": None} for s in samples[2:]]
    rows += [{"id": "999001", "prediction": "no"}, {"id": "999002", "prediction": "no"}]
    path = _write_jsonl(tmp_path / "samples" / "vqav2.jsonl", rows)
    with pytest.raises(UsageError) as info:
        rescore(["task=vqav2", f"samples={path}", f"task.dataset.path={data}"])
    msg = str(info.value)
    assert "2 id(s) in the samples file are not in the dataset (first: 999001, 999002)" in msg
    assert f"2 dataset id(s) have no prediction (first: {samples[0].id}, {samples[1].id})" in msg
    # with limit, only the first n samples need a prediction; ids beyond it are not "unknown"
    path = _write_jsonl(
        tmp_path / "full" / "samples" / "vqav2.jsonl", [{"id": s.id, "prediction": "yes"} for s in samples]
    )
    res = rescore(["task=vqav2", f"samples={path}", f"task.dataset.path={data}", "limit=2"])
    assert res["tasks"]["vqav2"]["n_samples"] == 2


def _lmms_073_lines(task, samples, responses, shift: int = 0) -> list[dict]:
    """lmms-eval 0.7.3 log lines: no ``doc``, the prompt in ``input``; ``shift`` mislabels doc_ids."""
    n = len(samples)
    return [
        {"doc_id": (k + shift) % n, "input": task.sample_question(s), "target": s.target,
         "resps": [[responses[s.id]]], "filtered_resps": [responses[s.id]]}
        for k, s in enumerate(samples)
    ]  # fmt: skip


def test_lmms_eval_073_log_without_doc_is_checked_against_its_input(tmp_path, rw_data):
    task, samples = _task("realworldqa", rw_data)
    responses, accuracy, _ = _realworldqa_responses(samples)
    assert len({task.sample_question(s) for s in samples}) == len(samples)  # distinct questions
    good = _write_jsonl(
        tmp_path / "good" / "x_samples_realworldqa.jsonl", _lmms_073_lines(task, samples, responses)
    )
    assert read_lmms_eval(good)[0].question == task.sample_question(samples[0])  # taken from `input`
    res = rescore(
        [
            "task=realworldqa",
            f"samples={good}",
            f"task.dataset.path={rw_data}",
            f"output_dir={tmp_path / 'g'}",
        ]
    )
    assert res["tasks"]["realworldqa"]["metrics"]["accuracy"] == pytest.approx(accuracy)
    # doc_ids shifted by one: every line's input names another question -> refused, not scored
    lines = _lmms_073_lines(task, samples, responses, shift=1)
    shifted = _write_jsonl(tmp_path / "shifted" / "x_samples_realworldqa.jsonl", lines)
    with pytest.raises(UsageError, match=rf"{len(samples)} question\(s\) differ from the dataset's"):
        rescore(["task=realworldqa", f"samples={shifted}", f"task.dataset.path={rw_data}",
                 f"output_dir={tmp_path / 's'}"])  # fmt: skip
    # the documented escape hatch still works
    res = rescore(["task=realworldqa", f"samples={shifted}", f"task.dataset.path={rw_data}",
                   f"output_dir={tmp_path / 'n'}", "check_questions=false"])  # fmt: skip
    assert res["tasks"]["realworldqa"]["n_samples"] == len(samples)


# --------------------------------------------------------------------------- VLMEvalKit
def test_vlmevalkit_empty_prediction_cell_is_an_empty_answer(tmp_path, rw_data):
    task, samples = _task("realworldqa", rw_data)
    responses, _, _ = _realworldqa_responses(samples)
    right = {s.id for s in samples if responses[s.id] in (f"({s.target}) that one", f"{s.target}.")}
    blank = next(s for s in samples if s.id in right)
    table = [
        {"index": int(s.id), "question": task.sample_question(s), "answer": s.target,
         "prediction": None if s is blank else responses[s.id]}
        for s in samples
    ]  # fmt: skip
    xlsx = write_xlsx(tmp_path / "Qwen2-VL-7B_RealWorldQA.xlsx", table)
    preds = read_vlmevalkit(xlsx)
    assert preds[int(blank.id)].prediction == ""
    res = rescore(
        [
            "task=realworldqa",
            f"samples={xlsx}",
            f"task.dataset.path={rw_data}",
            f"output_dir={tmp_path / 'x'}",
        ]
    )
    t = res["tasks"]["realworldqa"]
    # the sample stays in: scored as a wrong (unparsed) answer, not dropped as an error
    assert t["n_errors"] == 0 and t["n_scored"] == len(samples)
    assert t["metrics"]["accuracy"] == pytest.approx((len(right) - 1) / len(samples))
    # the TSV with the same empty cell gives the same numbers
    import pandas as pd

    tsv = tmp_path / "Qwen2-VL-7B_RealWorldQA.tsv"
    pd.DataFrame([{**r, "prediction": r["prediction"] or ""} for r in table]).to_csv(
        tsv, sep="\t", index=False
    )
    res = rescore(
        ["task=realworldqa", f"samples={tsv}", f"task.dataset.path={rw_data}", f"output_dir={tmp_path / 't'}"]
    )
    assert res["tasks"]["realworldqa"]["metrics"] == t["metrics"]


def test_vlmevalkit_xlsx_and_tsv(tmp_path, rw_data):
    task, samples = _task("realworldqa", rw_data)
    responses, accuracy, unparsed = _realworldqa_responses(samples)
    free = next(s for s in samples if s.metadata["answer_format"] == "free")
    responses[free.id] = int(free.target)  # spreadsheets store "3" as the number 3
    table = [
        {"index": int(s.id), "question": task.sample_question(s), "answer": s.target, "prediction": responses[s.id],
         "category": "spatial"}
        for s in samples
    ]  # fmt: skip
    xlsx = write_xlsx(tmp_path / "Qwen2-VL-7B_RealWorldQA.xlsx", table)
    assert detect_format(xlsx) == "vlmevalkit"
    assert read_vlmevalkit(xlsx)[int(free.id)].prediction == free.target
    res = rescore(
        [
            "task=realworldqa",
            f"samples={xlsx}",
            f"task.dataset.path={rw_data}",
            f"output_dir={tmp_path / 'x'}",
        ]
    )
    t = res["tasks"]["realworldqa"]
    assert t["metrics"]["accuracy"] == pytest.approx(accuracy) and t["counts"]["unparsed"] == unparsed

    # a TSV whose index is VLMEvalKit's own numbering: matched by row order, checked by question
    import pandas as pd

    frame = pd.DataFrame([{**r, "index": 5000 + n} for n, r in enumerate(table)])
    tsv = tmp_path / "Qwen2-VL-7B_RealWorldQA.tsv"
    frame.to_csv(tsv, sep="\t", index=False)
    res = rescore(
        ["task=realworldqa", f"samples={tsv}", f"task.dataset.path={rw_data}", f"output_dir={tmp_path / 't'}"]
    )
    assert res["tasks"]["realworldqa"]["metrics"]["accuracy"] == pytest.approx(accuracy)
    frame.iloc[::-1].to_csv(tsv, sep="\t", index=False)  # shuffled rows no longer line up
    with pytest.raises(UsageError, match="question"):
        rescore(
            [
                "task=realworldqa",
                f"samples={tsv}",
                f"task.dataset.path={rw_data}",
                f"output_dir={tmp_path / 'r'}",
            ]
        )


def test_unknown_file_format_is_a_usage_error(tmp_path):
    path = tmp_path / "preds.jsonl"
    path.write_text('{"foo": 1}\n')
    with pytest.raises(UsageError, match="cannot tell the format"):
        rescore(["task=vqav2", f"samples={path}"])
    with pytest.raises(UsageError, match="unknown samples format 'csvx'"):
        rescore(["task=vqav2", f"samples={path}", "format=csvx"])


# --------------------------------------------------------------------------- bad input
def test_malformed_mtvqa_rows_become_error_records(tmp_path):
    _, features = mtvqa_split(1)
    rng = random.Random(1)
    good = repr([{"question": "Was steht da?", "answer": "Ausgang"}])
    rows = [
        (1, "DE", good, png_image(rng)),
        (2, "DE", "[{'question': 'x', 'answer'", png_image(rng)),  # unparsable
        (3, "FR", repr([{"question": "Quoi ?"}]), png_image(rng)),  # no answer
        (4, "IT", repr(["not a dict", {"question": "Cosa?", "answer": "Uscita"}]), png_image(rng)),
        (5, None, good, png_image(rng)),  # no language
        (6, "DE", good, {"bytes": b"not an image", "path": None}),  # corrupt image
        (7, "DE", "[]", png_image(rng)),  # no pairs
        (8, "RU", 42, png_image(rng)),  # not a string -> cast by parquet to "42": not a list
    ]
    cols = {"image": [r[3] for r in rows], "qa_pairs": [r[2] if isinstance(r[2], str) else str(r[2]) for r in rows],
            "lang": [r[1] for r in rows], "id": [r[0] for r in rows]}  # fmt: skip
    data = write_split(tmp_path / "m" / "data" / "test-00000-of-00001.parquet", cols, features).parent.parent
    answers = {"1_0": "Ausgang", "4_1": "uscita!", "5_0": "Ausgang", "6_0": "Ausgang"}
    t = run_fake(tmp_path, "mtvqa", data, answers)["tasks"]["mtvqa"]
    out = {r["id"]: r for r in _rows(tmp_path / "out-mtvqa" / "samples" / "mtvqa.jsonl")}
    expect = {
        "2_qa_pairs": "malformed qa_pairs: not a JSON/Python list",
        "3_0": "missing or empty 'answer'",
        "4_0": "expected a dict",
        "5_0": "missing or empty 'lang'",
        "6_0": "cannot decode image",
        "7_qa_pairs": "no QA pairs",
        "8_qa_pairs": "expected a list",
    }
    for sid, fragment in expect.items():
        assert out[sid]["error_type"] == "input" and fragment in out[sid]["error"], (sid, out[sid]["error"])
    assert t["n_samples"] == 9 and t["n_errors"] == 7 and t["n_scored"] == 2
    assert t["metrics"]["accuracy_micro"] == 1.0 and t["metrics"]["accuracy_de"] == 1.0


def test_missing_answers_and_bad_rows_in_vqa_tasks(tmp_path):
    # VQAv2: answers null, one answer not a string (a dict without 'answer'), corrupt image
    cols, features = vqav2_split(5, seed=4)
    cols["answers"][1] = None
    cols["answers"][2] = [{"answer": None, "answer_confidence": "yes", "answer_id": 1}]
    cols["image"][3] = {"bytes": b"", "path": None}
    data = write_split(
        tmp_path / "v" / "data" / "validation-00000-of-00001.parquet", cols, features
    ).parent.parent
    ids = [str(q) for q in cols["question_id"]]
    t = run_fake(tmp_path / "v", "vqav2", data, {i: "yes" for i in ids})["tasks"]["vqav2"]
    assert t["n_errors"] == 3 and t["n_scored"] == 2
    out = {r["id"]: r for r in _rows(tmp_path / "v" / "out-vqav2" / "samples" / "vqav2.jsonl")}
    assert "missing gold answers" in out[ids[1]]["error"]
    assert "must be strings" in out[ids[2]]["error"]
    assert out[ids[3]]["error_type"] == "input" and "image" in out[ids[3]]["error"]

    # ChartQA: a missing answer; AI2D: an answer index out of range / options missing
    cols, features = chartqa_split(3, seed=4)
    cols["answer"][0] = None
    data = write_split(tmp_path / "c" / "data" / "test-00000-of-00001.parquet", cols, features).parent.parent
    t = run_fake(tmp_path / "c", "chartqa", data, {"0": "1", "1": "1", "2": "1"})["tasks"]["chartqa"]
    assert t["n_errors"] == 1
    from evalkit.testing.image_qa import ai2d_split

    cols, features = ai2d_split(3, seed=4)
    cols["answer"][0] = "7"
    cols["options"][1] = []
    data = write_split(tmp_path / "a" / "data" / "test-00000-of-00001.parquet", cols, features).parent.parent
    t = run_fake(tmp_path / "a", "ai2d", data, {"0": "A", "1": "A", "2": "A"})["tasks"]["ai2d"]
    assert t["n_errors"] == 2 and t["n_scored"] == 1


@pytest.mark.parametrize("prediction", [42, None, ["A"], {"text": "A"}])
def test_non_string_predictions_are_score_errors(prediction, rw_data):
    task, samples = _task("realworldqa", rw_data)
    rec = Record(id=samples[0].id, prompt=None, prediction=prediction, target=samples[0].target)
    rec = score_record(task, samples[0], rec)
    assert rec.error_type == "score" and rec.scores == {} and "not a string" in rec.error


def test_extraction_is_what_the_metric_library_says(rw_data):
    """The task delegates to evalkit.metrics.extract_choice with the question's option texts."""
    task, samples = _task("realworldqa", rw_data)
    s = next(s for s in samples if s.metadata["answer_format"] == "choice")
    options = dict(
        line.split(". ", 1)
        for line in task.sample_question(s).splitlines()
        if line[:2] in ("A.", "B.", "C.", "D.")
    )
    text = options[s.target]
    assert task.extract(s, text) == extract_choice(text, "ABCD", options=options) == s.target

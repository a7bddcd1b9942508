"""MM-Vet: the judge-graded task on a hub-schema fixture with a scripted judge server (a real HTTP
server): grade parsing, per-capability scores by hand, repeated grading, the cache, refusal to run
without a judge, the judge identity in the results, and a real CLI run on the tiny model with
``evalkit score`` re-grading."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from evalkit.plugins.mmvet import GRADER_PROMPT_VERSION, grader_prompt, parse_grade, spaced_reference

from evalkit.api import IncompleteRunError, compose, evaluate
from evalkit.errors import UsageError
from evalkit.testing.mmvet import write_mmvet_fixture
from tests.conftest import read_samples
from tests.conftest import run_cli_here as run_cli
from tests.helpers.fake_chat_server import FakeChatServer

pytestmark = pytest.mark.filterwarnings("ignore:.*samples had errors:UserWarning")

#: the scripted grader: the grade depends on the model's prediction (the last table row)
GRADES = {"right": "1.0", "half": "0.5", "chatty": "Correctness: 0.7", "out": "1.5"}


def _grade_reply(body: dict) -> str:
    text = body["messages"][-1]["content"]
    last = text.rstrip().splitlines()[-1]
    prediction = last.rsplit(" | ", 2)[-1].rstrip(" |").strip() if " | " in last else ""
    if body.get("seed") == 1:  # the second grading run is stricter
        return "0.0"
    return GRADES.get(prediction, "0.0") if "Correctness" in text else "ok"


def _grading_calls(server: FakeChatServer) -> int:
    return sum(1 for r in server.chat_requests() if "Correctness" in str(r.body))


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_mmvet_fixture(tmp_path_factory.mktemp("mmvet"), n_rows=5)


def _fake_run(out: Path, data: Path, answers: dict[str, str], *overrides: str) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    answers_file = out / "answers.json"
    answers_file.write_text(json.dumps(answers))
    try:
        return evaluate("mmvet", "tiny", [f"task.dataset.path={data}", f"output_dir={out / 'out'}", "model.backend=fake",
                                          "+model.mode=table", f"+model.answers={answers_file}", "runner.progress=false",
                                          "runner.cache=false", *overrides])  # fmt: skip
    except IncompleteRunError as exc:  # error records above runner.max_error_rate: results still written
        return exc.results


def test_parse_grade_first_token():
    assert parse_grade("0.6") == 0.6 and parse_grade(" 1.0 because all parts match") == 1.0
    assert parse_grade("1") == 1.0 and parse_grade("0") == 0.0
    assert parse_grade("Correctness: 0.7") is None  # the first token is not a number
    assert parse_grade("1.5") is None and parse_grade("-0.1") is None and parse_grade("nan") is None
    assert (
        parse_grade("") is None and parse_grade("0.5\nsome reason") is None
    )  # official: split on spaces only


def test_grader_prompt_ends_with_the_row_to_complete():
    assert spaced_reference("a<AND>b<OR>c") == "a <AND> b <OR> c"
    prompt = grader_prompt("What is it?", "red<OR>dark red", "It is red.")
    lines = prompt.splitlines()
    assert lines[1] == "Question | Ground truth | Prediction | Correctness"
    assert lines[-1] == "What is it? | red <OR> dark red | It is red. |"
    assert "<AND>" in lines[0] and "<OR>" in lines[0] and "0.0" in lines[0] and "1.0" in lines[0]
    assert all(re.fullmatch(r".+ \| .+ \| .+ \| [01]\.\d", line) for line in lines[3:-1])  # few-shot rows


def test_scores_by_hand_per_capability_and_cached(data, tmp_path):
    answers = {"v1_0": "right", "v1_1": "half", "v1_2": "chatty", "v1_3": "out", "v1_4": "right"}
    with FakeChatServer(models=None, reply_fn=_grade_reply) as server:
        opts = ("judge=local", f"judge.base_url={server.url}")
        res = _fake_run(tmp_path / "a", data, answers, *opts)
        assert _grading_calls(server) == 5
        t = res["tasks"]["mmvet"]
        # grades: 1.0, 0.5, unparsed -> 0.0, out of range -> 0.0, 1.0
        assert t["metrics"]["score"] == pytest.approx(2.5 / 5)
        assert t["metrics"]["score_runs_std"] is None and t["paper_scale"] == 100
        caps = t["breakdowns"]["capability"]
        assert caps["ocr"]["score"] == pytest.approx(0.5) and caps["ocr"]["n"] == 2  # v1_0 (1.0), v1_3 (0.0)
        assert caps["rec"]["score"] == pytest.approx(1.5 / 3)  # v1_1 0.5, v1_2 0.0, v1_4 1.0
        assert caps["know"] == {"score": 1.0, "n": 1}
        assert t["breakdowns"]["integration"]["rec_spat"]["score"] == pytest.approx(0.5)
        assert t["counts"]["grades"] == 5 and t["counts"]["grades_unparsed"] == 2
        assert t["judge"]["name"] == "local" and t["judge"]["model"] == "judge"
        assert t["judge"]["prompt_version"] == GRADER_PROMPT_VERSION
        assert t["protocol"]["judge"]["model"] == "judge" and t["protocol"]["judge"]["repeats"] == 1
        rows = {r["id"]: r for r in read_samples(tmp_path / "a" / "out" / "samples" / "mmvet.jsonl")}
        assert (
            rows["v1_2"]["grades"][0]["reply"] == "Correctness: 0.7"
            and rows["v1_2"]["grades"][0]["grade"] is None
        )
        assert rows["v1_1"]["scores"] == {"score": 0.5}
        # the same answers graded again: every grade comes from the cache
        again = _fake_run(tmp_path / "b", data, answers, *opts)
        assert again["tasks"]["mmvet"]["metrics"]["score"] == t["metrics"]["score"]
        assert _grading_calls(server) == 5


def test_repeated_grading_averages_runs(data, tmp_path):
    answers = {f"v1_{i}": "right" for i in range(5)}
    with FakeChatServer(models=None, reply_fn=_grade_reply) as server:
        res = _fake_run(tmp_path, data, answers, "judge=local", f"judge.base_url={server.url}",
                        "task.grading.repeats=2")  # fmt: skip
        assert _grading_calls(server) == 10
    t = res["tasks"]["mmvet"]
    assert t["metrics"]["score"] == pytest.approx(0.5)  # run 1: all 1.0, run 2 (seed 1): all 0.0
    assert t["metrics"]["score_runs_std"] == pytest.approx(0.5)
    rows = read_samples(tmp_path / "out" / "samples" / "mmvet.jsonl")
    assert [g["grade"] for g in rows[0]["grades"]] == [1.0, 0.0]


def test_refuses_without_a_judge(data, tmp_path):
    with pytest.raises(UsageError, match="needs an LLM judge: pass judge=gpt-4-turbo"):
        _fake_run(tmp_path, data, {})
    cfg = compose("mmvet", "tiny", [f"task.dataset.path={data}", "judge=gpt-4-turbo"])
    assert cfg["task"]["judge"]["model"] == "gpt-4-turbo"


def test_failed_judge_request_is_an_error_record(data, tmp_path):
    def fault(seq: int, body: dict, attempt: int) -> str | None:
        return "400" if "| boom |" in str(body.get("messages")) else None

    answers = {"v1_0": "boom", "v1_1": "right"}
    with FakeChatServer(models=None, reply_fn=_grade_reply, fault_fn=fault) as server:
        t = _fake_run(tmp_path, data, answers, "judge=local", f"judge.base_url={server.url}",
                      "judge.max_retries=0", "limit=2")["tasks"]["mmvet"]  # fmt: skip
    assert t["n_errors"] == 1 and t["metrics"]["score"] == 1.0 and t["counts"]["grades_failed"] == 1
    rows = {r["id"]: r for r in read_samples(tmp_path / "out" / "samples" / "mmvet.jsonl")}
    assert rows["v1_0"]["error"].startswith("judge:") and rows["v1_0"]["error_type"] == "score"


def test_evalkit_judge_regrades_a_samples_file_with_another_judge(data, tmp_path):
    from evalkit.errors import UsageError
    from evalkit.judge.cli import judge_main

    answers = {"v1_0": "right", "v1_1": "half", "v1_2": "chatty", "v1_3": "out", "v1_4": "right"}
    with FakeChatServer(models=None, reply_fn=_grade_reply) as server:
        opts = ("judge=local", f"judge.base_url={server.url}")
        first = _fake_run(tmp_path / "a", data, answers, *opts)["tasks"]["mmvet"]
        samples = tmp_path / "a" / "out" / "samples" / "mmvet.jsonl"
        server.reset()
        # the same judge: every grade from the cache, the same score
        assert judge_main(["task=mmvet", f"samples={samples}", f"task.dataset.path={data}", *opts]) == 0
        assert _grading_calls(server) == 0
        again = json.loads((tmp_path / "a" / "out" / "results.json").read_text())["tasks"]["mmvet"]
        assert again["metrics"]["score"] == first["metrics"]["score"] == pytest.approx(2.5 / 5)
        # another judge model grades every sample again, into its own folder
        out2 = tmp_path / "regraded"
        assert judge_main(["task=mmvet", f"samples={samples}", f"task.dataset.path={data}", *opts,
                           "judge.model=judge-b", f"output_dir={out2}"]) == 0  # fmt: skip
        assert _grading_calls(server) == 5
        t2 = json.loads((out2 / "results.json").read_text())["tasks"]["mmvet"]
        assert t2["judge"]["model"] == "judge-b" and t2["metrics"]["score"] == pytest.approx(2.5 / 5)
    # a task without a judge phase is refused with the command that re-scores it
    with pytest.raises(
        UsageError, match="task docvqa_mini has no judge phase.*evalkit score task=docvqa_mini"
    ):
        judge_main(
            ["task=docvqa_mini", f"samples={samples}", "judge=local", "judge.base_url=http://127.0.0.1:9"]
        )


def test_cli_end_to_end_on_tiny_model_and_regrade(data, tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    with FakeChatServer(
        models=None, reply_fn=lambda body: "0.8" if "Correctness" in str(body) else "ok"
    ) as server:
        proc = run_cli("run", "task=mmvet", "model=hf", f"model.pretrained={tiny_model_dir}",
                       "model.max_pixels=50176", f"task.dataset.path={data}", "task.generation.max_new_tokens=4",
                       "judge=local", f"judge.base_url={server.url}", f"output_dir={out}",
                       "runner.progress=false")  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        t = json.loads((out / "results.json").read_text())["tasks"]["mmvet"]
        assert t["n_samples"] == 5 and t["metrics"]["score"] == pytest.approx(0.8)
        assert (out / "judgments" / "mmvet.jsonl").exists()
        # re-scoring the samples file with the same judge pays nothing again
        server.reset()
        proc = run_cli("score", "task=mmvet", f"samples={out}/samples/mmvet.jsonl", f"task.dataset.path={data}",
                       "judge=local", f"judge.base_url={server.url}")  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert _grading_calls(server) == 0
    # without a judge the CLI refuses with one line
    proc = run_cli("run", "task=mmvet", "model=tiny", "model.backend=fake", f"task.dataset.path={data}",
                   f"output_dir={tmp_path / 'nojudge'}", "runner.progress=false")  # fmt: skip
    lines = [x for x in proc.stderr.strip().splitlines() if x.strip()]
    assert proc.returncode != 0 and len(lines) == 1 and "needs an LLM judge" in lines[0]


def test_report_paper_flags_a_judge_other_than_the_papers(data, tmp_path):
    from evalkit.report.leaderboard import CIOptions, build_leaderboard
    from evalkit.report.loading import load_runs
    from evalkit.report.paper import compare_with_paper, judge_note, load_paper

    assert (
        judge_note({"judge": {"model": "gpt-4-turbo-2024-04-09"}}, "gpt-4-turbo") is None
    )  # a dated snapshot
    assert (
        judge_note({"judge": {"model": "gpt-4"}}, "gpt-4-turbo")
        == "judge differs: ours gpt-4, paper gpt-4-turbo"
    )
    assert judge_note({}, "gpt-4-turbo") == "judge not recorded; paper's judge gpt-4-turbo"
    assert judge_note({"judge": {"model": "x"}}, "") is None  # the paper names no judge

    answers = {f"v1_{i}": "right" for i in range(5)}
    pairs = {"tiny": "Qwen2-VL-7B-Instruct"}
    off = CIOptions(enabled=False)
    with FakeChatServer(models=None, reply_fn=_grade_reply) as server:
        _fake_run(tmp_path / "local", data, answers, "judge=local", f"judge.base_url={server.url}")
        _fake_run(tmp_path / "turbo", data, answers, "judge=local", f"judge.base_url={server.url}",
                  "judge.model=gpt-4-turbo-2024-04-09")  # fmt: skip
    for run, note in (("local", "judge differs: ours judge, paper gpt-4-turbo"), ("turbo", "")):
        board = build_leaderboard(load_runs([str(tmp_path / run / "out")]), ci=off)
        (comp,) = [c for c in compare_with_paper(board, load_paper("qwen2-vl"), off, model_pairs=pairs)
                   if c.task == "mmvet"]  # fmt: skip
        assert comp.paper == 62.0 and comp.ours == pytest.approx(100.0) and comp.note == note
    proc = run_cli("report", str(tmp_path / "local" / "out"), "--paper", "qwen2-vl", "--paper-model",
                   "tiny=Qwen2-VL-7B-Instruct", "--no-ci")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "judge differs: ours judge, paper gpt-4-turbo" in proc.stdout


def test_health_check_and_cost_cap(data, tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    out = tmp_path / "dead"
    with pytest.raises(Exception, match="LLM judge 'local'"):
        _fake_run(
            out, data, {}, "judge=local", f"judge.base_url=http://127.0.0.1:{port}/v1", "judge.max_retries=0"
        )
    assert not (out / "out" / "samples").exists()  # stopped before any model work

    answers = {f"v1_{i}": "right" for i in range(5)}
    with FakeChatServer(models=None, reply_fn=_grade_reply) as server:
        capped = ("judge=local", f"judge.base_url={server.url}", "judge.price_per_1k_input=10",
                  "judge.price_per_1k_output=10", "judge.max_cost=0.0001")  # fmt: skip
        with pytest.raises(Exception, match="judge.max_cost"):
            _fake_run(tmp_path / "capped", data, answers, *capped)
        assert _grading_calls(server) == 0  # the first grading request could already exceed the cap

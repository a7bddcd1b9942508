"""TouchStone with a scripted loopback judge: hand-computed aggregation (malformed and failed rounds
dropped and counted), cache, judge=none, health check before model work, CLI end to end, evalkit judge."""

from __future__ import annotations

import json
import math
import re
import socket
from pathlib import Path

import pytest

from evalkit.api import compose
from evalkit.errors import UsageError
from evalkit.judge.cli import judge_main
from evalkit.tasks.registry import build_task
from evalkit.testing.touchstone import write_touchstone_tsv
from evalkit.types import Record
from tests.conftest import read_samples
from tests.conftest import run_cli_here as run_cli
from tests.helpers.fake_chat_server import FakeChatServer

# item id -> (round 1 reply [reference first], round 2 reply [model first]); None = HTTP 400
SCRIPT = {
    "0": ("6 8", "9 5"),
    "1": ("7/10 and 8/10", "Assistant 1: 6\nAssistant 2: 7"),
    "2": ("5 5", "no number here"),
    "3": (None, "4 6"),
    "4": ("I'm sorry, I cannot rate this.", "7"),
    "5": ("3 9", "9 3"),
    "6": ("8 6", "7 7"),
    "7": ("10 2", "1 10"),
}


def _which(body: dict) -> tuple[str, int]:
    text = body["messages"][-1]["content"]
    item = re.search(r"PRED-(\d+)", text).group(1)
    model_first = "Assistant 1 - begin]\nPRED-" in text
    return item, 1 if model_first else 0


def scripted_reply(body: dict) -> str:
    if body["messages"][-1]["content"] == "ping":
        return "ok"
    item, r = _which(body)
    return SCRIPT[item][r] or ""


def scripted_fault(seq: int, body: dict, attempt: int) -> str | None:
    if body["messages"][-1]["content"] == "ping":
        return None
    item, r = _which(body)
    return "400" if SCRIPT[item][r] is None else None


@pytest.fixture(scope="module")
def tsv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_touchstone_tsv(tmp_path_factory.mktemp("touchstone") / "touchstone.tsv")


def _task(tsv: Path, url: str, out: Path, *extra: str):
    cfg = compose("touchstone", "tiny", ["judge=local", f"judge.base_url={url}", f"task.dataset.path={tsv}",
                                         f"output_dir={out}", *extra])  # fmt: skip
    return cfg, build_task(cfg["task"])


def _judge(tsv: Path, url: str, out: Path, *extra: str):
    cfg, task = _task(tsv, url, out, *extra)
    task.before_run(cfg, out)
    task.load()
    samples = task.samples()
    records = [Record(id=s.id, prompt="p", prediction=f"PRED-{s.id} answer", target=s.target,
                      metadata=dict(s.metadata)) for s in samples]  # fmt: skip
    records = task.after_generation(records, cfg, out)
    return task, records, task.aggregate(records)


def _judgment_calls(server: FakeChatServer) -> list:
    return [r for r in server.chat_requests() if r.body and r.body["messages"][-1]["content"] != "ping"]


def test_aggregation_matches_hand_computed(tsv: Path, tmp_path: Path) -> None:
    with FakeChatServer(models=None, reply_fn=scripted_reply, fault_fn=scripted_fault) as server:
        task, records, result = _judge(tsv, server.url, tmp_path / "a")
        assert len(_judgment_calls(server)) == 16
        out = result.to_json()
    m = out["metrics"]
    # valid rounds, (model, reference) per round: 0: (8,6) (9,5); 1: (8,7) (6,7); 2: (5,5); 3: (4,6);
    # 4: none; 5: (9,3) (9,3); 6: (6,8) (7,7); 7: (2,10) (1,10) -> the official pooling over 12 rounds
    assert m["score"] == pytest.approx((8 + 9 + 8 + 6 + 5 + 4 + 9 + 9 + 6 + 7 + 2 + 1) / 12 * 100)
    assert m["score"] == pytest.approx(74 / 12 * 100)
    assert m["reference_score"] == pytest.approx((6 + 5 + 7 + 7 + 5 + 6 + 3 + 3 + 8 + 7 + 10 + 10) / 12 * 100)
    assert m["ratio"] == pytest.approx(74 / 77)
    # item model means (1-10): 8.5, 7, 5, 4, [4: no valid round], 9, 6.5, 1.5 (secondary metric)
    assert m["score_item_mean"] == pytest.approx((8.5 + 7 + 5 + 4 + 9 + 6.5 + 1.5) / 7 * 100)
    assert m["reference_score_item_mean"] == pytest.approx((5.5 + 7 + 5 + 6 + 3 + 7.5 + 10) / 7 * 100)
    assert m["score"] != pytest.approx(m["score_item_mean"])  # rounds were dropped
    assert m["position_bias"] == pytest.approx((1 - 1 + 0 + 1 - 0.5) / 5)
    assert "score_pooled_rounds" not in m
    assert out["main_metric"] == "score" and out["paper_scale"] == 1
    assert out["n_samples"] == 8 and out["n_scored"] == 7 and out["n_errors"] == 1
    c = out["counts"]
    assert (c["rounds"], c["rounds_ok"], c["rounds_dropped"], c["rounds_failed"], c["rounds_unparsed"]) == (
        16, 12, 4, 1, 3)  # fmt: skip
    assert (c["items_one_round"], c["items_no_valid_round"]) == (2, 1)
    assert c["rounds_dropped_refusal"] == 1 and c["rounds_dropped_one_number"] == 1
    assert c["rounds_dropped_no_number"] == 1 and c["rounds_dropped_error"] == 1
    assert sorted(out["judge"]["dropped_rounds"]) == sorted(
        ["2#r2 (no_number)", "3#r1 (error)", "4#r1 (refusal)", "4#r2 (one_number)"]
    )
    assert "3#r1 (error)" in out["notes"]["dropped_rounds"]
    ab = out["breakdowns"]["ability"]
    assert list(ab) == ["Basic description", "Visual recognition", "Visual comprehension",
                        "Visual storytelling", "Multi-image analysis"]  # fmt: skip
    assert ab["Basic description"]["score"] == pytest.approx(850)
    # items 1, 2 (one valid round) and 7: pooled over their 5 rounds, not the mean of 3 items
    assert ab["Visual recognition"]["score"] == pytest.approx((8 + 6 + 5 + 2 + 1) / 5 * 100)
    assert ab["Visual recognition"]["score_item_mean"] == pytest.approx((7 + 5 + 1.5) / 3 * 100)
    assert ab["Visual recognition"]["n"] == 3
    assert ab["Visual comprehension"] == {
        "score": pytest.approx(400),
        "reference_score": pytest.approx(600),
        "score_item_mean": pytest.approx(400),
        "n": 1,
    }
    assert ab["Multi-image analysis"]["score"] == pytest.approx(650)
    cat = out["breakdowns"]["category"]
    assert cat["recognition"]["n"] == 3 and cat["ocr"]["score"] == pytest.approx(700)
    assert cat["humor"]["score"] == pytest.approx(400) and cat["literature"]["score"] == pytest.approx(900)
    rec4 = next(r for r in records if r.id == "4")
    assert rec4.error_type == "score" and rec4.error.startswith("judge: no valid round")
    rec0 = next(r for r in records if r.id == "0")
    assert rec0.scores == {
        "score": pytest.approx(850),
        "reference_score": pytest.approx(550),
        "position_bias": 1.0,
    }
    assert [r["status"] for r in rec0.extra["judge"]["rounds"]] == ["ok", "ok"]
    assert out["judge"]["input_tokens"] > 0 and out["judge"]["estimated_cost"] is None
    assert (tmp_path / "a" / "touchstone_radar.png").stat().st_size > 1000
    assert out["protocol"]["judge"]["prompt_version"] == "touchstone-judge-1"


def test_second_scoring_reuses_cached_judgments(tsv: Path, tmp_path: Path) -> None:
    with FakeChatServer(models=None, reply_fn=scripted_reply, fault_fn=scripted_fault) as server:
        _, _, first = _judge(tsv, server.url, tmp_path / "a")
        server.reset()
        # a fresh output dir (no judgment log): everything comes from the content-addressed cache,
        # except the one round that failed (failures are never cached)
        _, _, second = _judge(tsv, server.url, tmp_path / "b")
        calls = _judgment_calls(server)
    assert len(calls) == 1 and _which(calls[0].body) == ("3", 0)
    assert second.metrics == first.metrics


def test_multi_image_item_sends_all_images(tsv: Path, tmp_path: Path) -> None:
    cfg, task = _task(tsv, "http://127.0.0.1:9/v1", tmp_path)
    task.load()
    samples = {s.id: s for s in task.samples()}
    assert len(task.build_request(samples["6"]).images) == 2
    assert len(task.build_request(samples["7"]).images) == 1
    assert samples["1"].metadata["category"] == ["recognition", "ocr"]


def test_judge_none_refuses(tsv: Path, tmp_path: Path) -> None:
    cfg = compose("touchstone", "tiny", [f"task.dataset.path={tsv}", f"output_dir={tmp_path}"])
    task = build_task(cfg["task"])
    with pytest.raises(UsageError, match="needs an LLM judge: pass judge=gpt-4"):
        task.before_run(cfg, tmp_path)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_cli_health_check_failure_stops_before_model_work(tsv: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_cli("run", "task=touchstone", "model=tiny", "model.backend=fake", f"task.dataset.path={tsv}",
                   "judge=local", f"judge.base_url=http://127.0.0.1:{_closed_port()}/v1", "judge.max_retries=0",
                   f"output_dir={out}", "runner.progress=false", timeout=300)  # fmt: skip
    assert proc.returncode != 0
    lines = [x for x in proc.stderr.strip().splitlines() if x.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("evalkit: error: LLM judge 'local'") and "cannot reach" in lines[0]
    assert not (out / "parts").exists() and not (out / "samples").exists()


def test_cli_end_to_end_and_rejudge(tsv: Path, tmp_path: Path, tiny_model_dir: Path) -> None:
    def reply(body: dict) -> str:
        return "8 8" if body.get("model") == "judge-b" else "6 7"

    out = tmp_path / "run"
    with FakeChatServer(models=None, reply_fn=reply) as server:
        proc = run_cli("run", "task=touchstone", "model=hf", f"model.pretrained={tiny_model_dir}",
                       "model.max_pixels=12544", "task.generation.max_new_tokens=8", f"task.dataset.path={tsv}",
                       "judge=local", f"judge.base_url={server.url}", f"output_dir={out}",
                       "runner.progress=false", timeout=600)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert len(_judgment_calls(server)) == 16
        results = json.loads((out / "results.json").read_text())
        t = results["tasks"]["touchstone"]
        assert t["metrics"]["score"] == pytest.approx(650)  # round 1: model 7, round 2: model 6
        assert t["metrics"]["reference_score"] == pytest.approx(650)
        assert t["metrics"]["position_bias"] == pytest.approx(-1.0)
        assert len(t["breakdowns"]["ability"]) == 5
        assert t["judge"]["name"] == "local" and results["config"]["task"]["judge"]["name"] == "local"
        assert (out / "touchstone_radar.png").stat().st_size > 1000
        samples = read_samples(out / "samples" / "touchstone.jsonl")
        assert len(samples) == 8 and all(len(s["judge"]["rounds"]) == 2 for s in samples)
        assert (out / "judgments" / "touchstone.jsonl").exists()

        # evalkit judge, same judge: nothing is paid again
        server.reset()
        assert judge_main(["task=touchstone", f"samples={out}/samples/touchstone.jsonl", "judge=local",
                           f"judge.base_url={server.url}", f"task.dataset.path={tsv}"]) == 0  # fmt: skip
        assert _judgment_calls(server) == []
        again = json.loads((out / "results.json").read_text())["tasks"]["touchstone"]
        assert again["metrics"]["score"] == pytest.approx(650)

        # another judge model re-judges every round, into its own output dir
        server.reset()
        out2 = tmp_path / "rejudged"
        assert judge_main(["task=touchstone", f"samples={out}/samples/touchstone.jsonl", "judge=local",
                           f"judge.base_url={server.url}", "judge.model=judge-b", f"task.dataset.path={tsv}",
                           f"output_dir={out2}"]) == 0  # fmt: skip
        assert len(_judgment_calls(server)) == 16
        t2 = json.loads((out2 / "results.json").read_text())["tasks"]["touchstone"]
        assert t2["metrics"]["score"] == pytest.approx(800) and t2["metrics"]["ratio"] == pytest.approx(1.0)
        assert (out2 / "touchstone_radar.png").exists()
    assert not math.isnan(t2["metrics"]["position_bias"])

"""PerceptionTest and EgoSchema on hub-schema fixtures.

* end to end through the real CLI on the tiny Qwen2-VL (shared frame protocol, bad videos as input
  errors, breakdowns by area/reasoning/tag);
* exact accuracy and breakdowns on a scripted backend, computed by hand from the fixture rows;
* hidden-answer sets (PerceptionTest test, EgoSchema full) -> submission files with the predicted
  option index (-1 for unparsed answers and bad videos).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from evalkit.plugins.video_extra import strip_option_label

from evalkit.api import compose
from evalkit.media.synthetic import decode_index
from evalkit.tasks.registry import build_task
from evalkit.testing.video_extra import write_egoschema_fixture, write_perceptiontest_fixture
from evalkit.testing.video_qa import BAD_KINDS
from tests.conftest import read_samples
from tests.conftest import run_cli_here as run_cli
from tests.helpers.fake_runs import fake_run_per_task

pytestmark = pytest.mark.filterwarnings("ignore:.*samples had errors:UserWarning")

SMALL = ["task.video.nframes=4", "model.video.min_pixels=3136", "model.video.max_pixels=3136"]
LETTERS = "ABCDE"


@pytest.fixture(scope="module")
def perception(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return write_perceptiontest_fixture(tmp_path_factory.mktemp("pt"), bad=BAD_KINDS, seed=3, test=True)


@pytest.fixture(scope="module")
def ego(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return write_egoschema_fixture(tmp_path_factory.mktemp("ego"), n_questions=5, bad=("missing", "garbage"))


def run_fake(tmp_path: Path, task: str, data: Path, answers: dict[str, str], *overrides: str) -> dict:
    """The scripted run of ``task`` (outputs in ``tmp_path/out-<task>``) at the small video settings."""
    return fake_run_per_task(tmp_path, task, data, answers, *SMALL, *overrides)


def pt_id(row: dict[str, Any]) -> str:
    return f"{row['video_name']}-{row['question_id']}"


def test_strip_option_label() -> None:
    assert strip_option_label("A. C is cooking", "A") == "C is cooking"
    assert strip_option_label("(B) red", "B") == "red"
    assert strip_option_label("it moves left", "A") == "it moves left"
    assert strip_option_label("A.", "A") == "A."  # a bare label is the option itself


def test_perceptiontest_cli_tiny_model(
    tmp_path: Path, tiny_model_dir: Path, perception: dict[str, Any]
) -> None:
    out = tmp_path / "out"
    proc = run_cli(
        "run", "task=perceptiontest_val_mc", "model=hf", f"model.pretrained={tiny_model_dir}",
        "model.dtype=float32", "model.device=cpu", f"task.dataset.path={perception['root']}",
        f"output_dir={out}", "runner.progress=false", "runner.max_error_rate=1", *SMALL,
    )  # fmt: skip
    # the fixture's bad videos are error records on purpose (runner.max_error_rate=1 above)
    assert proc.returncode == 0, proc.stderr[-3000:]
    t = json.loads((out / "results.json").read_text())["tasks"]["perceptiontest_val_mc"]
    good = [r for r in perception["rows"] if perception["kinds"][r["video_name"]] == "good"]
    assert t["n_samples"] == len(perception["rows"]) and t["n_errors"] == len(BAD_KINDS)
    assert t["n_scored"] == len(good) == 6
    assert set(t["breakdowns"]) == {"area", "reasoning", "tag"}
    assert t["protocol"]["video_sampling"]["nframes"] == 4
    samples = {s["id"]: s for s in read_samples(out / "samples" / "perceptiontest_val_mc.jsonl")}
    assert len(samples) == len(perception["rows"])  # ids unique although question_id repeats per video
    s = samples[pt_id(good[0])]
    assert len(s["video"]["indices"]) == 4 and "<|video_pad|>" in s["prompt"]
    assert (
        "A. it moves left\nB. it stays still\nC. it disappears\nAnswer with the option's letter"
        in s["prompt"]
    )
    errors = [s for s in samples.values() if s["error"] is not None]
    assert {e["error_type"] for e in errors} == {"input"}


def test_perceptiontest_exact_accuracy_and_breakdowns(tmp_path: Path, perception: dict[str, Any]) -> None:
    good = [r for r in perception["rows"] if perception["kinds"][r["video_name"]] == "good"]
    answers, right = {}, {}
    for k, r in enumerate(good):
        gold = LETTERS[int(r["answer_id"])]
        wrong = LETTERS[(int(r["answer_id"]) + 1) % 3]
        styles = [f"{gold}", f"The answer is {wrong}.", f"({gold}) {r['options'][int(r['answer_id'])]}",
                  "I am not sure.", f"{gold}.", wrong]  # fmt: skip
        answers[pt_id(r)] = styles[k]
        right[pt_id(r)] = k in (0, 2, 4)
    res = run_fake(tmp_path, "perceptiontest_val_mc", perception["root"], answers)
    t = res["tasks"]["perceptiontest_val_mc"]
    assert t["metrics"]["accuracy"] == pytest.approx(3 / 6)
    assert t["counts"]["unparsed"] == 1
    # breakdowns by hand: a question counts once per tag
    for key in ("area", "reasoning", "tag"):
        groups: dict[str, list[bool]] = {}
        for r in good:
            for g in r[key] if isinstance(r[key], list) else [r[key]]:
                groups.setdefault(g, []).append(right[pt_id(r)])
        assert t["breakdowns"][key] == {
            g: {"accuracy": pytest.approx(sum(v) / len(v)), "n": len(v)} for g, v in groups.items()
        }


def test_perceptiontest_test_split_writes_submission(tmp_path: Path, perception: dict[str, Any]) -> None:
    rows = perception["rows"]
    answers = {pt_id(r): ["B", "no idea", "C. it disappears"][k % 3] for k, r in enumerate(rows)}
    res = run_fake(tmp_path, "perceptiontest_test_mc", perception["root"], answers)
    t = res["tasks"]["perceptiontest_test_mc"]
    assert t["metrics"] == {"accuracy": None} or all(v is None for v in t["metrics"].values())
    sub = json.loads((tmp_path / "out-perceptiontest_test_mc" / t["submission_file"]).read_text())
    assert len(sub) == len(rows)
    by_id = {f"{e['video_name']}-{e['question_id']}": e for e in sub}
    for k, r in enumerate(rows):
        expected = [1, -1, 2][k % 3] if perception["kinds"][r["video_name"]] == "good" else -1
        assert by_id[pt_id(r)]["pred_id"] == expected, r
        assert by_id[pt_id(r)]["question"] == r["question"]


def test_egoschema_subset_exact_accuracy(tmp_path: Path, ego: dict[str, Any]) -> None:
    good = [r for r in ego["rows"] if ego["kinds"][r["video_idx"]] == "good"]
    answers = {}
    for k, r in enumerate(good):
        gold = LETTERS[int(r["answer"])]
        wrong = LETTERS[(int(r["answer"]) + 2) % 5]
        answers[r["video_idx"]] = [gold, f"{wrong}.", f"Answer: {gold}", "unsure", gold][k]
    res = run_fake(tmp_path, "egoschema_subset", ego["root"], answers)
    t = res["tasks"]["egoschema_subset"]
    assert t["metrics"]["accuracy"] == pytest.approx(3 / 5)
    assert t["n_errors"] == 2 and t["counts"]["unparsed"] == 1
    samples = {
        s["id"]: s
        for s in read_samples(tmp_path / "out-egoschema_subset" / "samples" / "egoschema_subset.jsonl")
    }
    prompt = samples[good[0]["video_idx"]]["prompt"]
    assert "\nA. C is cooking\nB. C is cleaning" in prompt and "A. A." not in prompt


def test_egoschema_full_set_submission(tmp_path: Path, ego: dict[str, Any]) -> None:
    answers = {r["video_idx"]: ["D", "E. C is gardening", "?"][k % 3] for k, r in enumerate(ego["rows"])}
    res = run_fake(tmp_path, "egoschema", ego["root"], answers)
    t = res["tasks"]["egoschema"]
    sub = json.loads((tmp_path / "out-egoschema" / t["submission_file"]).read_text())
    expected = {
        r["video_idx"]: ([3, 4, -1][k % 3] if ego["kinds"][r["video_idx"]] == "good" else -1)
        for k, r in enumerate(ego["rows"])
    }
    assert sub == expected


def test_shared_frame_protocol(perception: dict[str, Any]) -> None:
    """The task samples frames with the model preset's protocol (2 fps, even count) - no override."""
    cfg = compose("perceptiontest_val_mc", "tiny", [f"task.dataset.path={perception['root']}",
                                                   "model.video.min_pixels=3136", "model.video.max_pixels=3136"])  # fmt: skip
    task = build_task(cfg["task"])
    assert task.sampling.fps == 2.0 and task.sampling.max_frames == 768
    task.load()
    sample = next(s for s in task.samples() if perception["kinds"][s.metadata["video_name"]] == "good")
    (video,) = task.build_request(sample).videos
    indices = [decode_index(f) for f in video.frames]
    n_frames = 12  # first video: 6 s at 2 fps
    assert len(indices) == n_frames and indices == list(range(n_frames))

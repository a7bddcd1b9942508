"""Video QA tasks (Video-MME with/without subtitles, MVBench) on hub-schema fixtures.

* each task end to end through the real CLI on the tiny Qwen2-VL (frames as video input), with
  breakdown tables, per-sample timestamps and bad videos recorded as input errors;
* exact accuracy and ``unparsed`` on a scripted backend, computed by hand;
* subtitles chosen for the sampled frame times; MVBench clip bounds checked by decoding the frame
  indices the index-encoding videos carry.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from evalkit.plugins.video_qa import SubtitleCue, parse_srt, select_subtitles
from PIL import Image

from evalkit.api import compose
from evalkit.media.synthetic import decode_index, write_index_video
from evalkit.metrics.bootstrap import cluster_labels
from evalkit.metrics.choice import EXTRACTOR_VERSION
from evalkit.tasks.registry import build_task
from evalkit.testing.video_qa import BAD_KINDS, write_mvbench_fixture, write_srt, write_videomme_fixture
from tests.conftest import read_samples
from tests.conftest import run_cli_here as run_cli
from tests.helpers.fake_runs import fake_run_per_task

pytestmark = pytest.mark.filterwarnings("ignore:.*samples had errors:UserWarning")

#: small frames and a fixed count keep the tiny model fast (8 frames of 56 x 56)
SMALL = ["task.video.nframes=8", "model.video.min_pixels=3136", "model.video.max_pixels=3136"]
# the fixtures hold bad rows on purpose (error records are asserted); the run-level error gate
# (runner.max_error_rate) is tested on its own, so it is opened here
LENIENT = "runner.max_error_rate=1.0"
MV_TASKS = "task.tasks=[action_sequence,object_shuffle]"


@pytest.fixture(scope="module")
def videomme(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """3 good videos x 2 questions + one question per bad-video kind."""
    return write_videomme_fixture(tmp_path_factory.mktemp("videomme"), bad=BAD_KINDS, seed=1)


@pytest.fixture(scope="module")
def mvbench(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """action_sequence (clips) + object_shuffle, with a bound beyond the end, a 3-frame video and bad videos."""
    return write_mvbench_fixture(tmp_path_factory.mktemp("mvbench"), bad=("missing", "truncated"), seed=2)


def run_fake(tmp_path: Path, task: str, data: Path, answers: dict[str, str], *overrides: str) -> dict:
    """Evaluate in-process with the scripted backend answering by sample id (outputs in
    ``tmp_path/out-<task>``, small video settings; an incomplete run raises)."""
    return fake_run_per_task(
        tmp_path, task, data, answers, LENIENT, *SMALL, *overrides, allow_incomplete=False
    )


# ------------------------------------------------------------------------------ end to end (CLI)


def test_videomme_cli_tiny_model(tmp_path: Path, tiny_model_dir: Path, videomme: dict[str, Any]) -> None:
    out = tmp_path / "out"
    proc = run_cli(
        "run", "task=videomme", "model=hf", f"model.pretrained={tiny_model_dir}", "model.dtype=float32",
        "model.device=cpu", f"task.dataset.path={videomme['root']}", f"output_dir={out}", "runner.progress=false", LENIENT,
        *SMALL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "results.json").read_text())
    t = res["tasks"]["videomme"]
    good = [r for r in videomme["rows"] if videomme["videos"][r["videoID"]]["kind"] == "good"]
    assert t["n_samples"] == len(videomme["rows"]) and t["n_errors"] == len(BAD_KINDS)
    assert t["n_scored"] == len(good) == 6
    assert set(t["breakdowns"]) >= {"duration", "domain", "task_type"}
    assert set(t["breakdowns"]["duration"]) == {"short", "medium", "long"}
    assert sum(g["n"] for g in t["breakdowns"]["domain"].values()) == len(good)
    assert "unparsed" in t["counts"] and t["protocol"]["extractor_version"] == EXTRACTOR_VERSION
    # the resolved config and the protocol record the frame sampling that ran
    assert res["config"]["task"]["video"]["nframes"] == 8
    assert t["protocol"]["video_sampling"]["nframes"] == 8 and t["protocol"]["video_sampling"]["fps"] is None
    samples = read_samples(out / "samples" / "videomme.jsonl")
    by_id = {s["id"]: s for s in samples}
    for r in good:
        s = by_id[r["question_id"]]
        assert s["error"] is None and s["scores"]["accuracy"] in (0.0, 1.0)
        v = s["video"]
        assert len(v["indices"]) == len(v["timestamps"]) == 8
        assert v["timestamps"] == [pytest.approx(i / 2.0) for i in v["indices"]]
        assert v["indices"][-1] == videomme["videos"][r["videoID"]]["n_frames"] - 1
        assert v["frame_size"] == [56, 56]
        assert "<|video_pad|>" in s["prompt"] and "The best answer is:" in s["prompt"]
    errors = [s for s in samples if s["error"] is not None]
    assert len(errors) == len(BAD_KINDS) and all(s["error_type"] == "input" for s in errors)


def test_mvbench_cli_tiny_model(tmp_path: Path, tiny_model_dir: Path, mvbench: dict[str, Any]) -> None:
    out = tmp_path / "out"
    proc = run_cli(
        "run", "task=mvbench", "model=hf", f"model.pretrained={tiny_model_dir}", "model.dtype=float32",
        "model.device=cpu", f"task.dataset.path={mvbench['root']}", f"output_dir={out}", "runner.progress=false", LENIENT,
        MV_TASKS, *SMALL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    t = json.loads((out / "results.json").read_text())["tasks"]["mvbench"]
    n_items = sum(len(v) for v in mvbench["items"].values())
    assert t["n_samples"] == n_items and t["n_errors"] == 2  # missing + truncated
    assert t["main_metric"] == "accuracy_mean_over_tasks"
    assert t["aggregation"]["accuracy_mean_over_tasks"] == {
        "kind": "macro",
        "score": "accuracy",
        "group": "task_type",
    }
    per_task = t["breakdowns"]["task_type"]
    assert set(per_task) == {"action_sequence", "object_shuffle"}
    assert t["metrics"]["accuracy_mean_over_tasks"] == pytest.approx(
        sum(g["accuracy"] for g in per_task.values()) / 2
    )
    pooled = sum(g["accuracy"] * g["n"] for g in per_task.values()) / sum(g["n"] for g in per_task.values())
    assert t["metrics"]["accuracy"] == pytest.approx(pooled)
    samples = {s["id"]: s for s in read_samples(out / "samples" / "mvbench.jsonl")}
    assert samples["action_sequence-0"]["video"]["clip_seconds"] == [2.0, 8.0]
    assert samples["object_shuffle-0"]["video"]["clip_seconds"] == [None, None]


# ------------------------------------------------------------------------------ exact scores


def test_videomme_exact_accuracy_and_unparsed(tmp_path: Path, videomme: dict[str, Any]) -> None:
    rows = [r for r in videomme["rows"] if videomme["videos"][r["videoID"]]["kind"] == "good"]
    other = {"A": "B", "B": "C", "C": "D", "D": "A"}
    styles = [
        lambda g: f"The answer is {g}",  # right
        lambda g: f"Based on the video, {other[g]} is wrong; the answer is {g}",  # right (last cue)
        lambda g: f"Based on the video, {g} is wrong; the answer is {other[g]}",  # wrong
        lambda g: "Based on the video, I cannot tell.",  # unparsed: "Based" is not B
        lambda g: f"({g}) {g.lower()}",  # right (leading marker)
        lambda g: "no idea",  # unparsed
    ]
    answers = {r["question_id"]: styles[k](r["answer"]) for k, r in enumerate(rows)}
    res = run_fake(tmp_path, "videomme", videomme["root"], answers)
    t = res["tasks"]["videomme"]
    right = {rows[k]["question_id"] for k in (0, 1, 4)}
    assert t["metrics"]["accuracy"] == pytest.approx(3 / 6)
    # the official Video-MME script divides by the answered questions only: 3 right of 4 parsed
    assert t["metrics"]["accuracy_answered"] == pytest.approx(3 / 4)
    assert t["aggregation"]["accuracy_answered"] == {"kind": "mean", "score": "accuracy_answered"}
    assert t["counts"]["unparsed"] == 2 and t["n_errors"] == len(BAD_KINDS)
    for duration in ("short", "medium", "long"):
        ids = [r["question_id"] for r in rows if r["duration"] == duration]
        assert t["breakdowns"]["duration"][duration] == {
            "accuracy": pytest.approx(sum(i in right for i in ids) / len(ids)),
            "n": len(ids),
        }
    samples = {s["id"]: s for s in read_samples(tmp_path / "out-videomme" / "samples" / "videomme.jsonl")}
    assert samples[rows[3]["question_id"]]["extracted"] is None
    assert samples[rows[1]["question_id"]]["extracted"] == rows[1]["answer"]


def test_mvbench_exact_accuracy(tmp_path: Path, mvbench: dict[str, Any]) -> None:
    answers, right = {}, {}
    for task, items in mvbench["items"].items():
        for n, item in enumerate(items):
            gold = "ABCDE"[item["candidates"].index(item["answer"])]
            wrong = "A" if gold != "A" else "B"
            ok = n % 2 == 0 or task == "object_shuffle"
            answers[f"{task}-{n}"] = f"Best option: ({gold if ok else wrong})"
            right[f"{task}-{n}"] = ok
    res = run_fake(tmp_path, "mvbench", mvbench["root"], answers, MV_TASKS)
    t = res["tasks"]["mvbench"]
    samples = read_samples(tmp_path / "out-mvbench" / "samples" / "mvbench.jsonl")
    scored = [s for s in samples if s["error"] is None]
    per_task: dict[str, list[bool]] = {}
    for s in scored:
        per_task.setdefault(s["metadata"]["task_type"], []).append(right[s["id"]])
    assert t["metrics"]["accuracy"] == pytest.approx(sum(right[s["id"]] for s in scored) / len(scored))
    macro = sum(sum(v) / len(v) for v in per_task.values()) / len(per_task)
    assert t["metrics"]["accuracy_mean_over_tasks"] == pytest.approx(macro)
    assert t["metrics"]["accuracy"] != pytest.approx(macro)  # the fixture makes pooled and macro differ
    assert t["counts"]["unparsed"] == 0
    prompt = scored[0]["prompt"]
    # the official answer prefill follows the question (the scripted backend logs all text parts)
    assert "Options:\n(A) " in prompt and prompt.endswith("Only give the best option.\nBest option:(")


def test_mvbench_questions_on_one_video_form_one_cluster(tmp_path: Path) -> None:
    """Two object_shuffle questions and an action_count question on one video (both tasks read
    perception/videos), a third object_shuffle question on another: the first three share a
    cluster label (also in the samples file the report and the gate read), the fourth has its own."""
    root = tmp_path / "data"
    (root / "video" / "perception" / "videos").mkdir(parents=True)
    for name in ("a.mp4", "b.mp4"):
        write_index_video(root / "video" / "perception" / "videos" / name, n_frames=8, fps=2.0, gop=4)
    item = {"question": "Where is the ball?", "candidates": ["left", "right"], "answer": "left"}
    (root / "json").mkdir()
    (root / "json" / "object_shuffle.json").write_text(
        json.dumps([{**item, "video": v} for v in ("a.mp4", "a.mp4", "b.mp4")])
    )
    (root / "json" / "action_count.json").write_text(json.dumps([{**item, "video": "a.mp4"}]))
    tasks = "task.tasks=[object_shuffle,action_count]"
    task = build_task(compose("mvbench", "tiny", [f"task.dataset.path={root}", tasks, *SMALL])["task"])
    task.load()
    samples = task.samples()
    assert [s.id for s in samples] == [
        "object_shuffle-0",
        "object_shuffle-1",
        "object_shuffle-2",
        "action_count-0",
    ]
    assert task.cluster_key is not None
    labels, missing = cluster_labels([s.metadata for s in samples], task.cluster_key)
    assert labels is not None and missing == 0
    assert labels[0] == labels[1] == labels[3] != labels[2]
    res = run_fake(tmp_path, "mvbench", root, {s.id: "Best option: (A)" for s in samples}, tasks)
    assert res["tasks"]["mvbench"]["cluster_key"] == task.cluster_key
    written = {r["id"]: r for r in read_samples(tmp_path / "out-mvbench" / "samples" / "mvbench.jsonl")}
    assert all(r["error"] is None for r in written.values())
    labels, missing = cluster_labels([written[s.id]["metadata"] for s in samples], task.cluster_key)
    assert labels is not None and missing == 0 and labels[0] == labels[1] == labels[3] != labels[2]


# ------------------------------------------------------------------------------ subtitles


def test_srt_parsing_and_selection(tmp_path: Path) -> None:
    path = write_srt(
        tmp_path / "x.srt", [(0.0, 2.0, "one &amp; two"), (2.0, 4.5, "three"), (10.0, 11.0, "four")]
    )
    cues = parse_srt(path.read_text())
    assert [c.text for c in cues] == ["one & two", "three", "four"]
    assert (cues[1].start, cues[1].end) == (2.0, 4.5)
    assert [c.number for c in select_subtitles(cues, [2.0, 4.4])] == [2]  # end is exclusive, start inclusive
    assert select_subtitles(cues, [5.0, 9.9]) == []
    assert parse_srt("garbage\n\n1\nnot a time\ntext") == []
    assert select_subtitles([SubtitleCue(1, 0.0, 1.0, "a")], [0.0]) == [SubtitleCue(1, 0.0, 1.0, "a")]


def test_videomme_subs_at_sampled_times(tmp_path: Path, videomme: dict[str, Any]) -> None:
    answers = {r["question_id"]: "A" for r in videomme["rows"]}
    res = run_fake(tmp_path, "videomme_subs", videomme["root"], answers)
    assert res["tasks"]["videomme_subs"]["n_errors"] == len(BAD_KINDS)
    samples = read_samples(tmp_path / "out-videomme_subs" / "samples" / "videomme_subs.jsonl")
    rows = {r["question_id"]: r for r in videomme["rows"]}
    checked = n_hidden = 0
    for s in samples:
        if s["error"] is not None:
            continue
        cues = videomme["cues"][rows[s["id"]]["videoID"]]
        times = s["video"]["timestamps"]
        shown = [text for a, b, text in cues if any(a <= t < b for t in times)]
        hidden = [text for a, b, text in cues if text not in shown]
        assert shown
        n_hidden += len(hidden)
        assert s["prompt"].startswith("This video's subtitles are listed below:\n" + "\n".join(shown) + "\n")
        assert not any(h in s["prompt"] for h in hidden)
        assert len(s["video"]["subtitle_cues"]) == len(shown)
        checked += 1
    assert checked == 6 and n_hidden > 0  # longer videos have cues between the sampled frames


# ------------------------------------------------------------------------------ clip bounds


def test_mvbench_clip_bounds_decoded(mvbench: dict[str, Any]) -> None:
    cfg = compose("mvbench", "tiny", [f"task.dataset.path={mvbench['root']}", MV_TASKS, *SMALL])
    task = build_task(cfg["task"])
    task.load()
    samples = {s.id: s for s in task.samples()}
    fps = 2.0
    for n, item in enumerate(mvbench["items"]["action_sequence"]):
        if "bad" in item["video"]:
            continue
        sid = f"action_sequence-{n}"
        request = task.build_request(samples[sid])
        (video,) = request.videos
        decoded = [decode_index(f) for f in video.frames]
        record = task.record_extra(samples[sid], "A")["video"]
        assert decoded == record["indices"]
        assert list(video.timestamps) == pytest.approx([i / fps for i in decoded])
        first = math.ceil(item["start"] * fps)
        last = min(math.floor(item["end"] * fps), record["n_total_frames"] - 1)
        assert first <= min(decoded) and max(decoded) <= last
        assert decoded[0] == first and decoded[-1] == last
        if item["end"] > 20:  # bound beyond the end: clamped, with a note
            assert any("clamped" in note for note in record["notes"])
        if "short" in item["video"]:  # 3-frame clip: fewer frames than requested, documented fallback
            assert len(decoded) == 2 and record["notes"]
        else:
            assert len(decoded) == 8
    # whole-video task: no bounds
    request = task.build_request(samples["object_shuffle-0"])
    decoded = [decode_index(f) for f in request.videos[0].frames]
    assert decoded[0] == 0 and decoded[-1] == 39


def test_nframes_wins_over_preset_fps(videomme: dict[str, Any]) -> None:
    cfg = compose("videomme", "tiny", [f"task.dataset.path={videomme['root']}", "task.video.nframes=6"])
    assert cfg["task"]["video"]["fps"] == 2.0  # inherited from the model preset
    task = build_task(cfg["task"])
    assert task.sampling.nframes == 6 and task.sampling.fps is None
    cfg = compose("videomme", "tiny", [f"task.dataset.path={videomme['root']}", "model.video.max_frames=16"])
    assert build_task(cfg["task"]).sampling.max_frames == 16  # the preset's knobs flow into the task


# ------------------------------------------------------------------------------ MVBench answer prefill


def test_mvbench_prefills_the_answer_and_reads_the_letter_after_it(mvbench: dict[str, Any]) -> None:
    cfg = compose("mvbench", "tiny", [f"task.dataset.path={mvbench['root']}", MV_TASKS, *SMALL])
    task = build_task(cfg["task"])
    task.load()
    sample = next(s for s in task.samples() if s.id == "object_shuffle-0")
    request = task.build_request(sample)
    assert [m.role for m in request.messages] == ["system", "user", "assistant"]
    assert request.messages[-1].content[0].text == "Best option:("
    gold = task.gold_letter(sample)
    other = "A" if gold != "A" else "B"
    # the continuation of "Best option:(" is read with "(" put back, as the official evaluation does
    assert task.extract(sample, f"{gold}) {task.options(sample)[gold]}") == gold
    assert task.extract(sample, f"{other}) or ({gold})") is None  # two options named
    assert task.score(sample, gold)["accuracy"] == 1.0
    proto = task.protocol()
    assert (proto["answer_prefill"], proto["answer_prefill_return"]) == ("Best option:(", "(")
    assert proto["extractor_version"] == "choice-v2"
    # lmms-eval's preset: no prefill, no system prompt
    cfg = compose("mvbench", "tiny", [f"task.dataset.path={mvbench['root']}", MV_TASKS, *SMALL, "task.prompt=lmms_eval",
                                      "task.system_prompt=null", "task.answer_prefill=null"])  # fmt: skip
    plain = build_task(cfg["task"])
    plain.load()
    request = plain.build_request(sample)
    assert [m.role for m in request.messages] == ["user"] and plain.protocol()["answer_prefill"] is None
    assert plain.extract(sample, f"{gold}) x") == gold


def test_hf_backend_continues_a_prefilled_answer(tiny_model_dir: Path) -> None:
    from evalkit.models.base import build_model
    from evalkit.types import GenerationParams, ImagePart, Message, Request, TextPart, user_message

    cfg = compose("docvqa_mini", "tiny", [f"model.pretrained={tiny_model_dir}", "model.device=cpu"])
    model = build_model(cfg["model"])
    image = Image.new("RGB", (28, 28), "white")
    plain = Request("a", (user_message(ImagePart(image), "Q?"),), GenerationParams(max_new_tokens=2))
    filled = Request(
        "b",
        (user_message(ImagePart(image), "Q?"), Message("assistant", (TextPart("Best option:("),))),
        GenerationParams(max_new_tokens=2),
    )
    a, b = model.render_prompt(plain), model.render_prompt(filled)
    assert b == a + "Best option:("  # the open assistant turn, continued; no new turn after it

"""SEED-Bench: image and video likelihood tasks and the generative variants end to end on a
hub-schema fixture (tiny model); data_type filtering; Qwen-VL's 4-frame segment rule; the Qwen-VL
prompt (newline after every image) and candidates; lmms-eval's first-letter rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from evalkit.plugins.seedbench import SEEDBenchTask, seed_first_letter, segment_indices

from evalkit.testing.seedbench import write_seedbench_fixture
from tests.conftest import read_samples
from tests.conftest import run_cli_here as run_cli


@pytest.fixture(scope="module")
def seed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_seedbench_fixture(
        tmp_path_factory.mktemp("seed"), n_image=4, n_video=3, n_frames=8, seed=2, bad=True
    )


def _rows(root: Path) -> dict[str, dict]:
    import pyarrow.parquet as pq

    table = pq.read_table(root / "data" / "test-00000-of-00001.parquet").to_pylist()
    return {r["question_id"]: r for r in table}


def _task(name: str, seed_dir: Path, **overrides) -> SEEDBenchTask:
    cfg = yaml.safe_load(Path(f"configs/task/{name}.yaml").read_text())
    cfg["dataset"]["path"] = str(seed_dir)
    cfg.update(overrides)
    task = SEEDBenchTask(cfg)
    task.load()
    return task


def test_segment_indices_exact_values():
    # hand-computed: step (n - 1) / k, start int(step / 2), round half to even (as numpy's np.round)
    assert segment_indices(8, 4) == [0, 2, 4, 5]  # step 1.75: 0 + [0, 2 (1.75), 4 (3.5), 5 (5.25)]
    assert segment_indices(16, 4) == [1, 5, 9, 12]  # 1 + [0, 4, 8, 11]
    assert segment_indices(4, 4) == [0, 1, 2, 2]  # 0 + [0, 1, 2 (1.5 -> 2), 2 (2.25 -> 2)]
    assert segment_indices(3, 4) == [0, 1, 2]  # fewer frames than segments: all of them
    assert segment_indices(0, 4) == []


def test_data_type_filter_and_frames(seed_dir):
    rows = _rows(seed_dir)
    img = _task("seedbench_img", seed_dir)
    vid = _task("seedbench_video", seed_dir)
    assert {s.id for s in img.samples()} == {q for q, r in rows.items() if r["data_type"] == "image"}
    assert {s.id for s in vid.samples()} == {q for q, r in rows.items() if r["data_type"] == "video"}
    req = vid.build_request(vid.samples()[0])
    assert len(req.images) == 4
    # the fixture's frame k has red channel 10 * k: frames 0, 2, 4, 5 of 8 were taken
    assert [im.getpixel((0, 0))[0] for im in req.images] == [0, 20, 40, 50]
    assert req.kind == "choice_logprobs" and req.candidates == ("A", "B", "C", "D")
    two = _task("seedbench_video", seed_dir, frames=2)
    assert len(two.build_request(two.samples()[0]).images) == 2


def test_qwen_vl_prompt_puts_a_newline_after_every_image(seed_dir):
    rows = _rows(seed_dir)
    vid = _task("seedbench_video", seed_dir, prompt="qwen_vl")
    sample = vid.samples()[0]
    row = rows[sample.id]
    req = vid.build_request(sample)
    kinds = [p.type for p in req.messages[0].content]
    assert kinds == ["image", "text"] * 4 + ["text"]
    assert [p.text for p in req.messages[0].content if p.type == "text"][:4] == ["\n"] * 4
    opts = "\n".join(f"{L}. {row['choice_' + L.lower()]}" for L in "ABCD")
    assert req.messages[0].content[-1].text == f"Question: {row['question']}\nOptions: {opts}\nAnswer:"
    assert req.candidates == (" A", " B", " C", " D")


@pytest.mark.parametrize("task", ["seedbench_img", "seedbench_video"])
def test_likelihood_end_to_end(task, seed_dir, tmp_path):
    out = tmp_path / task
    proc = run_cli("run", f"task={task}", "model=tiny", f"task.dataset.path={seed_dir}", "runner.max_error_rate=1",
                   f"output_dir={out}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = _rows(seed_dir)
    records = read_samples(out / "samples" / f"{task}.jsonl")
    kind = "image" if task == "seedbench_img" else "video"
    assert {r["id"] for r in records} == {q for q, r in rows.items() if r["data_type"] == kind}
    correct = []
    for rec in records:
        if rec["error"]:
            assert rec["error_type"] == "input"
            continue
        best = max(rec["logprobs"], key=lambda c: c["mean"])["candidate"]
        assert rec["prediction"] == best
        correct.append(float(best == rows[rec["id"]]["answer"]))
        assert rec["scores"]["accuracy"] == correct[-1]
    assert len(correct) == (4 if kind == "image" else 3)
    n_errors = sum(1 for r in records if r["error"])
    assert n_errors == (3 if kind == "image" else 0)  # corrupt image, empty list, gold "E"
    result = json.loads((out / "results.json").read_text())["tasks"][task]
    assert result["metrics"]["accuracy"] == pytest.approx(sum(correct) / len(correct))
    assert "question_type_id" in result["breakdowns"]


def test_generative_video_variant_end_to_end(seed_dir, tmp_path):
    out = tmp_path / "gen"
    proc = run_cli("run", "task=seedbench_video_gen", "model=tiny", f"task.dataset.path={seed_dir}",
                   f"output_dir={out}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = _rows(seed_dir)
    for rec in read_samples(out / "samples" / "seedbench_video_gen.jsonl"):
        assert rec["error"] is None and "logprobs" not in rec
        first = rec["prediction"].strip()[:1]
        assert rec["scores"]["accuracy"] == float(first == rows[rec["id"]]["answer"])


@pytest.mark.parametrize(
    ("prediction", "letter"), [("A", "A"), ("B) a bus", "B"), (" C.", "C"), ("the answer", None), ("", None)]
)
def test_first_letter_rule(prediction, letter):
    assert seed_first_letter(prediction, ("A", "B", "C", "D")) == letter

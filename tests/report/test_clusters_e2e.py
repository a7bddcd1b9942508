"""End to end: a Video-MME run (hub-schema fixture, scripted backend) records its cluster key,
and `evalkit report` / `evalkit gate` resample its videos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.api import evaluate
from evalkit.report.cli import gate_main, report_main
from evalkit.testing.video_qa import write_videomme_fixture

pytestmark = pytest.mark.filterwarnings("ignore:.*samples had errors:UserWarning")
SMALL = ["task.video.nframes=8", "model.video.min_pixels=3136", "model.video.max_pixels=3136"]


def _run(tmp_path: Path, data: dict, name: str, answer: str) -> Path:
    answers = tmp_path / f"answers-{name}.json"
    answers.write_text(json.dumps({r["question_id"]: answer for r in data["rows"]}))
    out = tmp_path / name
    evaluate(
        "videomme",
        "tiny",
        [f"task.dataset.path={data['root']}", f"output_dir={out}", "model.backend=fake", "+model.mode=table",
         f"+model.answers={answers}", "runner.progress=false", "runner.cache=false", *SMALL],
    )  # fmt: skip
    return out


def test_videomme_intervals_resample_videos(tmp_path, capsys):
    data = write_videomme_fixture(tmp_path / "data", n_videos=4, questions_per_video=3, seed=3)
    base = _run(tmp_path, data, "base", "A")
    cur = _run(tmp_path, data, "cur", "B")
    results = json.loads((base / "results.json").read_text())
    assert results["tasks"]["videomme"]["cluster_key"] == "videoID"
    samples = [json.loads(line) for line in (base / "samples" / "videomme.jsonl").read_text().splitlines()]
    assert len(samples) == 12 and all(s["metadata"].get("videoID") for s in samples)
    assert all(s["question"] and "<|im_start|>" not in s["question"] for s in samples)

    assert report_main([str(base), "--n-resamples", "200"]) == 0
    out = capsys.readouterr()
    assert (
        "Clustered intervals (whole clusters of samples resampled): videomme by videoID, 4 clusters."
        in out.out
    )
    assert "no metadata" not in out.err

    gate_main(["--baseline", str(base), "--current", str(cur), "--n-resamples", "200"])
    table = capsys.readouterr().out
    header = [c.strip() for c in table.splitlines()[0].strip("|").split("|")]
    row = next(line for line in table.splitlines() if line.startswith("| videomme | accuracy "))
    cells = dict(zip(header, (c.strip() for c in row.strip("|").split("|")), strict=True))
    assert cells["clusters"] == "4" and cells["n"] == "12"

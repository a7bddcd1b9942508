"""`evalkit report` command line: formats, outputs, plots, usage errors, light import."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from evalkit.errors import UsageError
from evalkit.report.cli import report_main

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def runs(make_run, mk_sample, tmp_path):
    """Two models; docvqa: a 3/4 right, b 1/4; touchstone-like scores with an ability breakdown."""
    abilities = [
        "Recognition",
        "Comprehension",
        "Basic description",
        "Visual storytelling",
        "Multi-image analysis",
    ]
    for model, right, ts in (("a", 3, 600.0), ("b", 1, 450.0)):
        ts_samples = [
            mk_sample(i, ts + 10 * i, name="score", metadata={"ability": abilities[i % 5]}) for i in range(10)
        ]
        make_run(
            model,
            {
                "docvqa": {
                    "samples": [mk_sample(i, float(i < right), name="anls") for i in range(4)],
                    "aggregation": {"anls": {"kind": "mean", "score": "anls"}},
                },
                "touchstone": {
                    "samples": ts_samples,
                    "aggregation": {"score": {"kind": "mean", "score": "score"}},
                    "paper_scale": 1,
                    "breakdowns": {
                        "ability": {
                            ab: {"score": sum(s["scores"]["score"] for s in ts_samples[k::5]) / 2, "n": 2}
                            for k, ab in enumerate(abilities)
                        }
                    },
                },
            },
            model=f"model-{model}",
        )
    return tmp_path


def test_markdown_to_stdout(runs, capsys):
    assert report_main([str(runs), "--n-resamples", "500"]) == 0
    out = capsys.readouterr().out
    assert [c.strip() for c in out.splitlines()[0].split("|")[1:4]] == ["Model", "docvqa", "touchstone"]
    assert "| model-a | **75.0** ± " in out and "| **645.0** ± " in out


def test_all_formats_to_a_directory_and_plots(runs, tmp_path, capsys):
    out_dir = tmp_path / "out"
    plots = tmp_path / "plots"
    argv = [str(runs / "a"), str(runs / "b"), "-f", "md,csv", "-f", "latex", "-f", "html", "-o", str(out_dir)]
    assert report_main(argv + ["--plot", str(plots), "--n-resamples", "500"]) == 0
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "leaderboard.csv",
        "leaderboard.md",
        "leaderboard.tex",
        "report.html",
    ]
    rows = list(csv.DictReader(io.StringIO((out_dir / "leaderboard.csv").read_text())))
    assert [(r["model"], float(r["docvqa"]), float(r["touchstone"])) for r in rows] == [
        ("model-a", 75.0, 645.0),
        ("model-b", 25.0, 495.0),
    ]
    assert (out_dir / "leaderboard.tex").read_text().count(r"\toprule") == 1
    names = sorted(p.name for p in plots.iterdir())
    assert names == [
        "docvqa.png",
        "touchstone.png",
        "touchstone__ability.png",
        "touchstone__ability_radar.png",
    ]
    for p in plots.iterdir():
        assert p.read_bytes()[:8] == PNG and p.stat().st_size > 2000
    assert "wrote 4 chart(s)" in capsys.readouterr().err


def test_single_file_output_and_paper_csv(runs, tmp_path):
    out = tmp_path / "lb.tex"
    assert report_main([str(runs), "--format", "latex", "--output", str(out), "--no-ci"]) == 0
    tex = out.read_text()
    assert r"\begin{tabular}{lrr}" in tex and r"$\pm$" not in tex.split(r"\midrule")[1]
    paper_csv = tmp_path / "paper.csv"
    argv = [
        str(runs),
        "-f",
        "csv",
        "-o",
        str(paper_csv),
        "--paper",
        "touchstone",
        "--paper-model",
        "model-a=Qwen-VL-Chat",
    ]
    assert report_main(argv + ["--n-resamples", "500"]) == 0
    rows = list(csv.DictReader(paper_csv.open()))
    assert [(r["model"], r["benchmark"], float(r["ours"]), float(r["paper"])) for r in rows] == [
        ("model-a", "TouchStone-EN", 645.0, 645.2)
    ]
    assert float(rows[0]["delta"]) == pytest.approx(-0.2) and rows[0]["inside_ci"] == "True"


def test_usage_errors(runs, tmp_path):
    with pytest.raises(UsageError, match="no results.json found under"):
        report_main([str(tmp_path / "missing*")])
    with pytest.raises(UsageError, match="--format html writes a file"):
        report_main([str(runs), "-f", "html"])
    with pytest.raises(UsageError, match="--format 'pdf'"):
        report_main([str(runs), "-f", "pdf"])
    with pytest.raises(UsageError, match="unknown paper"):
        report_main([str(runs), "--paper", "gpt-5"])
    with pytest.raises(UsageError, match="no results for task"):
        report_main([str(runs), "--tasks", "docvqa,mmmu"])
    with pytest.raises(UsageError, match="evalkit report"):
        report_main(["--bogus"])
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "results.json").write_text("{not json")
    with pytest.raises(UsageError, match="is not valid JSON"):
        report_main([str(broken)])
    (broken / "results.json").write_text(
        json.dumps(
            {
                "tasks": {
                    "t": {
                        "metrics": {"accuracy": 1.0},
                        "aggregation": {"accuracy": {"kind": "mean", "score": "a"}},
                    }
                }
            }
        )
    )
    (broken / "samples").mkdir()
    (broken / "samples" / "t.jsonl").write_text('{"id": "1", "scores": {}}\nnot json\n')
    with pytest.raises(UsageError, match=r"t.jsonl:2 is not valid JSON"):
        report_main([str(broken)])


def test_glob_paths(runs, capsys):
    assert report_main([str(runs / "[ab]"), "--tasks", "touchstone", "--no-ci"]) == 0
    out = capsys.readouterr().out
    assert "model-a" in out and "model-b" in out and "docvqa" not in out.splitlines()[0]


def test_import_is_light():
    code = (
        "import sys, evalkit.report.cli, evalkit.metrics.bootstrap\n"
        "heavy = [m for m in ('pandas', 'matplotlib', 'torch') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_unwritable_output_is_one_line_without_resume_advice(runs, tmp_path):
    """A report has nothing to resume: its I/O error names the path, not "rerunning resumes"."""
    from tests.conftest import run_cli_here

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = run_cli_here("report", str(runs / "a"), "--output", str(blocker / "x.md"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("evalkit: error:")]
    assert str(blocker) in line and "check that path's disk, space and permissions" in line
    assert "resumes" not in line and "finished samples" not in line

"""Leaderboard contents against hand-computed values; Markdown, CSV and LaTeX output."""

from __future__ import annotations

import csv
import io
import re

import pytest

from evalkit.errors import UsageError
from evalkit.report.formats import leaderboard_csv, leaderboard_table, to_latex, to_markdown
from evalkit.report.leaderboard import CIOptions, build_leaderboard, parse_metric_choice
from evalkit.report.loading import load_runs

FAST = CIOptions(n_resamples=2000)
ANLS = {"anls": {"kind": "mean", "score": "anls"}}
MTVQA_AGG = {
    "accuracy_macro": {"kind": "macro", "score": "accuracy", "group": "language"},
    "accuracy_micro": {"kind": "mean", "score": "accuracy"},
}


@pytest.fixture
def two_models(make_run, mk_sample):
    """Model A: docvqa ANLS (1, .5, 0, .9) -> 60.0; mtvqa AR 1/2, DE 3/3 -> macro 75.0, micro 80.0.
    Model B: docvqa (.2, .3, errored, .1, .4) -> 25.0; mtvqa AR 0/2, DE 1/3 -> macro 16.7, micro 20.0."""

    def mt(pattern):
        return [
            mk_sample(i, float(v), metadata={"language": lang})
            for i, (lang, v) in enumerate(zip(["AR", "AR", "DE", "DE", "DE"], pattern, strict=True))
        ]

    a = make_run(
        "a",
        {
            "docvqa": {
                "samples": [mk_sample(i, s, name="anls") for i, s in enumerate([1, 0.5, 0, 0.9])],
                "aggregation": ANLS,
            },
            "mtvqa": {"samples": mt([1, 0, 1, 1, 1]), "aggregation": MTVQA_AGG},
        },
        model="model-a",
    )
    b_docs = [mk_sample(0, 0.2, name="anls"), mk_sample(1, 0.3, name="anls"), mk_sample(2, None, error="OOM")]
    b_docs += [mk_sample(3, 0.1, name="anls"), mk_sample(4, 0.4, name="anls")]
    b = make_run(
        "b",
        {
            "docvqa": {"samples": b_docs, "aggregation": ANLS},
            "mtvqa": {"samples": mt([0, 0, 1, 0, 0]), "aggregation": MTVQA_AGG},
        },
        model="model-b",
    )
    return [a, b]


def test_values_are_paper_scale_main_metrics(two_models):
    board = build_leaderboard(load_runs([str(p) for p in two_models]), ci=FAST)
    values = board.values()
    assert board.models == ["model-a", "model-b"] and board.tasks == ["docvqa", "mtvqa"]
    assert values.loc["model-a", "docvqa"] == pytest.approx(60.0)
    assert values.loc["model-b", "docvqa"] == pytest.approx(25.0)  # the errored sample is left out
    assert values.loc["model-a", "mtvqa"] == pytest.approx(75.0)
    assert values.loc["model-b", "mtvqa"] == pytest.approx(100 / 6)
    assert board.metrics == {"docvqa": "anls", "mtvqa": "accuracy_macro"}
    lows, highs = board.lows(), board.highs()
    assert (lows <= values).all().all() and (values <= highs).all().all()
    assert (highs - lows).min().min() > 0
    assert any("1 of 5 samples errored" in w for w in board.warnings)
    assert board.best("docvqa", 1) == {"model-a"}


def test_metric_choice(two_models):
    runs = load_runs([str(p) for p in two_models])
    board = build_leaderboard(runs, parse_metric_choice(["accuracy_micro"]), ci=CIOptions(enabled=False))
    assert board.metrics == {"docvqa": "anls", "mtvqa": "accuracy_micro"}
    assert board.values().loc["model-a", "mtvqa"] == pytest.approx(80.0)
    assert board.lows().isna().all().all()
    board = build_leaderboard(
        runs, parse_metric_choice(["mtvqa=accuracy_micro"]), ci=CIOptions(enabled=False)
    )
    assert board.values().loc["model-b", "mtvqa"] == pytest.approx(20.0)
    with pytest.raises(UsageError, match="no metric 'bleu'"):
        build_leaderboard(runs, parse_metric_choice(["docvqa=bleu"]))
    with pytest.raises(UsageError, match="no task has a metric"):
        build_leaderboard(runs, parse_metric_choice(["bleu"]))


def test_markdown_table(two_models):
    board = build_leaderboard(load_runs([str(p) for p in two_models]), ci=FAST)
    text = to_markdown(leaderboard_table(board, decimals=1))
    lines = text.splitlines()
    assert re.fullmatch(r"\| Model\s+\| +docvqa \| +mtvqa \|", lines[0])
    assert re.fullmatch(r"\|-+\|-+:\|-+:\|", lines[1])
    row_a = [c.strip() for c in lines[2].strip("|").split("|")]
    row_b = [c.strip() for c in lines[3].strip("|").split("|")]
    hw = board.cell("model-a", "docvqa").half_width
    assert row_a == [
        "model-a",
        f"**60.0** ± {hw:.1f}",
        f"**75.0** ± {board.cell('model-a', 'mtvqa').half_width:.1f}",
    ]
    assert row_b[1].startswith("25.0 ± ") and row_b[2].startswith("16.7 ± ")
    assert "docvqa: anls ×100" in text and "95% bootstrap" in text


def test_csv_has_exact_values(two_models):
    board = build_leaderboard(load_runs([str(p) for p in two_models]), ci=FAST)
    rows = list(csv.DictReader(io.StringIO(leaderboard_csv(board))))
    assert [r["model"] for r in rows] == ["model-a", "model-b"]
    assert float(rows[0]["docvqa"]) == pytest.approx(60.0)
    assert float(rows[1]["mtvqa"]) == pytest.approx(100 / 6)
    assert float(rows[0]["docvqa_ci_low"]) < 60.0 < float(rows[0]["docvqa_ci_high"])
    assert set(rows[0]) >= {"docvqa_flags", "mtvqa_ci_high"}


def test_latex_is_booktabs_and_balanced(make_run, mk_sample):
    runs = [
        make_run(
            f"r{k}",
            {
                "vizwiz_vqa": {"samples": [mk_sample(i, float(i < k)) for i in range(4)]},
                "ocr&co": {"samples": [mk_sample(i, float(i < 4 - k)) for i in range(4)]},
            },
            model=f"m_{k}",
        )
        for k in (1, 3)
    ]
    board = build_leaderboard(load_runs([str(p) for p in runs]), ci=FAST)
    tex = to_latex(leaderboard_table(board), caption="Main results", label="tab:main")
    assert tex.count(r"\begin{table}") == tex.count(r"\end{table}") == 1
    assert tex.count(r"\begin{tabular}{lrr}") == 1 and tex.count(r"\end{tabular}") == 1
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert tex.count(rule) == 1
    body = tex.split(r"\midrule")[1].split(r"\bottomrule")[0].strip().splitlines()
    header = tex.split(r"\toprule")[1].split(r"\midrule")[0].strip()
    assert header == r"Model & vizwiz\_vqa & ocr\&co \\"
    assert len(body) == 2
    for line in body:
        assert line.endswith(r"\\")
        assert len(re.findall(r"(?<!\\)&", line)) == 2
    # m_3 is best in vizwiz_vqa (75.0), m_1 best in ocr&co (75.0).
    assert body[0].startswith(r"m\_1 & 25.0{\scriptsize$\pm$") and r"& \textbf{75.0}" in body[0]
    assert body[1].startswith(r"m\_3 & \textbf{75.0}{\scriptsize$\pm$")
    assert tex.count(r"\textbf{") == 2
    assert tex.count("{") == tex.count("}")
    assert r"\caption{Main results}" in tex and r"\label{tab:main}" in tex
    assert "95\\%" in tex and "_" not in tex.replace("\\_", "")


def test_same_model_different_protocol_is_flagged(tmp_path, make_run, mk_sample):
    docs = [mk_sample(i, float(i % 2)) for i in range(6)]
    make_run("old", {"docvqa": {"samples": docs}}, model="qwen", end_time="2026-01-01T00:00:00+00:00")
    make_run(
        "new",
        {"docvqa": {"samples": [mk_sample(i, 1.0) for i in range(6)]}},
        model="qwen",
        model_extra={"max_pixels": 1003520},
        end_time="2026-02-01T00:00:00+00:00",
    )
    make_run("other", {"docvqa": {"samples": docs}}, model="other")
    runs = load_runs([str(tmp_path)])  # a parent dir: every run below it
    assert len(runs) == 3
    board = build_leaderboard(runs, ci=FAST)
    cell = board.cell("qwen", "docvqa")
    assert cell.value == pytest.approx(100.0)  # the newest run is shown
    assert cell.markers == ["†"]
    (note,) = [f for f in board.footnotes if f.marker == "†"]
    assert "model.max_pixels" in note.text and "2 runs" in note.text
    # the column is not flagged: the task protocol is the same for both models
    assert board.column_markers == {}
    md = to_markdown(leaderboard_table(board))
    assert "100.0** ± 0.0†" in md and "† qwen / docvqa" in md


def test_a_limited_run_is_marked_and_never_hides_the_whole_split(tmp_path, make_run, mk_sample):
    full = [mk_sample(i, float(i % 2)) for i in range(8)]
    make_run("full", {"docvqa": {"samples": full}}, model="qwen", end_time="2026-01-01T00:00:00+00:00")
    # a later smoke test of the same model and protocol on the first 3 samples
    make_run(
        "smoke",
        {"docvqa": {"samples": [mk_sample(i, 1.0) for i in range(3)]}},
        model="qwen",
        config={"limit": 3},
        end_time="2026-02-01T00:00:00+00:00",
    )
    board = build_leaderboard(load_runs([str(tmp_path)]), ci=CIOptions(enabled=False))
    cell = board.cell("qwen", "docvqa")
    assert cell.value == pytest.approx(50.0)  # the whole split, not the newer 3-sample preview
    (note,) = board.footnotes
    assert cell.markers == [note.marker]
    assert "different protocols (limit)" in note.text and "the newest whole-split run" in note.text
    assert str(tmp_path / "full") in note.text.split("Runs:")[0]

    # alone, a limited run is shown, and its cell says it covers the first N samples only
    alone = build_leaderboard(load_runs([str(tmp_path / "smoke")]), ci=CIOptions(enabled=False))
    cell = alone.cell("qwen", "docvqa")
    assert cell.value == pytest.approx(100.0)
    (note,) = alone.footnotes
    assert cell.markers == [note.marker]
    assert note.text.startswith("qwen / docvqa: limit=3, the first 3 samples only, not the whole split")
    md = to_markdown(leaderboard_table(alone, show_ci=False))
    assert f"100.0{note.marker}" in md

    # two models, one of them limited: the column says they are not comparable
    make_run("other", {"docvqa": {"samples": full}}, model="other")
    both = build_leaderboard(
        load_runs([str(tmp_path / "smoke"), str(tmp_path / "other")]), ci=CIOptions(enabled=False)
    )
    assert list(both.column_markers) == ["docvqa"]
    assert any("limit: qwen=3, other=None" in f.text for f in both.footnotes)


def test_different_prompts_across_models_flag_the_column(tmp_path, make_run, mk_sample):
    docs = [mk_sample(i, float(i % 2)) for i in range(6)]
    make_run("a", {"docvqa": {"samples": docs}, "gqa": {"samples": docs}}, model="a")
    make_run(
        "b",
        {"docvqa": {"samples": docs, "protocol": {"prompt": "{question} Answer:"}}, "gqa": {"samples": docs}},
        model="b",
    )
    board = build_leaderboard(load_runs([str(tmp_path)]), ci=CIOptions(enabled=False))
    assert board.column_markers == {"docvqa": ["†"]}
    (note,) = board.footnotes
    assert (
        "protocol.prompt" in note.text
        and "not comparable" in note.text
        and "b={question} Answer:" in note.text
    )
    md = to_markdown(leaderboard_table(board, show_ci=False))
    assert md.splitlines()[0].split("|")[2].strip() == "docvqa†"


def test_null_metric_and_recompute_mismatch(make_run, mk_sample):
    run = make_run(
        "caps",
        {
            "coco_cap": {
                "samples": [mk_sample(i, 1.0, name="bleu1") for i in range(3)],
                "aggregation": {
                    "cider": {"kind": "corpus"},
                    "spice": {"kind": "corpus"},
                    "bleu1": {"kind": "mean", "score": "bleu1"},
                },
                "metrics": {"cider": 1.1, "spice": None, "bleu1": 0.5},
                "main_metric": "cider",
            }
        },
    )
    import json

    data = json.loads((run / "results.json").read_text())
    data["tasks"]["coco_cap"]["notes"] = {"spice": "SPICE needs Stanford CoreNLP"}
    (run / "results.json").write_text(json.dumps(data))
    runs = load_runs([str(run)])
    board = build_leaderboard(runs, ci=FAST)
    cell = board.cell("tiny", "coco_cap")
    assert cell.value == pytest.approx(110.0) and cell.ci is None  # corpus metric: no interval
    board = build_leaderboard(runs, parse_metric_choice(["spice"]), ci=FAST)
    assert board.cell("tiny", "coco_cap").value is None
    assert "CoreNLP" in board.footnotes[0].text
    board = build_leaderboard(runs, parse_metric_choice(["bleu1"]), ci=FAST)
    assert any("recomputed from samples is 1" in w and "says 0.5" in w for w in board.warnings)


def test_submission_only_task_leaves_an_empty_cell(make_run, mk_sample):
    run = make_run(
        "sub",
        {
            "docvqa_test": {
                "samples": [mk_sample(i) for i in range(3)],
                "main_metric": "anls",
            },
            "gqa": {"samples": [mk_sample(i, 1.0) for i in range(3)]},
        },
    )
    import json

    data = json.loads((run / "results.json").read_text())
    data["tasks"]["docvqa_test"]["metrics"] = {}
    (run / "results.json").write_text(json.dumps(data))
    board = build_leaderboard(load_runs([str(run)]), ci=FAST)
    assert board.cell("tiny", "docvqa_test").value is None
    assert board.values().loc["tiny", "gqa"] == pytest.approx(100.0)
    assert any("no metric 'anls'" in w and "without answers" in w for w in board.warnings)
    assert "| tiny  |           – |" in to_markdown(leaderboard_table(board))


def test_clustered_intervals_in_tables(make_run, mk_sample, capsys):
    """A task with a cluster key: the ± resamples whole videos, the table names the key and the
    number of clusters, and the interval is the one a cluster bootstrap gives (wider than the
    sample bootstrap for these video-correlated answers)."""
    import numpy as np

    from evalkit.metrics.bootstrap import bootstrap_ci

    right = [float(v % 3 != 0) for v in range(40) for _ in range(3)]  # a video's 3 answers agree
    samples = [mk_sample(i, s, metadata={"videoID": f"v{i // 3}"}) for i, s in enumerate(right)]
    samples[-1]["metadata"] = {}  # one sample without the key: a cluster of its own
    run = make_run("v", {"videomme": {"samples": samples, "cluster_key": "videoID"}})
    flat = make_run("f", {"videomme_flat": {"samples": samples}})
    board = build_leaderboard(load_runs([str(run), str(flat)]), ci=FAST)
    cell, flat_cell = board.cell("tiny", "videomme"), board.cell("tiny", "videomme_flat")
    assert cell.ci.n_clusters == 41 and cell.ci.n == 120 and flat_cell.ci.n_clusters is None
    labels = [f"v{i // 3}" for i in range(119)] + ["own"]
    expected = bootstrap_ci(np.array(right), 2000, clusters=labels)
    assert (cell.ci.low, cell.ci.high) == (expected.low, expected.high)
    assert cell.half_width > 1.4 * flat_cell.half_width
    text = to_markdown(leaderboard_table(board))
    assert (
        "Clustered intervals (whole clusters of samples resampled): videomme by videoID, 41 clusters." in text
    )
    assert any("1 of 120 samples have no metadata['videoID']" in w for w in board.warnings)
    long = board.long().set_index("task")
    assert long.loc["videomme", "n_clusters"] == 41 and long.loc["videomme", "cluster_key"] == "videoID"

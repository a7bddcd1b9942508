"""`evalkit gate`: verdicts on constructed regressions and non-regressions, usage errors."""

from __future__ import annotations

import json

import pytest

from evalkit.errors import UsageError
from evalkit.report.cli import gate_main
from evalkit.report.gate import REGRESSION, resolve_run, run_gate

N = 400
MT_AGG = {"accuracy_macro": {"kind": "macro", "score": "accuracy", "group": "language"}}


def _scores(n_right: int, n: int = N, offset: int = 0) -> list[float]:
    """n samples, the ones at positions offset..offset+n_right-1 (mod n) right."""
    return [1.0 if (i - offset) % n < n_right else 0.0 for i in range(n)]


def _run(make_run, mk_sample, name, scores, **task_kw):
    samples = [mk_sample(i, s, metadata={"language": ["AR", "DE"][i % 2]}) for i, s in enumerate(scores)]
    return make_run(name, {"gqa": {"samples": samples, **task_kw}})


def _gate(base, cur, *extra):
    return gate_main(["--baseline", str(base), "--current", str(cur), "--n-resamples", "2000", *extra])


def test_clear_regression_fails(make_run, mk_sample, capsys):
    base = _run(make_run, mk_sample, "base", _scores(320))  # 0.80
    cur = _run(make_run, mk_sample, "cur", _scores(280))  # 0.70: 40 samples flipped to wrong
    assert _gate(base, cur) == 1
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| gqa"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:6] == ["gqa", "accuracy", "400", "0.8000", "0.7000", "-0.1000"]
    assert cells[-1] == REGRESSION
    assert "FAIL: significant regression in gqa/accuracy" in out
    # the MDE is the sample set's (a one-directional change is not run-to-run noise): as for
    # identical runs, (z(0.975) + z(0.8))^2 / 400
    assert _row(out)["MDE (80% power)"] == "0.0196"


def test_identical_and_small_changes_pass(make_run, mk_sample, capsys):
    base = _run(make_run, mk_sample, "base", _scores(320))
    assert _gate(base, _run(make_run, mk_sample, "same", _scores(320))) == 0
    assert "PASS" in capsys.readouterr().out
    # 3 flips (-0.0075) are below the default minimum effect of 0.01
    assert _gate(base, _run(make_run, mk_sample, "tiny", _scores(317))) == 0
    # a -0.1 drop that is allowed by a larger per-task minimum effect
    cur = _run(make_run, mk_sample, "big", _scores(280))
    assert _gate(base, cur, "--min-effect", "gqa=0.2") == 0
    assert _gate(base, cur, "--min-effect", "gqa/accuracy=0.05") == 1


def test_noise_is_not_a_regression(make_run, mk_sample):
    # Same mean, 30 samples swapped each way: no net change, not significant.
    base = _run(make_run, mk_sample, "base", _scores(320))
    cur = _run(make_run, mk_sample, "cur", _scores(320, offset=30))
    report = run_gate(resolve_run(base, "baseline"), resolve_run(cur, "current"), n_resamples=2000)
    (row,) = report.rows
    assert row.delta == 0 and row.low < 0 < row.high and row.p_value > 0.5 and row.verdict == "ok"
    # A drop of 0.02 bigger than the min effect but drowned in 2x60 swaps: not significant.
    cur2 = _run(make_run, mk_sample, "cur2", _scores(312, offset=60))
    report = run_gate(resolve_run(base, "baseline"), resolve_run(cur2, "current"), n_resamples=2000)
    (row,) = report.rows
    assert row.delta == pytest.approx(-0.02) and row.p_value > 0.05 and row.verdict == "ok"
    assert not report.regressed


def test_improvement_and_sign_test(make_run, mk_sample, capsys):
    base = _run(make_run, mk_sample, "base", _scores(280))
    cur = _run(make_run, mk_sample, "cur", _scores(320))
    assert _gate(base, cur) == 0
    assert "improved" in capsys.readouterr().out
    assert _gate(cur, base, "--method", "sign") == 1
    report = run_gate(resolve_run(cur, "baseline"), resolve_run(base, "current"), method="sign")
    # 40 pairs got worse, none better: exact p = 2 / 2**40
    assert report.rows[0].p_value == pytest.approx(2 / 2**40)


def test_macro_metric_is_paired_by_group(make_run, mk_sample):
    base_scores = _scores(320)
    cur_scores = list(base_scores)
    for i in range(0, 120, 2):  # AR samples (even ids) only: AR drops, DE unchanged
        cur_scores[i] = 0.0
    base = _run(make_run, mk_sample, "base", base_scores, aggregation=MT_AGG)
    cur = _run(make_run, mk_sample, "cur", cur_scores, aggregation=MT_AGG)
    report = run_gate(resolve_run(base, "baseline"), resolve_run(cur, "current"), n_resamples=2000)
    (row,) = report.rows
    assert row.metric == "accuracy_macro" and row.baseline == pytest.approx(0.8)
    assert row.delta == pytest.approx(-60 / 200 / 2) and row.verdict == REGRESSION


def test_corpus_metric_and_lower_is_better(make_run, mk_sample):
    agg = {"cider": {"kind": "corpus"}, "parse_failure_rate": {"kind": "mean", "score": "fail"}}
    b = [mk_sample(i, float(i < 20), name="fail") for i in range(N)]
    c = [mk_sample(i, float(i < 60), name="fail") for i in range(N)]
    base = make_run(
        "b",
        {
            "refcoco": {
                "samples": b,
                "aggregation": agg,
                "metrics": {"cider": 1.0, "parse_failure_rate": 0.05},
            }
        },
    )
    cur = make_run(
        "c",
        {
            "refcoco": {
                "samples": c,
                "aggregation": agg,
                "metrics": {"cider": 1.005, "parse_failure_rate": 0.15},
            }
        },
    )
    report = run_gate(resolve_run(base, "baseline"), resolve_run(cur, "current"), n_resamples=2000)
    rows = {r.metric: r for r in report.rows}
    assert rows["cider"].method == "exact" and rows["cider"].verdict == "ok"  # +0.005
    assert rows["parse_failure_rate"].delta == pytest.approx(0.10)
    assert rows["parse_failure_rate"].verdict == REGRESSION  # more failures is worse


def test_errored_samples(make_run, mk_sample):
    base = _run(make_run, mk_sample, "base", _scores(320))
    samples = [mk_sample(i, s) for i, s in enumerate(_scores(320))]
    for i in range(0, 80):  # 80 samples now fail (64 of them were right)
        samples[i] = mk_sample(i, None, error="CUDA OOM")
    cur = make_run("cur", {"gqa": {"samples": samples}})
    report = run_gate(resolve_run(base, "baseline"), resolve_run(cur, "current"), n_resamples=2000)
    assert report.rows[0].n == 320 and report.rows[0].verdict == "ok"
    assert any("80 errored samples" in n for n in report.notes)
    report = run_gate(
        resolve_run(base, "baseline"), resolve_run(cur, "current"), n_resamples=2000, errors_as_zero=True
    )
    assert report.rows[0].n == 400 and report.rows[0].delta == pytest.approx(-0.2) and report.regressed


def test_usage_errors(make_run, mk_sample, tmp_path):
    base = _run(make_run, mk_sample, "base", _scores(320))
    fewer = make_run(
        "fewer", {"gqa": {"samples": [mk_sample(i, 1.0) for i in range(N - 1)] + [mk_sample("x9", 1.0)]}}
    )
    with pytest.raises(
        UsageError,
        match=r"different sample sets \(1 only in baseline, e.g. 399; 1 only in current, e.g. x9\)",
    ):
        _gate(base, fewer)
    with pytest.raises(UsageError, match="no such file"):
        _gate(base, tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match="no results.json found"):
        _gate(empty, base)
    other = make_run("other", {"docvqa": {"samples": [mk_sample(i, 1.0) for i in range(3)]}})
    with pytest.raises(UsageError, match="has no results for gqa"):
        _gate(base, other)
    nosamples = _run(make_run, mk_sample, "nos", _scores(320))
    (nosamples / "samples" / "gqa.jsonl").unlink()
    with pytest.raises(UsageError, match="has no samples/gqa.jsonl"):
        _gate(base, nosamples)
    with pytest.raises(UsageError, match="--method"):
        _gate(base, base, "--method", "ttest")
    with pytest.raises(UsageError, match="min-effect"):
        _gate(base, base, "--min-effect", "gqa=lots")


def test_results_json_path_protocol_note_and_summary(make_run, mk_sample, tmp_path, capsys):
    base = _run(make_run, mk_sample, "base", _scores(320))
    cur = _run(make_run, mk_sample, "cur", _scores(320), protocol={"prompt": "{question} Answer:"})
    summary = tmp_path / "summary.md"
    assert _gate(base / "results.json", cur, "--summary", str(summary)) == 0
    out = capsys.readouterr().out
    assert "note: gqa: protocol differs from the baseline (protocol.prompt)" in out
    assert "| gqa" in summary.read_text()
    data = json.loads((base / "results.json").read_text())
    assert data["tasks"]["gqa"]["metrics"]["accuracy"] == pytest.approx(0.8)


def _row(out: str, task: str = "gqa") -> dict[str, str]:
    lines = [line for line in out.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    row = next(line for line in lines if line.startswith(f"| {task} "))
    return dict(zip(header, (c.strip() for c in row.strip("|").split("|")), strict=True))


def test_minimum_detectable_effect_is_printed(make_run, mk_sample, capsys):
    """400 independent 0/1 samples, identical runs: MDE = (z(0.975) + z(0.8))^2 / 400 = 0.0196,
    more than the default minimum effect of 0.01, which the gate says."""
    base = _run(make_run, mk_sample, "base", _scores(320))
    same = _run(make_run, mk_sample, "same", _scores(320))
    assert _gate(base, same) == 0
    out = capsys.readouterr().out
    row = _row(out)
    assert row["MDE (80% power)"] == "0.0196" and row["clusters"] == "–"
    assert "gqa/accuracy: these samples detect a change of 0.0196" in out
    assert "a regression of 0.01 can pass unnoticed" in out
    # power 0.9: (1.96 + 1.2816)^2 / 400 = 0.0263; a minimum effect of 0.03 is then detectable
    assert _gate(base, same, "--power", "0.9", "--min-effect", "0.03") == 0
    out = capsys.readouterr().out
    assert _row(out)["MDE (90% power)"] == "0.0263" and "pass unnoticed" not in out
    with pytest.raises(UsageError, match="--power"):
        _gate(base, same, "--power", "1.5")


def _video_run(make_run, name, scores, cluster_key="videoID", videos=None):
    samples = [
        {
            "id": str(i),
            "prompt": f"q{i}",
            "prediction": "A",
            "target": "A",
            "scores": {"accuracy": s},
            "error": None,
            "metadata": {} if videos is False else {"videoID": f"v{i // 3}", "duration": "short"},
        }
        for i, s in enumerate(scores)
    ]
    return make_run(name, {"videomme": {"samples": samples, "cluster_key": cluster_key}})


def test_gate_resamples_clusters(make_run, capsys):
    """100 videos x 3 questions; whole videos change: 9 lose all 3 answers, 4 gain all 3
    (delta -0.05). Counted as 300 independent questions the drop is significant; with the
    videos resampled as clusters (the honest test: a video's questions change together) it is
    not."""
    base_scores = [float((i // 3) % 2) for i in range(300)]  # every other video right
    cur_scores = list(base_scores)
    lose = [v for v in range(100) if v % 2][:9]
    gain = [v for v in range(100) if not v % 2][:4]
    for v in lose + gain:
        for i in range(3 * v, 3 * v + 3):
            cur_scores[i] = 1.0 - cur_scores[i]
    base = _video_run(make_run, "base", base_scores)
    cur = _video_run(make_run, "cur", cur_scores)
    flat_base = _video_run(make_run, "fbase", base_scores, cluster_key=None)
    flat_cur = _video_run(make_run, "fcur", cur_scores, cluster_key=None)

    flat = run_gate(resolve_run(flat_base, "b"), resolve_run(flat_cur, "c"), n_resamples=4000)
    clustered = run_gate(resolve_run(base, "b"), resolve_run(cur, "c"), n_resamples=4000)
    (f,), (c,) = flat.rows, clustered.rows
    assert f.delta == pytest.approx(-0.05) and c.delta == pytest.approx(-0.05)
    assert f.n_clusters is None and c.n_clusters == 100 and c.n == 300
    assert f.verdict == REGRESSION and f.p_value < 0.05
    assert c.verdict == "ok" and c.p_value > 0.05 and (c.high - c.low) > 1.4 * (f.high - f.low)
    assert c.mde > f.mde  # clusters detect less

    assert _gate(base, cur) == 0
    assert _row(capsys.readouterr().out, "videomme")["clusters"] == "100"
    sign = run_gate(resolve_run(base, "b"), resolve_run(cur, "c"), method="sign", n_resamples=500)
    assert any("sign test treats the 300 samples as independent (100 clusters)" in n for n in sign.notes)


def test_gate_cluster_key_notes(make_run):
    scores = [float(i % 2) for i in range(30)]
    base = _video_run(make_run, "base", scores, videos=False)  # key declared, metadata lacks it
    cur = _video_run(make_run, "cur", scores, cluster_key="video_id", videos=False)
    report = run_gate(resolve_run(base, "b"), resolve_run(cur, "c"), n_resamples=500)
    assert any("cluster key differs (baseline videoID, current video_id)" in n for n in report.notes)
    assert any("30 samples have no metadata['videoID']" in n for n in report.notes)
    assert report.rows[0].n_clusters == 30

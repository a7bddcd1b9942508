"""Bootstrap intervals vs a brute-force bootstrap (plain and clustered), coverage, aggregation specs,
paired tests, minimum detectable effect."""

from __future__ import annotations

import math
import random
import time

import numpy as np
import pytest

from evalkit.metrics.bootstrap import (
    aggregation_bootstrap,
    aggregation_values,
    bootstrap_ci,
    bootstrap_distribution,
    cluster_labels,
    effective_sample_size,
    minimum_detectable_effect,
    paired_bootstrap,
    sign_test,
)


def brute_force_ci(scores, n_resamples, confidence, seed, groups=None):
    """Textbook bootstrap: draw n indices with replacement in a Python loop, recompute, sort."""
    rng = random.Random(seed)
    n = len(scores)
    stats = []
    for _ in range(n_resamples):
        idx = [rng.randrange(n) for _ in range(n)]
        if groups is None:
            stats.append(sum(scores[i] for i in idx) / n)
        else:
            per: dict = {}
            for i in idx:
                for label in groups[i] if isinstance(groups[i], list) else [groups[i]]:
                    per.setdefault(label, []).append(scores[i])
            stats.append(sum(sum(v) / len(v) for v in per.values()) / len(per))
    stats.sort()
    tail = (1 - confidence) / 2
    return stats[int(tail * n_resamples)], stats[int((1 - tail) * n_resamples) - 1]


@pytest.mark.parametrize("kind", ["continuous", "binary"])
def test_interval_matches_brute_force(kind):
    rng = np.random.default_rng(1)
    scores = rng.random(300) if kind == "continuous" else (rng.random(300) < 0.3).astype(float)
    ours = bootstrap_ci(scores, n_resamples=4000, seed=5)
    low, high = brute_force_ci(list(scores), 4000, 0.95, seed=9)
    assert ours.estimate == pytest.approx(scores.mean())
    se = scores.std() / math.sqrt(len(scores))
    # Both are Monte-Carlo estimates of the same quantiles: they agree to a small share of a SE.
    assert ours.low == pytest.approx(low, abs=0.15 * se)
    assert ours.high == pytest.approx(high, abs=0.15 * se)
    # ...and to the normal approximation, mean ± 1.96 SE.
    assert ours.low == pytest.approx(scores.mean() - 1.96 * se, abs=0.2 * se)
    assert ours.half_width == pytest.approx(1.96 * se, rel=0.1)


def test_macro_interval_matches_brute_force():
    rng = np.random.default_rng(2)
    groups = [["AR", "DE", "FR"][i % 3] for i in range(240)]
    p = {"AR": 0.2, "DE": 0.5, "FR": 0.8}
    scores = [float(rng.random() < p[g]) for g in groups]
    ours = bootstrap_ci(scores, n_resamples=3000, seed=0, statistic="macro", groups=groups)
    by_group = {g: [s for s, h in zip(scores, groups, strict=True) if h == g] for g in p}
    assert ours.estimate == pytest.approx(sum(sum(v) / len(v) for v in by_group.values()) / 3)
    low, high = brute_force_ci(scores, 3000, 0.95, seed=3, groups=groups)
    assert ours.low == pytest.approx(low, abs=0.01)
    assert ours.high == pytest.approx(high, abs=0.01)


@pytest.mark.parametrize("labels", ["single", "multi"])
def test_macro_interval_continuous_matches_brute_force(labels):
    """Continuous scores take the index-matrix path (single- and multi-label groups)."""
    rng = np.random.default_rng(7)
    names = ["a", "a", "a", "a", "b", "c", "d"]  # unequal groups: macro != micro
    base = [names[i % 7] for i in range(300)]
    groups = [g if labels == "single" or i % 3 else [g, "z"] for i, g in enumerate(base)]
    power = {"a": 4.0, "b": 1.0, "c": 0.5, "d": 0.25}
    scores = [float(rng.random() ** power[g]) for g in base]
    ours = bootstrap_ci(scores, n_resamples=2000, seed=1, statistic="macro", groups=groups)
    low, high = brute_force_ci(scores, 2000, 0.95, seed=2, groups=groups)
    se = (high - low) / 3.92
    assert abs(ours.estimate - float(np.mean(scores))) > se  # the statistic really is the macro mean
    assert ours.low == pytest.approx(low, abs=0.25 * se)
    assert ours.high == pytest.approx(high, abs=0.25 * se)


@pytest.mark.parametrize("kind", ["continuous", "binary"])
def test_coverage_is_near_nominal(kind):
    """Over many simulated data sets the 95% interval holds the true mean about 95% of the time."""
    rng = np.random.default_rng(11)
    true_mean = 0.3 if kind == "binary" else 0.5
    hits = 0
    trials = 300
    for t in range(trials):
        data = (rng.random(200) < true_mean).astype(float) if kind == "binary" else rng.random(200)
        hits += bootstrap_ci(data, n_resamples=1000, seed=t).contains(true_mean)
    assert 0.91 <= hits / trials <= 0.98


def test_seeded_and_vectorised_fast():
    scores = np.random.default_rng(0).random(5000)
    a = bootstrap_ci(scores, seed=3)
    b = bootstrap_ci(scores, seed=3)
    c = bootstrap_ci(scores, seed=4)
    assert (a.low, a.high) == (b.low, b.high)
    assert (a.low, a.high) != (c.low, c.high)
    start = time.perf_counter()
    dist = bootstrap_distribution(scores, n_resamples=10_000, seed=0)
    elapsed = time.perf_counter() - start
    assert dist.shape == (10_000,)
    # "well under a second" on a free core; generous bound for a shared CI machine.
    assert elapsed < 3.0, f"10,000 x 5,000 bootstrap took {elapsed:.2f}s"


def test_aggregation_specs():
    scores = [{"acc": 1.0}, {"acc": 0.0}, {"acc": 1.0}, {"acc": 1.0}, {}, {"acc": None}]
    meta = [
        {"lang": "AR"},
        {"lang": "AR"},
        {"lang": "DE"},
        {"lang": "DE", "dur": "short"},
        {"lang": "DE"},
        {},
    ]
    mean = aggregation_bootstrap({"kind": "mean", "score": "acc"}, scores, meta, n_resamples=500)
    assert mean.estimate == pytest.approx(0.75) and mean.n == 4
    where = aggregation_bootstrap(
        {"kind": "mean", "score": "acc", "where": {"lang": "AR"}}, scores, meta, n_resamples=500
    )
    assert where.estimate == pytest.approx(0.5) and where.n == 2
    macro = aggregation_bootstrap(
        {"kind": "macro", "score": "acc", "group": "lang"}, scores, meta, n_resamples=500
    )
    assert macro.estimate == pytest.approx((0.5 + 1.0) / 2)
    assert macro.low <= macro.estimate <= macro.high
    assert aggregation_bootstrap({"kind": "corpus"}, scores, meta) is None
    values, groups, kept = aggregation_values(
        {"kind": "macro", "score": "acc", "group": "lang"}, scores, meta
    )
    assert list(values) == [1.0, 0.0, 1.0, 1.0] and groups == ["AR", "AR", "DE", "DE"]
    assert kept.tolist() == [True, True, True, True, False, False]
    with pytest.raises(ValueError):
        aggregation_values({"kind": "corpus"}, scores, meta)


def test_list_valued_groups_count_in_each_group():
    scores = [{"s": 1.0}, {"s": 0.0}, {"s": 0.5}]
    meta = [{"c": ["a", "b"]}, {"c": ["b"]}, {"c": "a"}]
    ci = aggregation_bootstrap({"kind": "macro", "score": "s", "group": "c"}, scores, meta, n_resamples=200)
    # group a: {1.0, 0.5} -> 0.75; group b: {1.0, 0.0} -> 0.5
    assert ci.estimate == pytest.approx(0.625)


def test_paired_bootstrap_detects_shift_and_keeps_pairing():
    rng = np.random.default_rng(4)
    base = (rng.random(400) < 0.7).astype(float)
    same = paired_bootstrap(base, base.copy(), n_resamples=2000)
    assert same.delta == 0 and same.low == 0 and same.high == 0 and same.p_value == 1.0
    worse = base.copy()
    flip = np.flatnonzero(base == 1)[:40]  # 40 of 400 go from right to wrong: -0.10
    worse[flip] = 0
    res = paired_bootstrap(base, worse, n_resamples=2000)
    assert res.delta == pytest.approx(-0.10)
    assert res.high < 0 and res.p_value < 0.01
    assert (res.n_better, res.n_worse) == (0, 40)
    # Paired intervals are much tighter than the unpaired difference of two intervals.
    unpaired = bootstrap_ci(base, 2000).half_width + bootstrap_ci(worse, 2000).half_width
    assert (res.high - res.low) / 2 < unpaired / 2


def test_paired_macro_matches_pointwise():
    groups = ["x"] * 50 + ["y"] * 10
    base = np.ones(60)
    cur = np.ones(60)
    cur[50:55] = 0  # group y drops from 1.0 to 0.5: macro delta = -0.25
    res = paired_bootstrap(base, cur, n_resamples=1000, groups=groups)
    assert res.baseline == pytest.approx(1.0) and res.current == pytest.approx(0.75)
    assert res.delta == pytest.approx(-0.25) and res.high < 0


def test_sign_test_exact_values():
    # 9 better, 1 worse, 2 ties: p = 2 * (C(10,0) + C(10,1)) / 2^10
    res = sign_test([0] * 9 + [1] + [0.5, 0.5], [1] * 9 + [0] + [0.5, 0.5])
    assert (res.n_better, res.n_worse, res.n_ties) == (9, 1, 2)
    assert res.p_value == pytest.approx(2 * (1 + 10) / 1024)
    assert sign_test([1, 1], [1, 1]).p_value == 1.0
    big = sign_test(np.zeros(3000), np.r_[np.ones(1600), -np.ones(1400)])
    assert big.p_value == pytest.approx(2 * sum(math.comb(3000, k) for k in range(1401)) / 2**3000, rel=1e-9)


def test_paired_macro_continuous_matches_brute_force():
    rng = np.random.default_rng(8)
    groups = [["x", "x", "y", "z"][i % 4] for i in range(300)]
    base = rng.random(300)
    cur = np.clip(base - 0.05 * (np.array(groups) == "y") + rng.normal(0, 0.1, 300), 0, 1)
    res = paired_bootstrap(base, cur, n_resamples=2000, seed=0, groups=groups)

    def macro(values, idx):
        per: dict = {}
        for i in idx:
            per.setdefault(groups[i], []).append(values[i])
        return sum(sum(v) / len(v) for v in per.values()) / len(per)

    r = random.Random(1)
    deltas = []
    for _ in range(2000):
        idx = [r.randrange(300) for _ in range(300)]
        deltas.append(macro(cur, idx) - macro(base, idx))
    deltas.sort()
    se = (deltas[1949] - deltas[49]) / 3.92
    assert res.delta == pytest.approx(macro(cur, range(300)) - macro(base, range(300)))
    assert res.low == pytest.approx(deltas[49], abs=0.25 * se)
    assert res.high == pytest.approx(deltas[1949], abs=0.25 * se)


# --------------------------------------------------------------------------------------------
# clustered bootstrap (issue 17, point 8)


def brute_force_cluster_ci(scores, clusters, n_resamples, confidence, seed, groups=None, paired=None):
    """Textbook cluster bootstrap: draw as many clusters as there are, with replacement, pool all
    their samples (a cluster drawn twice counts twice), recompute, sort. ``paired`` = the current
    run's scores: the statistic is then mean(current) - mean(baseline) on the same draw."""
    rng = random.Random(seed)
    members: dict = {}
    for i, c in enumerate(clusters):
        members.setdefault(c, []).append(i)
    names = list(members)

    def stat(values, idx):
        if groups is None:
            return sum(values[i] for i in idx) / len(idx)
        per: dict = {}
        for i in idx:
            per.setdefault(groups[i], []).append(values[i])
        return sum(sum(v) / len(v) for v in per.values()) / len(per)

    stats = []
    for _ in range(n_resamples):
        idx = [i for _ in names for i in members[names[rng.randrange(len(names))]]]
        value = stat(scores, idx)
        stats.append(value if paired is None else stat(paired, idx) - value)
    stats.sort()
    tail = (1 - confidence) / 2
    return stats[int(tail * n_resamples)], stats[int((1 - tail) * n_resamples) - 1]


def _clustered_data(rng, n_clusters, size, rho, binary=False):
    """Scores with a shared cluster effect: the correlation within a cluster is about ``rho``."""
    effect = rng.normal(0, math.sqrt(rho), n_clusters).repeat(size)
    noise = rng.normal(0, math.sqrt(1 - rho), n_clusters * size)
    latent = effect + noise
    clusters = [f"img{i // size}" for i in range(n_clusters * size)]
    scores = (latent > 0.5).astype(float) if binary else 1 / (1 + np.exp(-latent))
    return scores, clusters


@pytest.mark.parametrize("kind", ["continuous", "binary"])
def test_cluster_interval_matches_brute_force(kind):
    rng = np.random.default_rng(21)
    sizes = rng.integers(1, 6, 90)  # unequal clusters of 1..5 questions per image
    clusters = [f"doc{c}" for c, k in enumerate(sizes) for _ in range(k)]
    effect = rng.normal(0, 1, len(sizes)).repeat(sizes)
    latent = effect + rng.normal(0, 1, len(clusters))
    scores = list((latent > 0.3).astype(float) if kind == "binary" else 1 / (1 + np.exp(-latent)))
    ours = bootstrap_ci(scores, n_resamples=3000, seed=0, clusters=clusters)
    low, high = brute_force_cluster_ci(scores, clusters, 3000, 0.95, seed=1)
    se = (high - low) / 3.92
    assert ours.n_clusters == 90 and ours.n == len(scores)
    assert ours.estimate == pytest.approx(float(np.mean(scores)))
    assert ours.low == pytest.approx(low, abs=0.2 * se)
    assert ours.high == pytest.approx(high, abs=0.2 * se)


@pytest.mark.parametrize("kind", ["continuous", "binary"])
def test_cluster_macro_interval_matches_brute_force(kind):
    rng = np.random.default_rng(5)
    scores, clusters = _clustered_data(rng, 80, 3, 0.5, binary=kind == "binary")
    groups = [["AR", "DE", "FR", "FR"][int(c[3:]) % 4] for c in clusters]  # language per image
    ours = bootstrap_ci(list(scores), 2000, seed=2, statistic="macro", groups=groups, clusters=clusters)
    low, high = brute_force_cluster_ci(list(scores), clusters, 2000, 0.95, seed=3, groups=groups)
    se = (high - low) / 3.92
    assert ours.n_clusters == 80
    assert ours.low == pytest.approx(low, abs=0.25 * se)
    assert ours.high == pytest.approx(high, abs=0.25 * se)


@pytest.mark.parametrize("macro", [False, True])
def test_paired_cluster_bootstrap_matches_brute_force(macro):
    rng = np.random.default_rng(9)
    base, clusters = _clustered_data(rng, 100, 3, 0.6)
    shift = rng.normal(-0.03, 0.08, 100).repeat(3)  # the change is shared within a video
    cur = np.clip(base + shift + rng.normal(0, 0.02, 300), 0, 1)
    groups = [["short", "medium", "long"][int(c[3:]) % 3] for c in clusters] if macro else None
    res = paired_bootstrap(base, cur, n_resamples=2000, seed=4, groups=groups, clusters=clusters)
    low, high = brute_force_cluster_ci(list(base), clusters, 2000, 0.95, 5, groups=groups, paired=list(cur))
    se = (high - low) / 3.92
    assert res.n_clusters == 100
    assert res.low == pytest.approx(low, abs=0.25 * se)
    assert res.high == pytest.approx(high, abs=0.25 * se)
    assert res.se == pytest.approx(se, rel=0.15)
    # ignoring the clusters understates the uncertainty of this clustered change
    flat = paired_bootstrap(base, cur, n_resamples=2000, seed=4, groups=groups)
    assert flat.n_clusters is None and (flat.high - flat.low) < 0.8 * (res.high - res.low)


def test_clustered_interval_is_wider_with_within_cluster_correlation():
    """5 questions per image whose scores share an image effect (intra-cluster correlation 0.6):
    the design effect is 1 + (5 - 1) * 0.6 = 3.4, so the honest interval is about sqrt(3.4) = 1.8
    times as wide as the one that treats the 1,000 questions as independent. Without correlation
    the two agree."""
    rng = np.random.default_rng(3)
    scores, clusters = _clustered_data(rng, 200, 5, 0.6)
    flat = bootstrap_ci(scores, 4000, seed=0)
    clustered = bootstrap_ci(scores, 4000, seed=0, clusters=clusters)
    assert clustered.n_clusters == 200 and flat.n_clusters is None
    assert clustered.estimate == flat.estimate
    ratio = clustered.half_width / flat.half_width
    # the design effect measured on these scores (their own intra-cluster correlation)
    by_cluster = scores.reshape(200, 5)
    icc = (np.var(by_cluster.mean(axis=1)) * 5 / 4 - np.var(scores) / 4) / np.var(scores)
    assert 0.45 < icc < 0.75
    assert ratio == pytest.approx(math.sqrt(1 + 4 * icc), rel=0.12)
    assert ratio > 1.6

    independent, clusters0 = _clustered_data(rng, 200, 5, 0.0)
    ratio0 = bootstrap_ci(independent, 4000, clusters=clusters0).half_width
    ratio0 /= bootstrap_ci(independent, 4000).half_width
    assert ratio0 == pytest.approx(1.0, abs=0.12)


def test_singleton_clusters_are_the_sample_bootstrap():
    scores = np.random.default_rng(0).random(200)
    plain = bootstrap_ci(scores, 1000, seed=7)
    single = bootstrap_ci(scores, 1000, seed=7, clusters=[f"c{i}" for i in range(200)])
    assert (single.low, single.high) == (plain.low, plain.high) and single.n_clusters == 200
    with pytest.raises(ValueError, match="one label per score"):
        bootstrap_ci(scores, 100, clusters=["a"] * 3)


def test_aggregation_bootstrap_clusters_by_metadata_key():
    scores = [{"acc": float(i % 7 < 3)} for i in range(60)] + [{"acc": None}]
    meta = [{"docId": i // 4} for i in range(58)] + [{}, {}, {"docId": 0}]  # two lack the key
    ci = aggregation_bootstrap({"kind": "mean", "score": "acc"}, scores, meta, 500, cluster_key="docId")
    assert ci.n == 60 and ci.n_clusters == 15 + 2  # 15 pages (docId 0..14) + 2 own clusters
    labels, missing = cluster_labels(meta[:60], "docId")
    assert missing == 2 and labels[0] == labels[3] != labels[4] and labels[58] != labels[59]
    assert cluster_labels(meta, None) == (None, 0)
    plain = aggregation_bootstrap({"kind": "mean", "score": "acc"}, scores, meta, 500)
    assert plain.n_clusters is None and plain.estimate == ci.estimate


# --------------------------------------------------------------------------------------------
# minimum detectable effect (issue 17, point 9)


def test_minimum_detectable_effect_hand_values():
    k = 1.959964 + 0.841621  # z(0.975) + z(0.8)
    # identical runs, 400 independent 0/1 samples: d = k^2 / 400
    assert minimum_detectable_effect(0.0, 400) == pytest.approx(k * k / 400, rel=1e-5)
    assert minimum_detectable_effect(0.0, 400) == pytest.approx(0.0196, abs=1e-4)
    # pure noise term: d = k * se when the flip term vanishes
    assert minimum_detectable_effect(0.01, 400, score_range=0.0) == pytest.approx(k * 0.01, rel=1e-5)
    # both: d solves d^2 = k^2 (se^2 + d / n)
    d = minimum_detectable_effect(0.01, 400)
    assert d * d == pytest.approx(k * k * (0.01**2 + d / 400), rel=1e-5)
    # a design effect of 3 is as if there were a third of the samples
    assert minimum_detectable_effect(0.0, 400, design_effect=3) == pytest.approx(k * k / (400 / 3))
    k99 = 2.575829 + 1.281552  # alpha 0.01, power 0.9
    assert minimum_detectable_effect(0.0, 1000, alpha=0.01, power=0.9) == pytest.approx(
        k99**2 / 1000, rel=1e-5
    )
    with pytest.raises(ValueError):
        minimum_detectable_effect(0.0, 400, power=1.0)


def test_effective_sample_size():
    assert effective_sample_size(300) == 300
    # macro over groups of 100 and 20: weights 1/200 (x100) and 1/40 (x20)
    groups = ["a"] * 100 + ["b"] * 20
    assert effective_sample_size(120, groups) == pytest.approx(1 / (100 / 200**2 + 20 / 40**2))
    assert effective_sample_size(120, ["a"] * 60 + ["b"] * 60) == pytest.approx(120)


def test_regression_of_the_mde_is_caught_at_the_stated_power():
    """Simulated CI runs: baseline 0/1 scores, a current run with run-to-run noise (1% of answers
    flip each way) plus a regression that turns right answers wrong (each with the same chance). At a regression of the MDE
    (alpha 0.05, power 0.8) the paired bootstrap flags it about 80% of the time; at half of it far
    less often."""
    rng = np.random.default_rng(17)
    n = 1000

    def current_run(base, drop):
        cur = base.copy()
        right = base == 1
        # noise without a net change: 2% of all answers flip each way
        u = rng.random(n)
        cur[right & (u < 0.02 * n / right.sum())] = 0
        cur[~right & (u < 0.02 * n / (~right).sum())] = 1
        # each right answer turns wrong with the same chance: drop * n of them on average
        cur[right & (rng.random(n) < drop * n / right.sum())] = 0
        return cur

    base = (rng.random(n) < 0.7).astype(float)
    # the run-to-run noise as a CI history shows it: the paired SE of 20 noise-only runs
    se = float(np.mean([paired_bootstrap(base, current_run(base, 0.0), 2000).se for _ in range(20)]))
    assert se == pytest.approx(math.sqrt(0.04 / n), rel=0.1)  # 4% of the pairs differ by 1
    mde = minimum_detectable_effect(se, n)
    assert 0.02 < mde < 0.025

    def detection_rate(drop, trials=300):
        hits = 0
        for t in range(trials):
            b = (rng.random(n) < 0.7).astype(float)
            res = paired_bootstrap(b, current_run(b, drop), n_resamples=1000, seed=t)
            hits += res.high < 0
        return hits / trials

    assert detection_rate(mde) == pytest.approx(0.8, abs=0.08)
    assert detection_rate(mde / 2) < 0.5

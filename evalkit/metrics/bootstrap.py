"""Bootstrap confidence intervals and paired significance tests on per-sample scores (pure numpy).

Everything here works on plain arrays or on the per-sample ``scores``/``metadata`` dicts of a
``samples/<task>.jsonl`` file together with a metric's ``aggregation`` spec from ``results.json``
(see ``docs/results-contract.md``):

* ``{"kind": "mean", "score": S}`` — mean of ``scores[S]``; an optional ``"where": {key: value}``
  keeps only samples whose ``metadata[key]`` equals ``value`` (or contains it, for list values).
* ``{"kind": "macro", "score": S, "group": G}`` — mean over the groups ``metadata[G]`` of the
  per-group mean of ``scores[S]`` (a list-valued ``metadata[G]`` puts a sample in each group).
* ``{"kind": "corpus"}`` — not a function of per-sample scores: no interval (``None``).

Clustered intervals: when several samples share one image, page or video their scores are
correlated, and resampling samples independently understates the uncertainty. Given one cluster
label per sample (``clusters=``; a task declares the metadata key as ``Task.cluster_key``), whole
clusters are resampled with replacement (as many clusters as there are) and the statistic is
recomputed on all samples of the drawn clusters (the "cluster bootstrap"). Paired comparisons
draw the same clusters for both runs.

Intervals are percentile bootstrap intervals: the samples are resampled with replacement
``n_resamples`` times, the statistic is recomputed on every resample, and the ``(1 - c) / 2`` and
``(1 + c) / 2`` quantiles of those values bound the interval. Resampling is vectorised: an index
matrix drawn with ``Generator.integers`` (in chunks that keep memory bounded), or, when the scores
take only a few distinct values (accuracies), multinomial counts over those values, which has
exactly the same distribution and costs next to nothing. 10,000 resamples of 5,000 samples take a
fraction of a second (``benchmarks/bootstrap.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

__all__ = [
    "BootstrapResult",
    "PairedResult",
    "SignTestResult",
    "aggregation_bootstrap",
    "aggregation_values",
    "bootstrap_ci",
    "bootstrap_distribution",
    "cluster_labels",
    "effective_sample_size",
    "minimum_detectable_effect",
    "paired_bootstrap",
    "sign_test",
]

# Elements of the resampling index matrix materialised at once (~2-8 MB per chunk).
_CHUNK_ELEMENTS = 1 << 20
# Scores with at most this many distinct values are resampled through multinomial counts.
_MAX_DISCRETE_VALUES = 64
# The same for macro means: distinct (group membership, score values) rows.
_MAX_DISCRETE_ROWS = 256


@dataclass(frozen=True)
class BootstrapResult:
    """A point estimate with its percentile bootstrap confidence interval."""

    estimate: float
    low: float
    high: float
    confidence: float
    n: int
    n_resamples: int
    #: number of clusters resampled (``None``: samples were resampled independently)
    n_clusters: int | None = None

    @property
    def half_width(self) -> float:
        """Half the interval's width: the ``±`` shown in tables (the interval may be asymmetric)."""
        return (self.high - self.low) / 2.0

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies inside the closed interval."""
        return self.low <= value <= self.high


@dataclass(frozen=True)
class PairedResult:
    """Paired comparison of two runs on the same samples: ``delta = current - baseline``.

    ``p_value`` is two-sided for H0 "no difference"; ``low``/``high`` bound ``delta`` at
    ``confidence``; ``se`` is the standard deviation of the resampled deltas (the bootstrap standard
    error). ``n_better``/``n_worse`` count samples whose score went up / down; ``n_clusters`` is
    the number of clusters resampled (``None``: samples resampled independently).
    """

    baseline: float
    current: float
    delta: float
    low: float
    high: float
    p_value: float
    confidence: float
    n: int
    n_better: int
    n_worse: int
    method: str
    se: float = 0.0
    n_clusters: int | None = None


@dataclass(frozen=True)
class SignTestResult:
    """Exact two-sided sign test on paired differences (ties dropped)."""

    n_better: int
    n_worse: int
    n_ties: int
    p_value: float


# --------------------------------------------------------------------------------------------
# core resampling


def _index_dtype(n: int) -> type[np.integer]:
    if n <= np.iinfo(np.uint16).max:
        return np.uint16
    if n <= np.iinfo(np.int32).max:
        return np.int32
    return np.int64


def _resampled_means(values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_resamples`` bootstrap resamples of the 1-D array ``values``."""
    n = values.shape[0]
    uniq, inverse = np.unique(values, return_inverse=True)
    if len(uniq) <= _MAX_DISCRETE_VALUES:
        # The bootstrap mean only depends on how often each distinct value is drawn.
        counts = np.bincount(inverse.ravel(), minlength=len(uniq))
        draws = rng.multinomial(n, counts / n, size=n_resamples)
        return draws @ uniq / n
    out = np.empty(n_resamples, dtype=np.float64)
    rows = max(1, _CHUNK_ELEMENTS // n)
    dtype = _index_dtype(n)
    for start in range(0, n_resamples, rows):
        stop = min(n_resamples, start + rows)
        idx = rng.integers(0, n, size=(stop - start, n), dtype=dtype)
        out[start:stop] = values[idx].mean(axis=1)
    return out


def _resampled_macro(
    values: np.ndarray, membership: np.ndarray, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Macro means (over groups) of ``n_resamples`` resamples.

    ``values`` is ``(n, m)`` (``m`` score columns resampled jointly, for paired tests);
    ``membership`` is ``(n, g)`` with 1 where a sample belongs to a group. Returns ``(R, m)``.

    When few distinct (groups, values) rows exist (accuracies), a resample is fully described by
    how often each distinct row is drawn: multinomial counts, same distribution, next to no cost.
    Otherwise an index matrix is drawn in chunks and per-group sums are taken with ``bincount``.
    """
    n, m = values.shape
    g = membership.shape[1]
    uniq, inverse = np.unique(np.concatenate([membership, values], axis=1), axis=0, return_inverse=True)
    if len(uniq) <= _MAX_DISCRETE_ROWS:
        freq = np.bincount(inverse.ravel(), minlength=len(uniq)) / n
        counts = rng.multinomial(n, freq, size=n_resamples).astype(np.float64)  # (R, u)
        mem_u, val_u = uniq[:, :g], uniq[:, g:]
        group_counts = counts @ mem_u
        sums = (counts @ (mem_u[:, :, None] * val_u[:, None, :]).reshape(len(uniq), g * m)).reshape(-1, g, m)
        with np.errstate(invalid="ignore", divide="ignore"):
            return _nanmean(sums / group_counts[:, :, None], axis=1)
    out = np.empty((n_resamples, m), dtype=np.float64)
    single = bool((membership.sum(axis=1) == 1).all())
    codes = membership.argmax(axis=1)
    weighted = (membership[:, :, None] * values[:, None, :]).reshape(n, -1)
    rows = max(1, _CHUNK_ELEMENTS // n)
    dtype = _index_dtype(n)
    for start in range(0, n_resamples, rows):
        stop = min(n_resamples, start + rows)
        c = stop - start
        idx = rng.integers(0, n, size=(c, n), dtype=dtype)
        if single:
            # each sample is in exactly one group: per-row, per-group sums straight from bincount
            flat = (codes[idx] + (np.arange(c) * g)[:, None]).ravel()
            counts = np.bincount(flat, minlength=c * g).reshape(c, g).astype(np.float64)
            sums = np.stack(
                [
                    np.bincount(flat, weights=values[idx, j].ravel(), minlength=c * g).reshape(c, g)
                    for j in range(m)
                ],
                axis=2,
            )
        else:
            flat = (idx.astype(np.int64) + (np.arange(c, dtype=np.int64) * n)[:, None]).ravel()
            weights = np.bincount(flat, minlength=c * n).reshape(c, n).astype(np.float64)
            counts = weights @ membership  # (c, g)
            sums = (weights @ weighted).reshape(c, g, m)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:stop] = _nanmean(sums / counts[:, :, None], axis=1)
    return out


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    valid = ~np.isnan(a)
    total = np.where(valid, a, 0.0).sum(axis=axis)
    count = valid.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


def _cluster_codes(clusters: Sequence[Any], n: int) -> tuple[np.ndarray, int]:
    """``(codes, n_clusters)``: one integer code per sample, equal for samples of one cluster."""
    if len(clusters) != n:
        raise ValueError(f"clusters must give one label per score ({len(clusters)} labels, {n} scores)")
    names: dict[Any, int] = {}
    codes = np.fromiter((names.setdefault(_hashable(c), len(names)) for c in clusters), np.int64, n)
    return codes, len(names)


def _cluster_sums(columns: np.ndarray, codes: np.ndarray, n_clusters: int) -> np.ndarray:
    """Per-cluster column sums of the ``(n, k)`` array ``columns``: a ``(n_clusters, k)`` array."""
    out = np.zeros((n_clusters, columns.shape[1]), dtype=np.float64)
    np.add.at(out, codes, columns)
    return out


def _resampled_cluster_sums(stats: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Column sums over ``n_resamples`` resamples of the rows of ``stats`` (one row per cluster,
    drawn with replacement, as many draws as rows): a ``(n_resamples, k)`` array.

    When few distinct cluster rows exist (0/1 scores in small clusters) a resample is described
    by how often each distinct row is drawn (multinomial counts, same distribution); otherwise
    an index matrix is drawn in chunks and turned into per-cluster draw counts.
    """
    c, k = stats.shape
    uniq, inverse = np.unique(stats, axis=0, return_inverse=True)
    if len(uniq) <= _MAX_DISCRETE_ROWS:
        freq = np.bincount(inverse.ravel(), minlength=len(uniq)) / c
        return rng.multinomial(c, freq, size=n_resamples).astype(np.float64) @ uniq
    out = np.empty((n_resamples, k), dtype=np.float64)
    rows = max(1, _CHUNK_ELEMENTS // c)
    for start in range(0, n_resamples, rows):
        stop = min(n_resamples, start + rows)
        m = stop - start
        idx = rng.integers(0, c, size=(m, c), dtype=np.int64)
        flat = (idx + (np.arange(m, dtype=np.int64) * c)[:, None]).ravel()
        draws = np.bincount(flat, minlength=m * c).reshape(m, c).astype(np.float64)
        out[start:stop] = draws @ stats
    return out


def _clustered_replicates(
    values: np.ndarray,
    membership: np.ndarray | None,
    codes: np.ndarray,
    n_clusters: int,
    n_resamples: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Cluster-bootstrap replicates of the mean (``membership=None``) or macro mean of each of the
    ``m`` columns of ``values`` (``(n, m)``): a ``(n_resamples, m)`` array. A replicate pools all
    samples of the drawn clusters (a cluster drawn twice counts twice)."""
    n, m = values.shape
    if membership is None:
        stats = _cluster_sums(np.concatenate([values, np.ones((n, 1))], axis=1), codes, n_clusters)
        sums = _resampled_cluster_sums(stats, n_resamples, rng)
        return sums[:, :m] / sums[:, m:]
    g = membership.shape[1]
    weighted = (membership[:, :, None] * values[:, None, :]).reshape(n, g * m)
    stats = _cluster_sums(np.concatenate([weighted, membership], axis=1), codes, n_clusters)
    sums = _resampled_cluster_sums(stats, n_resamples, rng)
    group_sums = sums[:, : g * m].reshape(-1, g, m)
    group_counts = sums[:, g * m :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return _nanmean(group_sums / group_counts[:, :, None], axis=1)


def _replicates(
    values: np.ndarray,
    groups: Sequence[Any] | None,
    clusters: Sequence[Any] | None,
    n_resamples: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int | None]:
    """Bootstrap replicates ``(R, m)`` of the (macro) mean of the columns of ``values`` ``(n, m)``,
    resampling samples or, with ``clusters``, whole clusters; plus the number of clusters."""
    n, m = values.shape
    membership = None if groups is None else _membership(groups)
    n_clusters: int | None = None
    if clusters is not None:
        codes, n_clusters = _cluster_codes(clusters, n)
        if n_clusters < n:
            return _clustered_replicates(values, membership, codes, n_clusters, n_resamples, rng), n_clusters
        # every cluster holds one sample: exactly the sample bootstrap (and its fast paths)
    if membership is not None:
        return _resampled_macro(values, membership, n_resamples, rng), n_clusters
    if m != 1:
        raise ValueError("plain means are resampled one column at a time")
    return _resampled_means(values[:, 0], n_resamples, rng)[:, None], n_clusters


def _macro_point(values: np.ndarray, membership: np.ndarray) -> np.ndarray:
    counts = membership.sum(axis=0)
    sums = membership.T @ values  # (g, m)
    return (sums / counts[:, None]).mean(axis=0)


def _interval(dist: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(dist[~np.isnan(dist)], [tail, 1.0 - tail])
    return float(low), float(high)


def _check_args(n_resamples: int, confidence: float) -> None:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")


# --------------------------------------------------------------------------------------------
# plain arrays


def bootstrap_distribution(
    scores: Sequence[float] | np.ndarray,
    n_resamples: int = 10_000,
    seed: int = 0,
    groups: Sequence[Any] | None = None,
    clusters: Sequence[Any] | None = None,
) -> np.ndarray:
    """The ``n_resamples`` bootstrap replicates of the mean (or, with ``groups``, the macro mean).

    ``groups`` gives one group label per score (a list/tuple label puts the sample in several
    groups); the statistic is then the mean over groups of the per-group mean. ``clusters`` gives
    one cluster label per score (e.g. the image id): whole clusters are resampled.
    """
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("scores must be a non-empty 1-D sequence")
    rng = np.random.default_rng(seed)
    return _replicates(values[:, None], groups, clusters, n_resamples, rng)[0][:, 0]


def bootstrap_ci(
    scores: Sequence[float] | np.ndarray,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
    statistic: str = "mean",
    groups: Sequence[Any] | None = None,
    clusters: Sequence[Any] | None = None,
) -> BootstrapResult:
    """Percentile bootstrap interval for the mean of ``scores`` (``statistic="mean"``) or for the
    macro mean over ``groups`` (``statistic="macro"``, one label per score). With ``clusters``
    (one label per score) whole clusters are resampled and ``n_clusters`` is reported.

    Seeded and deterministic: the same inputs and ``seed`` give the same interval.
    """
    _check_args(n_resamples, confidence)
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("scores must be a non-empty 1-D sequence")
    if statistic == "mean":
        estimate = float(values.mean())
        groups = None
    elif statistic == "macro":
        if groups is None:
            raise ValueError('statistic="macro" needs groups')
        estimate = float(_macro_point(values[:, None], _membership(groups))[0])
    else:
        raise ValueError(f'unknown statistic {statistic!r}; use "mean" or "macro"')
    reps, n_clusters = _replicates(
        values[:, None], groups, clusters, n_resamples, np.random.default_rng(seed)
    )
    low, high = _interval(reps[:, 0], confidence)
    return BootstrapResult(estimate, low, high, confidence, int(values.size), n_resamples, n_clusters)


def sign_test(
    baseline: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray
) -> SignTestResult:
    """Exact two-sided sign test of paired scores: under H0 a non-tied pair is equally likely to go
    up or down, so the number of pairs that went down is Binomial(n_untied, 1/2)."""
    b = np.asarray(baseline, dtype=np.float64)
    c = np.asarray(current, dtype=np.float64)
    if b.shape != c.shape:
        raise ValueError("baseline and current must have the same length")
    diff = c - b
    better = int((diff > 0).sum())
    worse = int((diff < 0).sum())
    ties = int(diff.size - better - worse)
    return SignTestResult(better, worse, ties, _binomial_two_sided(min(better, worse), better + worse))


def _binomial_two_sided(k: int, n: int) -> float:
    """P(X <= k) * 2 for X ~ Binomial(n, 1/2), capped at 1 (exact, in log space)."""
    if n == 0:
        return 1.0
    log_terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in range(k + 1)]
    top = max(log_terms)
    log_cdf = top + math.log(sum(math.exp(t - top) for t in log_terms)) - n * math.log(2.0)
    return min(1.0, 2.0 * math.exp(log_cdf))


# --------------------------------------------------------------------------------------------
# aggregation specs (results.json) over per-sample records


def _matches(value: Any, wanted: Any) -> bool:
    if value == wanted:
        return True
    return isinstance(value, (list, tuple)) and wanted in value


def _labels(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _membership(groups: Sequence[Any]) -> np.ndarray:
    labels = [_labels(g) for g in groups]
    names: dict[Any, int] = {}
    for lab in labels:
        for x in lab:
            names.setdefault(_hashable(x), len(names))
    membership = np.zeros((len(labels), len(names)), dtype=np.float64)
    for i, lab in enumerate(labels):
        for x in lab:
            membership[i, names[_hashable(x)]] = 1.0
    return membership


def _hashable(x: Any) -> Any:
    try:
        hash(x)
        return x
    except TypeError:
        return repr(x)


def aggregation_values(
    spec: Mapping[str, Any],
    scores: Sequence[Mapping[str, Any]],
    metadata: Sequence[Mapping[str, Any] | None] | None = None,
) -> tuple[np.ndarray, list[Any] | None, np.ndarray]:
    """Select what an aggregation spec averages.

    Returns ``(values, groups, kept)``: the scores ``spec["score"]`` of the samples the spec uses,
    their group labels (``None`` unless ``kind == "macro"``), and the boolean mask of kept
    samples. A sample is skipped when its score is missing or ``None``, when it fails ``where``,
    or (macro) when its group is an empty list (a missing group
    key counts as the group ``None``, as the tasks aggregate it). ``kind == "corpus"`` raises ``ValueError``.
    """
    kind = spec.get("kind")
    if kind not in ("mean", "macro"):
        raise ValueError(f"aggregation kind {kind!r} is not a function of per-sample scores")
    name = spec.get("score")
    if not name:
        raise ValueError(f"aggregation spec {dict(spec)!r} names no score")
    metas: Sequence[Mapping[str, Any] | None] = metadata if metadata is not None else [None] * len(scores)
    if len(metas) != len(scores):
        raise ValueError("scores and metadata must have the same length")
    where = spec.get("where") or {}
    group_key = spec.get("group") if kind == "macro" else None
    if kind == "macro" and not group_key:
        raise ValueError(f"macro aggregation {dict(spec)!r} names no group")
    kept = np.zeros(len(scores), dtype=bool)
    values: list[float] = []
    groups: list[Any] = []
    for i, (sc, meta) in enumerate(zip(scores, metas, strict=True)):
        value = (sc or {}).get(name)
        if value is None:
            continue
        meta = meta or {}
        if any(k not in meta or not _matches(meta[k], v) for k, v in where.items()):
            continue
        if group_key is not None:
            label = meta.get(group_key)  # a missing key is the group None, as the tasks count it
            if not _labels(label):
                continue
            groups.append(label)
        kept[i] = True
        values.append(float(value))
    return np.asarray(values, dtype=np.float64), (groups if group_key is not None else None), kept


def cluster_labels(
    metadata: Sequence[Mapping[str, Any] | None], cluster_key: str | None
) -> tuple[list[Any] | None, int]:
    """One cluster label per sample from ``metadata[cluster_key]``, and how many samples lack it.

    A sample without the key (or with ``None``) is a cluster of its own. ``(None, 0)`` when
    ``cluster_key`` is ``None`` (samples are independent).
    """
    if not cluster_key:
        return None, 0
    labels: list[Any] = []
    missing = 0
    for i, meta in enumerate(metadata):
        value = (meta or {}).get(cluster_key)
        if value is None:
            missing += 1
            labels.append(("__evalkit_own_cluster__", i))
        else:
            labels.append(("", _hashable(value)))
    return labels, missing


def aggregation_bootstrap(
    spec: Mapping[str, Any],
    scores: Sequence[Mapping[str, Any]],
    metadata: Sequence[Mapping[str, Any] | None] | None = None,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
    cluster_key: str | None = None,
) -> BootstrapResult | None:
    """Recompute a metric from its ``aggregation`` spec and bootstrap its interval.

    ``scores``/``metadata`` are the per-sample ``scores`` and ``metadata`` dicts of the scored
    (non-errored) samples. With ``cluster_key`` the samples sharing ``metadata[cluster_key]`` are
    resampled as one cluster. Returns ``None`` for ``corpus`` metrics and when no sample qualifies.
    """
    if spec.get("kind") == "corpus":
        return None
    values, groups, kept = aggregation_values(spec, scores, metadata)
    if values.size == 0:
        return None
    clusters = None
    if cluster_key:
        metas = metadata if metadata is not None else [None] * len(scores)
        clusters, _ = cluster_labels([m for m, k in zip(metas, kept, strict=True) if k], cluster_key)
    statistic = "mean" if groups is None else "macro"
    return bootstrap_ci(values, n_resamples, confidence, seed, statistic, groups, clusters)


def paired_bootstrap(
    baseline: Sequence[float] | np.ndarray,
    current: Sequence[float] | np.ndarray,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
    groups: Sequence[Any] | None = None,
    clusters: Sequence[Any] | None = None,
) -> PairedResult:
    """Paired bootstrap of ``mean(current) - mean(baseline)`` (macro mean with ``groups``).

    ``baseline[i]`` and ``current[i]`` are the scores of the same sample. Both runs are resampled
    with the same indices, so the per-sample pairing (and its correlation) is kept; with
    ``clusters`` (one label per sample) the same whole clusters are drawn for both runs (paired
    cluster bootstrap). The two-sided p-value is twice the share of resampled deltas on the far
    side of 0 (with the usual +1 correction), so ``p < 1 - confidence`` exactly when the
    interval excludes 0, up to ties.
    """
    _check_args(n_resamples, confidence)
    b = np.asarray(baseline, dtype=np.float64)
    c = np.asarray(current, dtype=np.float64)
    if b.shape != c.shape or b.ndim != 1 or b.size == 0:
        raise ValueError("baseline and current must be non-empty 1-D arrays of the same length")
    rng = np.random.default_rng(seed)
    values = np.stack([b, c], axis=1)
    n_clusters: int | None = None
    if groups is None:
        base_point, cur_point = float(b.mean()), float(c.mean())
    else:
        base_point, cur_point = (float(x) for x in _macro_point(values, _membership(groups)))
    if clusters is not None:
        codes, n_clusters = _cluster_codes(clusters, b.size)
    if groups is None and (n_clusters is None or n_clusters == b.size):
        dist = _resampled_means(c - b, n_resamples, rng)  # the mean difference, resampled directly
    else:
        reps, n_clusters = _replicates(values, groups, clusters, n_resamples, rng)
        dist = reps[:, 1] - reps[:, 0]
    dist = dist[~np.isnan(dist)]
    low, high = _interval(dist, confidence)
    above = int((dist >= 0).sum())
    below = int((dist <= 0).sum())
    p_value = min(1.0, 2.0 * (1 + min(above, below)) / (dist.size + 1))
    sign = sign_test(b, c)
    return PairedResult(
        baseline=base_point,
        current=cur_point,
        delta=cur_point - base_point,
        low=low,
        high=high,
        p_value=p_value,
        confidence=confidence,
        n=int(b.size),
        n_better=sign.n_better,
        n_worse=sign.n_worse,
        method="bootstrap",
        se=float(dist.std(ddof=1)) if dist.size > 1 else 0.0,
        n_clusters=n_clusters,
    )


# --------------------------------------------------------------------------------------------
# power


def effective_sample_size(n: int, groups: Sequence[Any] | None = None) -> float:
    """``1 / sum(w_i^2)`` for the weights ``w_i`` the (macro) mean gives each of ``n`` samples.

    A plain mean weighs every sample ``1/n`` (``n``); a macro mean weighs a sample of group ``g``
    ``1 / (G * n_g)``, so small groups count more and the effective size is smaller than ``n``.
    """
    if groups is None:
        return float(n)
    membership = _membership(groups)
    sizes = membership.sum(axis=0)
    weights = (membership / sizes[None, :]).sum(axis=1) / membership.shape[1]
    return float(1.0 / np.square(weights).sum())


def minimum_detectable_effect(
    se: float,
    n_eff: float,
    alpha: float = 0.05,
    power: float = 0.8,
    score_range: float = 1.0,
    design_effect: float = 1.0,
) -> float:
    """Smallest regression ``d`` that a two-sided paired test at level ``alpha`` detects with
    probability ``power`` (normal approximation).

    ``d`` solves ``d = (z(1 - alpha/2) + z(power)) * SE(d)`` with
    ``SE(d)^2 = se^2 + d * score_range * design_effect / n_eff``: ``se`` is the observed standard
    error of the paired difference (run-to-run noise; 0 for identical runs), and the second term
    is the variance a regression of size ``d`` adds when it is made of whole-score flips (a share
    ``d / score_range`` of the samples dropping by ``score_range``; the largest variance a drop of
    ``d`` in bounded scores can have), inflated by the clustering ``design_effect``.
    For 400 independent 0/1 samples and identical runs: ``(1.96 + 0.84)^2 / 400 = 0.0196``.
    """
    if not 0.0 < alpha < 1.0 or not 0.0 < power < 1.0:
        raise ValueError("alpha and power must lie in (0, 1)")
    if n_eff <= 0:
        raise ValueError("n_eff must be positive")
    normal = NormalDist()
    k = normal.inv_cdf(1.0 - alpha / 2.0) + normal.inv_cdf(power)
    a = k * k * max(score_range, 0.0) * max(design_effect, 1.0) / n_eff
    return float((a + math.sqrt(a * a + 4.0 * k * k * se * se)) / 2.0)

"""Regression gate: compare a current run against a baseline on the same samples.

For every task of the baseline and every metric with a per-sample ``aggregation`` spec, the scores
of the samples both runs scored are paired by sample id and compared with a paired bootstrap (or
an exact sign test). Verdicts (``delta = current - baseline``, sign flipped for lower-is-better
metrics such as failure rates):

* ``REGRESSION`` — ``delta <= -min_effect`` and the difference is significant (``p < alpha``;
  for the bootstrap equivalently: the ``1 - alpha`` interval of ``delta`` excludes 0);
* ``improved`` — ``delta >= +min_effect`` and significant;
* ``ok`` — anything else (no significant change, or one smaller than ``min_effect``).

Corpus metrics (BLEU...) have no per-sample scores: their values are compared directly
(``REGRESSION`` when ``delta <= -min_effect``; greedy decoding makes runs deterministic).

When the task declares a ``cluster_key`` (the image, page or video id several questions share),
the paired bootstrap draws whole clusters for both runs, and the row reports the number of
clusters. Every row also gives the minimum detectable effect (MDE): the smallest regression the
test catches with probability ``power`` at level ``alpha``
(:func:`evalkit.metrics.bootstrap.minimum_detectable_effect`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.errors import UsageError
from evalkit.metrics.bootstrap import (
    PairedResult,
    aggregation_values,
    bootstrap_distribution,
    cluster_labels,
    effective_sample_size,
    minimum_detectable_effect,
    paired_bootstrap,
    sign_test,
)
from evalkit.report.leaderboard import lower_is_better
from evalkit.report.loading import RESULTS_FILE, RunResult, SampleRecord, TaskResult, differing_keys, load_run

REGRESSION = "REGRESSION"
IMPROVED = "improved"
OK = "ok"
INCOMPARABLE = "incomparable"


@dataclass
class GateRow:
    """One task/metric comparison (natural metric scale)."""

    task: str
    metric: str
    method: str
    n: int
    baseline: float | None
    current: float | None
    delta: float | None
    low: float | None
    high: float | None
    p_value: float | None
    min_effect: float
    verdict: str
    note: str = ""
    #: clusters resampled (None: samples resampled independently, or no per-sample test)
    n_clusters: int | None = None
    #: minimum detectable effect at the report's alpha and power (None: no per-sample test)
    mde: float | None = None


@dataclass
class GateReport:
    """All comparisons plus notes (dropped samples, protocol differences, skipped metrics)."""

    rows: list[GateRow]
    notes: list[str] = field(default_factory=list)
    alpha: float = 0.05
    power: float = 0.8

    @property
    def regressed(self) -> bool:
        """Whether any metric regressed significantly (the gate then fails)."""
        return any(r.verdict == REGRESSION for r in self.rows)


def resolve_run(path: str | Path, role: str) -> RunResult:
    """A run from a ``results.json`` path or a dir holding one (directly or, uniquely, below)."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"--{role} {p}: no such file or directory")
    if p.is_dir() and not (p / RESULTS_FILE).is_file():
        found = sorted(
            q for q in p.rglob(RESULTS_FILE) if not ({"samples", "parts", ".hydra"} & set(q.parts))
        )
        if len(found) != 1:
            what = "no" if not found else f"{len(found)}"
            listing = "" if not found else ": " + ", ".join(str(f.parent) for f in found[:5])
            raise UsageError(f"--{role} {p}: {what} {RESULTS_FILE} found below it{listing}; point at one run")
        p = found[0]
    return load_run(p)


def parse_min_effects(values: Sequence[str], default: float) -> tuple[float, dict[str, float]]:
    """``["0.02", "touchstone=5", "docvqa/anls=0.005"]`` → ``(0.02, {"touchstone": 5, ...})``.

    Keys are ``TASK`` or ``TASK/METRIC``; a bare number replaces the default.
    """
    overrides: dict[str, float] = {}
    for raw in values:
        for item in raw.split(","):
            item = item.strip()
            if not item:
                continue
            key, sep, val = item.rpartition("=")
            try:
                number = float(val)
            except ValueError as e:
                raise UsageError(f"--min-effect {item!r}: expected NUMBER or TASK[/METRIC]=NUMBER") from e
            if number < 0:
                raise UsageError(f"--min-effect {item!r} must not be negative")
            if sep:
                overrides[key.strip()] = number
            else:
                default = number
    return default, overrides


def _min_effect(task: str, metric: str, default: float, overrides: Mapping[str, float]) -> float:
    return overrides.get(f"{task}/{metric}", overrides.get(task, default))


def _samples_by_id(result: TaskResult, role: str) -> dict[str, SampleRecord]:
    if not result.has_samples:
        raise UsageError(
            f"{role} run {result.run.path} has no {result.samples_path.relative_to(result.run.path)}"
        )
    out: dict[str, SampleRecord] = {}
    for s in result.samples():
        if s.id in out:
            raise UsageError(f"{result.samples_path}: sample id {s.id!r} appears twice; cannot pair samples")
        out[s.id] = s
    return out


def _examples(ids: set[str]) -> str:
    shown = sorted(ids)[:3]
    return ", ".join(shown) + (", …" if len(ids) > 3 else "")


def _verdict(delta: float, p_value: float | None, alpha: float, min_effect: float, metric: str) -> str:
    effect = -delta if lower_is_better(metric) else delta
    significant = p_value is None or p_value < alpha
    if effect <= -min_effect and significant and effect < 0:
        return REGRESSION
    if effect >= min_effect and significant and effect > 0:
        return IMPROVED
    return OK


def run_gate(
    baseline: RunResult,
    current: RunResult,
    *,
    min_effect: float = 0.01,
    min_effects: Mapping[str, float] | None = None,
    alpha: float = 0.05,
    method: str = "bootstrap",
    tasks: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    n_resamples: int = 10_000,
    seed: int = 0,
    errors_as_zero: bool = False,
    power: float = 0.8,
) -> GateReport:
    """Compare ``current`` with ``baseline`` task by task, metric by metric.

    Raises :class:`UsageError` when a task is missing from ``current``, a samples file is
    missing, or the two runs hold different sample ids for a task. ``errors_as_zero`` scores
    errored samples 0 instead of dropping them from the pairing. ``power`` is the detection
    probability the minimum detectable effect is computed for.
    """
    if method not in ("bootstrap", "sign"):
        raise UsageError(f"--method {method!r}: use bootstrap or sign")
    if not 0 < alpha < 1:
        raise UsageError(f"--alpha {alpha} must lie in (0, 1)")
    if not 0 < power < 1:
        raise UsageError(f"--power {power} must lie in (0, 1)")
    overrides = dict(min_effects or {})
    names = list(tasks) if tasks else list(baseline.tasks)
    unknown = [t for t in names if t not in baseline.tasks]
    if unknown:
        raise UsageError(f"baseline {baseline.path} has no task(s) {', '.join(unknown)}")
    missing = [t for t in names if t not in current.tasks]
    if missing:
        raise UsageError(
            f"current run {current.path} has no results for {', '.join(missing)} "
            "(the baseline has them); run them or restrict with --tasks"
        )
    report = GateReport(rows=[], alpha=alpha, power=power)
    extra = sorted(set(current.tasks) - set(baseline.tasks))
    if extra and not tasks:
        report.notes.append(f"not in the baseline, not gated: {', '.join(extra)}")

    for task in names:
        base, cur = baseline.tasks[task], current.tasks[task]
        diff = differing_keys([base.protocol_signature(True), cur.protocol_signature(True)])
        if diff:
            report.notes.append(f"{task}: protocol differs from the baseline ({', '.join(diff)})")
        if cur.cluster_key != base.cluster_key:
            report.notes.append(
                f"{task}: cluster key differs (baseline {base.cluster_key}, current {cur.cluster_key}); "
                "the baseline's is used"
            )
        base_samples, cur_samples = _samples_by_id(base, "baseline"), _samples_by_id(cur, "current")
        only_base = set(base_samples) - set(cur_samples)
        only_cur = set(cur_samples) - set(base_samples)
        if only_base or only_cur:
            raise UsageError(
                f"{task}: baseline and current hold different sample sets "
                f"({len(only_base)} only in baseline, e.g. {_examples(only_base) or '-'}; "
                f"{len(only_cur)} only in current, e.g. {_examples(only_cur) or '-'})"
            )
        if cur.n_errors > base.n_errors:
            report.notes.append(
                f"{task}: {cur.n_errors} errored samples (baseline {base.n_errors})"
                + (
                    ""
                    if errors_as_zero
                    else "; errored samples are left out of the pairing (see --errors-as-zero)"
                )
            )
        wanted = list(metrics) if metrics else list(base.metrics)
        for metric in wanted:
            if metric not in base.metrics:
                if metrics:
                    report.notes.append(f"{task}: baseline has no metric {metric}")
                continue
            row = _compare_metric(
                task,
                metric,
                base,
                cur,
                base_samples,
                cur_samples,
                _min_effect(task, metric, min_effect, overrides),
                alpha,
                method,
                n_resamples,
                seed,
                errors_as_zero,
                report.notes,
                power,
            )
            if row is not None:
                report.rows.append(row)
    if not report.rows:
        raise UsageError("nothing to compare: no metric is present in both runs")
    return report


def _compare_metric(
    task: str,
    metric: str,
    base: TaskResult,
    cur: TaskResult,
    base_samples: Mapping[str, SampleRecord],
    cur_samples: Mapping[str, SampleRecord],
    min_effect: float,
    alpha: float,
    method: str,
    n_resamples: int,
    seed: int,
    errors_as_zero: bool,
    notes: list[str],
    power: float = 0.8,
) -> GateRow | None:
    b_value, c_value = base.metrics.get(metric), cur.metrics.get(metric)
    if b_value is None or c_value is None:
        notes.append(
            f"{task}/{metric}: not computed in {'baseline' if b_value is None else 'current'}; skipped"
        )
        return None
    spec = base.aggregation.get(metric)
    cur_spec = cur.aggregation.get(metric)
    if spec != cur_spec:
        return GateRow(
            task,
            metric,
            "-",
            0,
            b_value,
            c_value,
            c_value - b_value,
            None,
            None,
            None,
            min_effect,
            INCOMPARABLE,
            f"aggregation differs: baseline {json.dumps(spec)}, current {json.dumps(cur_spec)}",
        )
    if not spec or spec.get("kind") == "corpus":
        delta = c_value - b_value
        return GateRow(
            task,
            metric,
            "exact",
            base.n_scored,
            b_value,
            c_value,
            delta,
            None,
            None,
            None,
            min_effect,
            _verdict(delta, None, alpha, min_effect, metric),
            "corpus metric: no per-sample test",
        )

    score = spec.get("score")
    b_scores: list[dict[str, Any]] = []
    c_scores: list[dict[str, Any]] = []
    meta: list[dict[str, Any]] = []
    dropped = 0
    for sid, b in base_samples.items():
        c = cur_samples[sid]
        bs = _score_of(b, score, errors_as_zero)
        cs = _score_of(c, score, errors_as_zero)
        if bs is None or cs is None:
            dropped += 1
            continue
        b_scores.append({score: bs})
        c_scores.append({score: cs})
        meta.append(b.metadata)
    b_vals, groups, kept = aggregation_values(spec, b_scores, meta)
    c_vals, _, _ = aggregation_values(spec, c_scores, meta)
    if b_vals.size == 0:
        notes.append(f"{task}/{metric}: no sample scored in both runs; skipped")
        return None
    note = f"{dropped} samples not scored in both runs left out" if dropped else ""
    kept_meta = [m for m, k in zip(meta, kept, strict=True) if k]
    clusters, missing = cluster_labels(kept_meta, base.cluster_key)
    if missing:
        notes.append(
            f"{task}/{metric}: {missing} samples have no metadata[{base.cluster_key!r}]; "
            "each counts as a cluster of its own"
        )
    result = paired_bootstrap(b_vals, c_vals, n_resamples, 1 - alpha, seed, groups=groups, clusters=clusters)
    p_value = result.p_value
    if method == "sign":
        p_value = sign_test(b_vals, c_vals).p_value
        if result.n_clusters is not None and result.n_clusters < b_vals.size:
            notes.append(
                f"{task}/{metric}: the sign test treats the {b_vals.size} samples as independent "
                f"({result.n_clusters} clusters); --method bootstrap resamples the clusters"
            )
    mde = _mde(b_vals, c_vals, groups, clusters, result, alpha, power, min(n_resamples, 2000), seed)
    if mde > min_effect:
        notes.append(
            f"{task}/{metric}: these samples detect a change of {mde:.4g} (MDE at alpha {alpha:g}, "
            f"power {power:.0%}); a regression of {min_effect:g} can pass unnoticed"
        )
    return GateRow(
        task=task,
        metric=metric,
        method=method,
        n=int(kept.sum()),
        baseline=result.baseline,
        current=result.current,
        delta=result.delta,
        low=result.low,
        high=result.high,
        p_value=p_value,
        min_effect=min_effect,
        verdict=_verdict(result.delta, p_value, alpha, min_effect, metric),
        note=note,
        n_clusters=result.n_clusters,
        mde=mde,
    )


def _mde(
    base: np.ndarray,
    cur: np.ndarray,
    groups: Sequence[Any] | None,
    clusters: Sequence[Any] | None,
    paired: PairedResult,
    alpha: float,
    power: float,
    n_resamples: int,
    seed: int,
) -> float:
    """Minimum detectable effect of one paired comparison (a property of the sample set).

    Inputs of :func:`minimum_detectable_effect`: the metric's effective sample size; the score
    range (largest spread of the per-sample scores, at least the largest score: 1 for 0/1
    scores); the baseline's design effect (variance of its cluster-bootstrapped metric over the
    sample-bootstrapped one, at least 1); and the run-to-run noise: the paired (cluster)
    bootstrap variance of the delta less the part a one-directional change of the observed size
    explains (``|delta| * range * design effect / n_eff``), so a real regression between the two
    runs does not count as noise.
    """
    values = np.concatenate([base, cur])
    score_range = max(float(values.max() - values.min()), float(np.abs(values).max()))
    design_effect = 1.0
    if clusters is not None:
        clustered = bootstrap_distribution(base, n_resamples, seed, groups=groups, clusters=clusters)
        plain = bootstrap_distribution(base, n_resamples, seed, groups=groups)
        v_plain = float(np.nanvar(plain))
        if v_plain > 0:
            design_effect = max(1.0, float(np.nanvar(clustered)) / v_plain)
    n_eff = effective_sample_size(base.size, groups)
    change = abs(paired.delta) * score_range * design_effect / n_eff
    noise_se = math.sqrt(max(0.0, paired.se**2 - change))
    return minimum_detectable_effect(noise_se, n_eff, alpha, power, score_range, design_effect)


def _score_of(sample: SampleRecord, score: str, errors_as_zero: bool) -> float | None:
    if sample.errored:
        return 0.0 if errors_as_zero else None
    value = sample.scores.get(score)
    return None if value is None else float(value)


def _num(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:.4f}" if abs(x) < 10 else f"{x:.2f}"


def format_gate(report: GateReport) -> str:
    """Markdown table of the gate's rows, then notes and the overall verdict."""
    conf = f"{1 - report.alpha:.0%}"
    header = [
        "task",
        "metric",
        "n",
        "baseline",
        "current",
        "delta",
        f"{conf} CI of delta",
        "p",
        "min effect",
        "clusters",
        f"MDE ({report.power:.0%} power)",
        "verdict",
    ]
    lines = [header]
    for r in report.rows:
        ci = "–" if r.low is None or r.high is None else f"[{_num(r.low)}, {_num(r.high)}]"
        p = "–" if r.p_value is None else f"{r.p_value:.3g}"
        delta = "–" if r.delta is None else f"{r.delta:+.4f}"
        lines.append(
            [
                r.task,
                r.metric,
                str(r.n),
                _num(r.baseline),
                _num(r.current),
                delta,
                ci,
                p,
                f"{r.min_effect:g}",
                "–" if r.n_clusters is None else str(r.n_clusters),
                "–" if r.mde is None else f"{r.mde:.4f}",
                r.verdict,
            ]
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    out = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in lines]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    extra = [f"{r.task}/{r.metric}: {r.note}" for r in report.rows if r.note]
    if report.notes or extra:
        out.append("")
        out += [f"note: {n}" for n in report.notes + extra]
    regressions = [f"{r.task}/{r.metric}" for r in report.rows if r.verdict == REGRESSION]
    out.append("")
    out.append(
        f"FAIL: significant regression in {', '.join(regressions)}"
        if regressions
        else "PASS: no significant regression"
    )
    return "\n".join(out) + "\n"

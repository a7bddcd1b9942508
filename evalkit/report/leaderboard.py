"""Leaderboard: one row per model, one column per task, each task's metric in paper scale.

Each cell carries a 95% percentile bootstrap interval computed from the per-sample scores (see
:mod:`evalkit.metrics.bootstrap`); when the task declares a ``cluster_key`` (image, page or video
id) whole clusters are resampled and the cell reports the number of clusters. Results that are not comparable are flagged, never silently
put side by side:

* the same model and task in two result dirs with different protocols (prompt, dataset split,
  generation, pixel budget...) → the cell gets a marker and a footnote naming what differs (the
  newest run is shown);
* one task run with different task protocols for different models → the column gets a marker
  and a footnote.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evalkit.errors import UsageError
from evalkit.metrics.bootstrap import BootstrapResult, aggregation_bootstrap, bootstrap_ci, cluster_labels
from evalkit.report.loading import RunResult, TaskResult, differing_keys

if TYPE_CHECKING:
    import pandas as pd

MARKERS = ("†", "‡", "§", "¶", "‖", "#")
# Relative difference between results.json and the recomputation from samples that is tolerated.
_RECOMPUTE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class CIOptions:
    """How intervals are computed (``enabled=False`` → no intervals at all)."""

    enabled: bool = True
    n_resamples: int = 10_000
    confidence: float = 0.95
    seed: int = 0


@dataclass
class Cell:
    """One model × task entry, in paper scale (``value * scale``)."""

    model: str
    task: str
    metric: str
    value: float | None
    scale: float
    ci: BootstrapResult | None
    result: TaskResult
    markers: list[str] = field(default_factory=list)

    @property
    def low(self) -> float | None:
        """Lower interval bound in paper scale."""
        return None if self.ci is None else self.ci.low * self.scale

    @property
    def high(self) -> float | None:
        """Upper interval bound in paper scale."""
        return None if self.ci is None else self.ci.high * self.scale

    @property
    def half_width(self) -> float | None:
        """The ``±`` shown in tables, in paper scale."""
        return None if self.ci is None else self.ci.half_width * self.scale


@dataclass
class Footnote:
    """A marker and what it means."""

    marker: str
    text: str


@dataclass
class Leaderboard:
    """Models × tasks with intervals, flags and footnotes; see :func:`build_leaderboard`."""

    models: list[str]
    tasks: list[str]
    metrics: dict[str, str]
    cells: dict[tuple[str, str], Cell]
    column_markers: dict[str, list[str]]
    footnotes: list[Footnote]
    warnings: list[str]
    confidence: float

    def cell(self, model: str, task: str) -> Cell | None:
        """The cell for ``model`` × ``task`` (``None`` when the model did not run the task)."""
        return self.cells.get((model, task))

    def values(self) -> pd.DataFrame:
        """Paper-scale values as a models × tasks ``DataFrame`` (NaN where missing)."""
        return self._frame(lambda c: c.value)

    def lows(self) -> pd.DataFrame:
        """Lower interval bounds (paper scale)."""
        return self._frame(lambda c: c.low)

    def highs(self) -> pd.DataFrame:
        """Upper interval bounds (paper scale)."""
        return self._frame(lambda c: c.high)

    def long(self) -> pd.DataFrame:
        """One row per cell: model, task, metric, value, ci_low, ci_high, n, n_clusters, cluster_key,
        scale, flags, run."""
        import pandas as pd

        rows = [
            {
                "model": c.model,
                "task": c.task,
                "metric": c.metric,
                "value": c.value,
                "ci_low": c.low,
                "ci_high": c.high,
                "n": c.ci.n if c.ci else c.result.n_scored,
                "n_clusters": c.ci.n_clusters if c.ci else None,
                "cluster_key": c.result.cluster_key,
                "scale": c.scale,
                "flags": "".join(c.markers + self.column_markers.get(c.task, [])),
                "run": str(c.result.run.path),
            }
            for c in self.cells.values()
        ]
        return pd.DataFrame(rows)

    def _frame(self, get: Any) -> pd.DataFrame:
        import pandas as pd

        data = {
            t: [
                (
                    float(v)
                    if (c := self.cells.get((m, t))) is not None and (v := get(c)) is not None
                    else float("nan")
                )
                for m in self.models
            ]
            for t in self.tasks
        }
        return pd.DataFrame(data, index=pd.Index(self.models, name="model"), columns=self.tasks)

    def best(self, task: str, decimals: int) -> set[str]:
        """Models with the best displayed value in ``task`` (empty when fewer than two values)."""
        col = self.values()[task].dropna()
        if len(col) < 2:
            return set()
        rounded = col.round(decimals)
        target = rounded.min() if lower_is_better(self.metrics[task]) else rounded.max()
        return set(rounded.index[rounded == target])


def cluster_note(board: Leaderboard) -> str | None:
    """``"Clustered intervals (whole clusters resampled): videomme by videoID, 300 clusters."``
    for the tasks whose shown intervals resampled clusters; ``None`` when none did."""
    parts = []
    for task in board.tasks:
        cells = [c for m in board.models if (c := board.cell(m, task)) is not None]
        counts = sorted({c.ci.n_clusters for c in cells if c.ci is not None and c.ci.n_clusters})
        keys = sorted({str(c.result.cluster_key) for c in cells if c.result.cluster_key})
        if not counts:
            continue
        n = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
        parts.append(f"{task} by {'/'.join(keys)}, {n} clusters")
    if not parts:
        return None
    return "Clustered intervals (whole clusters of samples resampled): " + "; ".join(parts) + "."


def lower_is_better(metric: str) -> bool:
    """Metrics where smaller is better (error / failure rates, unparsed counts)."""
    name = metric.lower()
    return any(word in name for word in ("error", "fail", "unparsed", "loss"))


def _marker(i: int) -> str:
    return MARKERS[i % len(MARKERS)] + (str(i // len(MARKERS) + 1) if i >= len(MARKERS) else "")


def parse_metric_choice(values: Sequence[str]) -> dict[str | None, str]:
    """``["anls", "mtvqa=accuracy_micro"]`` → ``{None: "anls", "mtvqa": "accuracy_micro"}``."""
    out: dict[str | None, str] = {}
    for raw in values:
        for item in raw.split(","):
            item = item.strip()
            if not item:
                continue
            task, sep, metric = item.partition("=")
            if sep and (not task or not metric):
                raise UsageError(f"--metric {item!r}: expected METRIC or TASK=METRIC")
            out[task.strip() if sep else None] = (metric if sep else task).strip()
    return out


def _choose_metric(task: str, results: Sequence[TaskResult], choice: Mapping[str | None, str]) -> str:
    available = set().union(*(r.metrics for r in results))
    if task in choice:
        if choice[task] not in available:
            raise UsageError(
                f"--metric {task}={choice[task]}: task {task!r} has no metric {choice[task]!r}; "
                f"it has {', '.join(sorted(available))}"
            )
        return choice[task]
    if None in choice and choice[None] in available:
        return choice[None]
    return results[0].main_metric


def scored_samples(result: TaskResult) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(scores, metadata)`` of the non-errored samples of ``result``."""
    samples = [s for s in result.samples() if not s.errored]
    return [s.scores for s in samples], [s.metadata for s in samples]


def metric_ci(
    result: TaskResult, metric: str, options: CIOptions, warnings: list[str] | None = None
) -> BootstrapResult | None:
    """Bootstrap interval of ``result.metrics[metric]`` (natural scale) from its samples file.

    ``None`` for corpus metrics, metrics without an aggregation spec, or when the samples file is
    missing (a warning is appended to ``warnings``). A recomputed value that disagrees with
    ``results.json`` also adds a warning; ``results.json`` stays authoritative.
    """
    spec = result.aggregation.get(metric)
    if not options.enabled or not spec or spec.get("kind") == "corpus":
        return None
    if not result.has_samples:
        if warnings is not None:
            warnings.append(f"{result.samples_path} is missing: no interval for {result.name}/{metric}")
        return None
    scores, metadata = scored_samples(result)
    if result.cluster_key and warnings is not None:
        _, missing = cluster_labels(metadata, result.cluster_key)
        if missing:
            warnings.append(
                f"{result.samples_path}: {missing} of {len(metadata)} samples have no "
                f"metadata[{result.cluster_key!r}]; each counts as a cluster of its own"
            )
    try:
        ci = aggregation_bootstrap(
            spec,
            scores,
            metadata,
            options.n_resamples,
            options.confidence,
            options.seed,
            cluster_key=result.cluster_key,
        )
    except ValueError as e:
        if warnings is not None:
            warnings.append(f"{result.run.path}: {result.name}/{metric}: {e}")
        return None
    reported = result.metrics.get(metric)
    if ci is not None and reported is not None and warnings is not None:
        if abs(ci.estimate - reported) > _RECOMPUTE_TOLERANCE * max(1.0, abs(reported)):
            warnings.append(
                f"{result.samples_path}: {metric} recomputed from samples is {ci.estimate:.6g} "
                f"but results.json says {reported:.6g}"
            )
    return ci


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"


def build_leaderboard(
    runs: Sequence[RunResult],
    metric_choice: Mapping[str | None, str] | None = None,
    ci: CIOptions | None = None,
    tasks: Sequence[str] | None = None,
) -> Leaderboard:
    """Build the models × tasks leaderboard from loaded runs.

    ``metric_choice`` maps a task (or ``None`` for every task that has it) to a non-main metric;
    ``tasks`` restricts and orders the columns. Models and tasks keep the order in which they
    first appear in ``runs``.
    """
    options = ci or CIOptions()
    choice = dict(metric_choice or {})
    warnings: list[str] = []
    footnotes: list[Footnote] = []

    by_cell: dict[tuple[str, str], list[TaskResult]] = {}
    models: list[str] = []
    all_tasks: list[str] = []
    for run in runs:
        if run.model_name not in models:
            models.append(run.model_name)
        for name, result in run.tasks.items():
            if name not in all_tasks:
                all_tasks.append(name)
            by_cell.setdefault((run.model_name, name), []).append(result)

    if tasks:
        missing = [t for t in tasks if t not in all_tasks]
        if missing:
            raise UsageError(f"no results for task(s) {', '.join(missing)}; found {', '.join(all_tasks)}")
        all_tasks = list(tasks)
    unknown = [t for t in choice if t is not None and t not in all_tasks]
    if unknown:
        raise UsageError(f"--metric names unknown task(s) {', '.join(unknown)}")
    if None in choice and not any(
        choice[None] in r.metrics for (_, t), rs in by_cell.items() if t in all_tasks for r in rs
    ):
        raise UsageError(f"--metric {choice[None]}: no task has a metric of that name")

    metrics: dict[str, str] = {}
    cells: dict[tuple[str, str], Cell] = {}
    for task in all_tasks:
        results = [r for m in models for r in by_cell.get((m, task), [])]
        metrics[task] = metric = _choose_metric(task, results, choice)
        for model in models:
            candidates = by_cell.get((model, task))
            if not candidates:
                continue
            # the newest run of the whole split; a limited run (a preview) only when there is no other
            chosen = max(
                enumerate(candidates), key=lambda ir: (ir[1].run.limit is None, ir[1].run.end_time, ir[0])
            )[1]
            markers: list[str] = []
            if len(candidates) > 1:
                diff = differing_keys([r.protocol_signature(with_model=True) for r in candidates])
                dirs = ", ".join(str(r.run.path) for r in candidates)
                if diff:
                    mark = _marker(len(footnotes))
                    markers.append(mark)
                    footnotes.append(
                        Footnote(
                            mark,
                            f"{model} / {task}: {len(candidates)} runs with different protocols "
                            f"({', '.join(diff)}); showing the newest{'' if chosen.run.limit is not None else ' whole-split run'}, "
                            f"{chosen.run.path}. Runs: {dirs}",
                        )
                    )
                else:
                    others = ", ".join(str(r.run.path) for r in candidates if r is not chosen)
                    warnings.append(
                        f"{model} / {task}: {len(candidates)} runs of the same protocol; showing the "
                        f"newest, {chosen.run.path} (also: {others})"
                    )
            if chosen.run.limit is not None:
                mark = _marker(len(footnotes))
                markers.append(mark)
                footnotes.append(
                    Footnote(
                        mark,
                        f"{model} / {task}: limit={chosen.run.limit}, the first {chosen.run.limit} "
                        f"samples only, not the whole split ({chosen.run.path})",
                    )
                )
            value = chosen.metrics.get(metric)
            if metric not in chosen.metrics:
                why = " (a split without answers?)" if not chosen.metrics else ""
                warnings.append(f"{model} / {task}: no metric {metric!r} in {chosen.run.path}{why}")
            elif value is None:
                mark = _marker(len(footnotes))
                markers.append(mark)
                note = chosen.notes.get(metric) if isinstance(chosen.notes, Mapping) else chosen.notes
                reason = f": {_short(note, 200)}" if note else ""
                footnotes.append(Footnote(mark, f"{model} / {task}: {metric} could not be computed{reason}"))
            if chosen.n_errors:
                warnings.append(
                    f"{model} / {task}: {chosen.n_errors} of {chosen.n_samples} samples errored "
                    "and are excluded from the metrics"
                )
            cells[(model, task)] = Cell(
                model=model,
                task=task,
                metric=metric,
                value=None if value is None else value * chosen.paper_scale,
                scale=chosen.paper_scale,
                ci=metric_ci(chosen, metric, options, warnings) if value is not None else None,
                result=chosen,
                markers=markers,
            )

    column_markers: dict[str, list[str]] = {}
    for task in all_tasks:
        shown = [c for m in models if (c := cells.get((m, task))) is not None]
        if len(shown) < 2:
            continue
        sigs = [c.result.protocol_signature(with_model=False) for c in shown]
        diff = differing_keys(sigs)
        scales = {c.scale for c in shown}
        if len(scales) > 1:
            diff.append("paper_scale")
        if not diff:
            continue
        mark = _marker(len(footnotes))
        column_markers[task] = [mark]
        details = "; ".join(
            f"{key}: "
            + ", ".join(f"{c.model}={_short(s.get(key))}" for c, s in zip(shown, sigs, strict=True))
            for key in diff
            if key != "paper_scale"
        )
        footnotes.append(
            Footnote(mark, f"{task}: models were run with different protocols, not comparable ({details})")
        )

    return Leaderboard(
        models=models,
        tasks=all_tasks,
        metrics=metrics,
        cells=cells,
        column_markers=column_markers,
        footnotes=footnotes,
        warnings=warnings,
        confidence=options.confidence,
    )


@dataclass
class BreakdownRow:
    """One group of a breakdown (e.g. MTVQA language ``AR``) for one model, in paper scale."""

    model: str
    group: str
    metric: str
    value: float | None
    n: int | None
    low: float | None
    high: float | None


def breakdowns(
    board: Leaderboard, options: CIOptions | None = None
) -> dict[str, dict[str, list[BreakdownRow]]]:
    """``{task: {breakdown key: [rows]}}`` for every task whose shown results have breakdowns.

    Values come from ``results.json``; intervals (when enabled and the samples file exists) are
    bootstrapped from the samples whose ``metadata[key]`` equals (or, for lists, contains) the
    group, using the per-sample score behind the task's metric.
    """
    options = options or CIOptions()
    out: dict[str, dict[str, list[BreakdownRow]]] = {}
    for task in board.tasks:
        for model in board.models:
            cell = board.cell(model, task)
            if cell is None:
                continue
            result = cell.result
            score_name = result.main_score_name(cell.metric) or result.main_score_name()
            for key, groups in result.breakdowns.items():
                rows = out.setdefault(task, {}).setdefault(key, [])
                for group, stats in groups.items():
                    if not isinstance(stats, Mapping):
                        continue
                    metric = (
                        cell.metric if cell.metric in stats else next((k for k in stats if k != "n"), None)
                    )
                    if metric is None:
                        continue
                    raw = stats.get(metric)
                    value = None if raw is None else float(raw) * cell.scale
                    low = high = None
                    if value is not None and score_name:
                        bounds = group_ci(result, key, str(group), score_name, options)
                        if bounds is not None:
                            low, high = bounds[0] * cell.scale, bounds[1] * cell.scale
                    n = stats.get("n")
                    rows.append(
                        BreakdownRow(
                            model, str(group), metric, value, None if n is None else int(n), low, high
                        )
                    )
    return out


def group_ci(
    result: TaskResult, key: str, group: str, score_name: str, options: CIOptions
) -> tuple[float, float] | None:
    """Interval (natural scale) of the mean of ``scores[score_name]`` over the scored samples whose
    ``metadata[key]`` is (or, for lists, contains) ``group`` (clusters resampled when the task has a
    ``cluster_key``); ``None`` when disabled or impossible."""
    if not options.enabled or not result.has_samples:
        return None
    chosen = [
        (float(v), s.metadata)
        for s in result.samples()
        if not s.errored
        and (v := s.scores.get(score_name)) is not None
        and _group_matches(s.metadata.get(key), group)
    ]
    if not chosen:
        return None
    clusters, _ = cluster_labels([m for _, m in chosen], result.cluster_key)
    values = [v for v, _ in chosen]
    ci = bootstrap_ci(values, options.n_resamples, options.confidence, options.seed, clusters=clusters)
    return ci.low, ci.high


def _group_matches(value: Any, group: str) -> bool:
    if isinstance(value, (list, tuple)):
        return any(str(v) == group for v in value)
    return value is not None and str(value) == group


def warn(messages: Sequence[str]) -> None:
    """Print warnings to stderr, one line each."""
    for msg in messages:
        print(f"evalkit: warning: {msg}", file=sys.stderr)

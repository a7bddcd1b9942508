"""Side-by-side comparison with published numbers (``results/paper/<family>.csv``).

Each CSV keeps the columns of ``shared/paper_numbers.csv`` (``model, benchmark, split, metric,
value, scale, source``) and adds the evalkit names they correspond to:

* ``evalkit_model`` — the ``results.json["model"]["name"]`` preset name (``qwen2-vl-7b``);
* ``evalkit_task`` / ``evalkit_metric`` — task and metric names (``docvqa`` / ``anls``); empty
  for benchmarks evalkit does not implement;
* ``evalkit_split`` — the dataset split, normalised (``validation``, ``test``, ``testA``...);
* ``evalkit_breakdown`` — ``KEY=GROUP`` when the number is one group of a breakdown
  (``language=AR`` for the MTVQA per-language table);
* ``paper_judge`` (optional) — the LLM judge behind a judge-scored number (``gpt-4-turbo`` for
  MM-Vet); a run whose ``protocol.judge.model`` is another model, or records none, gets a note.

A run's task matches a row when its name is ``evalkit_task`` (and its ``protocol.dataset.split``
is ``evalkit_split``) or ``<evalkit_task>_<evalkit_split>`` (``refcoco_val``). A run's model
matches when ``model.name`` equals ``evalkit_model`` or ``model.name`` / the last part of
``model.pretrained`` equals the paper's model name (case-insensitive), or through explicit
``OURS=PAPER`` pairs.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.errors import UsageError
from evalkit.report.leaderboard import CIOptions, Leaderboard, group_ci, metric_ci

if TYPE_CHECKING:
    from evalkit.report.formats import Table

PAPERS = ("qwen2-vl", "qwen-vl", "touchstone")
REQUIRED_COLUMNS = ("model", "benchmark", "split", "metric", "value", "scale", "source", "evalkit_task")


@dataclass(frozen=True)
class PaperRow:
    """One published number."""

    model: str
    benchmark: str
    split: str
    metric: str
    value: float
    scale: float
    source: str
    value_text: str
    evalkit_model: str
    evalkit_task: str
    evalkit_split: str
    evalkit_metric: str
    evalkit_breakdown: str
    paper_judge: str = ""


@dataclass
class Comparison:
    """Our number next to a published one (both in paper scale)."""

    model: str
    paper_model: str
    task: str
    benchmark: str
    split: str
    metric: str
    ours: float | None
    low: float | None
    high: float | None
    paper: float
    source: str
    note: str = ""
    paper_text: str = ""

    @property
    def delta(self) -> float | None:
        """``ours - paper``."""
        return None if self.ours is None else self.ours - self.paper

    @property
    def inside_ci(self) -> bool | None:
        """Whether the published value lies inside our interval (``None`` without one)."""
        if self.ours is None or self.low is None or self.high is None:
            return None
        return self.low <= self.paper <= self.high


def paper_dir() -> Path:
    """Where ``<family>.csv`` files live: ``$EVALKIT_PAPER_DIR``, else the repository's
    ``results/paper`` (next to the ``evalkit`` package), else ``./results/paper``."""
    env = os.environ.get("EVALKIT_PAPER_DIR")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2] / "results" / "paper"
    return repo if repo.is_dir() else Path.cwd() / "results" / "paper"


def load_paper(name_or_path: str) -> list[PaperRow]:
    """Load a paper family (``qwen2-vl``, ``qwen-vl``, ``touchstone``) or a CSV path."""
    path = Path(name_or_path)
    if not (path.suffix == ".csv" and path.is_file()):
        path = paper_dir() / f"{name_or_path}.csv"
    if not path.is_file():
        known = sorted(p.stem for p in paper_dir().glob("*.csv")) or list(PAPERS)
        raise UsageError(f"unknown paper {name_or_path!r}: no {path}; known: {', '.join(known)}")
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise UsageError(f"{path} lacks column(s) {', '.join(missing)}")
        rows = []
        for lineno, r in enumerate(reader, 2):
            try:
                value, scale = float(r["value"]), float(r["scale"] or 1)
            except ValueError as e:
                raise UsageError(f"{path}:{lineno}: value/scale is not a number") from e
            rows.append(
                PaperRow(
                    model=r["model"],
                    benchmark=r["benchmark"],
                    split=r["split"],
                    metric=r["metric"],
                    value=value,
                    scale=scale,
                    source=r["source"],
                    value_text=r["value"].strip(),
                    evalkit_model=r.get("evalkit_model") or "",
                    evalkit_task=r.get("evalkit_task") or "",
                    evalkit_split=r.get("evalkit_split") or "",
                    evalkit_metric=r.get("evalkit_metric") or "",
                    evalkit_breakdown=r.get("evalkit_breakdown") or "",
                    paper_judge=(r.get("paper_judge") or "").strip(),
                )
            )
    return rows


def normalise_split(split: str | None) -> str:
    """``"val"``/``"validation"`` → ``"validation"``; drops case, ``-``/``_``/spaces."""
    s = (split or "").strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    return "validation" if s in ("val", "valid", "validation") else s


def parse_model_pairs(values: Sequence[str]) -> dict[str, str]:
    """``["mine=Qwen2-VL-7B-Instruct"]`` → ``{"mine": "Qwen2-VL-7B-Instruct"}``."""
    out = {}
    for raw in values:
        ours, sep, paper = raw.partition("=")
        if not sep or not ours or not paper:
            raise UsageError(f"--paper-model {raw!r}: expected OURS=PAPER_MODEL")
        out[ours.strip()] = paper.strip()
    return out


def judge_note(protocol: Mapping[str, Any], paper_judge: str) -> str | None:
    """A note when a judge-scored number was judged differently from the paper (None: same judge
    or the paper names none). A dated snapshot of the paper's judge (``gpt-4-turbo-2024-04-09``)
    counts as the same judge."""
    if not paper_judge:
        return None
    judge = protocol.get("judge") if isinstance(protocol, Mapping) else None
    ours = str(judge.get("model") or "") if isinstance(judge, Mapping) else ""
    if not ours:
        return f"judge not recorded; paper's judge {paper_judge}"
    a, b = ours.lower(), paper_judge.lower()
    if a == b or (a.startswith(b + "-") and a[len(b) + 1 : len(b) + 2].isdigit()):
        return None
    return f"judge differs: ours {ours}, paper {paper_judge}"


def _model_matches(ours: str, pretrained: str, row: PaperRow, pairs: Mapping[str, str]) -> bool:
    if ours in pairs:
        return pairs[ours].lower() in (row.model.lower(), row.evalkit_model.lower())
    names = {ours.lower(), pretrained.rstrip("/").rsplit("/", 1)[-1].lower()} - {""}
    return ours.lower() == row.evalkit_model.lower() or row.model.lower() in names


def compare_with_paper(
    board: Leaderboard,
    rows: Sequence[PaperRow],
    ci: CIOptions | None = None,
    model_pairs: Mapping[str, str] | None = None,
) -> list[Comparison]:
    """Pair every leaderboard cell with the published rows it corresponds to.

    The compared metric is the row's ``evalkit_metric`` (or, when the run lacks it, the task's
    main metric, said in ``note``); a split that differs from the run's is said in ``note``.
    """
    options = ci or CIOptions()
    pairs = dict(model_pairs or {})
    out: list[Comparison] = []
    for (model, task), cell in board.cells.items():
        result = cell.result
        pretrained = str(result.run.model.get("pretrained") or "")
        our_split = (result.protocol.get("dataset") or {}).get("split")
        candidates = []
        for row in rows:
            if not row.evalkit_task or not _model_matches(model, pretrained, row, pairs):
                continue
            if task == row.evalkit_task:
                candidates.append(
                    (
                        row,
                        our_split is None or normalise_split(our_split) == normalise_split(row.evalkit_split),
                    )
                )
            elif "_" in task:
                base, suffix = task.rsplit("_", 1)
                if base == row.evalkit_task and normalise_split(suffix) == normalise_split(row.evalkit_split):
                    candidates.append((row, True))
        if any(same for _, same in candidates):
            candidates = [(r, s) for r, s in candidates if s]
        for row, same_split in candidates:
            notes = []
            judged = judge_note(result.protocol, row.paper_judge)
            if judged:
                notes.append(judged)
            if not same_split:
                notes.append(f"split differs: ours {our_split}, paper {row.split}")
            elif our_split is None:
                notes.append("our split is unknown")
            metric = row.evalkit_metric or cell.metric
            ours = low = high = None
            if row.evalkit_breakdown:
                key, _, group = row.evalkit_breakdown.partition("=")
                groups = result.breakdowns.get(key) or {}
                match = next((g for g in groups if g.lower() == group.lower()), None)
                stats = groups.get(match) if match is not None else None
                if not isinstance(stats, Mapping):
                    notes.append(f"no breakdown {row.evalkit_breakdown} in our results")
                else:
                    if metric not in stats:
                        fallback = (
                            cell.metric
                            if cell.metric in stats
                            else next((k for k in stats if k != "n"), None)
                        )
                        notes.append(
                            f"no {metric!r} in our {key}={match} breakdown; compared with {fallback}"
                        )
                        metric = fallback or metric
                    raw = stats.get(metric)
                    ours = None if raw is None else float(raw) * cell.scale
                    score = result.main_score_name(metric) or result.main_score_name(cell.metric)
                    bounds = (
                        group_ci(result, key, match, score, options) if score and ours is not None else None
                    )
                    if bounds is not None:
                        low, high = bounds[0] * cell.scale, bounds[1] * cell.scale
            else:
                if metric not in result.metrics:
                    notes.append(f"no {metric!r} in our results; compared with {result.main_metric}")
                    metric = result.main_metric
                raw = result.metrics.get(metric)
                ours = None if raw is None else raw * cell.scale
                interval = metric_ci(result, metric, options) if raw is not None else None
                if interval is not None:
                    low, high = interval.low * cell.scale, interval.high * cell.scale
            out.append(
                Comparison(
                    model=model,
                    paper_model=row.model,
                    task=task,
                    benchmark=row.benchmark
                    + (f" ({row.evalkit_breakdown})" if row.evalkit_breakdown else ""),
                    split=row.split,
                    metric=metric,
                    ours=ours,
                    low=low,
                    high=high,
                    paper=row.value,
                    source=row.source,
                    note="; ".join(notes),
                    paper_text=row.value_text,
                )
            )
    return out


def comparison_table(comparisons: Sequence[Comparison], decimals: int, name: str) -> Table:
    """The comparison as a :class:`~evalkit.report.formats.Table` (Markdown / LaTeX)."""
    from evalkit.report.formats import DASH, Table, TableCell, fmt

    rows = []
    for c in comparisons:
        pm = fmt((c.high - c.low) / 2, decimals) if c.low is not None and c.high is not None else None
        inside = c.inside_ci
        rows.append(
            [
                TableCell(c.model),
                TableCell(c.benchmark),
                TableCell(c.split),
                TableCell(c.metric),
                TableCell(fmt(c.ours, decimals), pm=pm),
                TableCell(c.paper_text or f"{c.paper:g}"),
                TableCell(DASH if c.delta is None else f"{c.delta:+.{decimals}f}"),
                TableCell(DASH if inside is None else ("✓" if inside else "✗")),
                TableCell(c.source + (f" ({c.note})" if c.note else "")),
            ]
        )
    return Table(
        columns=["Model", "Benchmark", "Split", "Metric", "Ours", "Paper", "Δ", "In CI", "Source"],
        rows=rows,
        align=["l", "l", "l", "l", "r", "r", "r", "l", "l"],
        notes=["Δ = ours − paper (paper scale); In CI: ✓ when the published value lies inside our interval."],
        title=f"Published numbers: {name}",
    )


COMPARISON_COLUMNS = (
    "model",
    "paper_model",
    "task",
    "benchmark",
    "split",
    "metric",
    "ours",
    "ci_low",
    "ci_high",
    "paper",
    "delta",
    "inside_ci",
    "source",
    "note",
)


def comparison_csv(comparisons: Sequence[Comparison]) -> str:
    """One CSV row per comparison (paper scale), columns :data:`COMPARISON_COLUMNS`."""
    import pandas as pd

    frame = pd.DataFrame(
        [
            {
                "model": c.model,
                "paper_model": c.paper_model,
                "task": c.task,
                "benchmark": c.benchmark,
                "split": c.split,
                "metric": c.metric,
                "ours": c.ours,
                "ci_low": c.low,
                "ci_high": c.high,
                "paper": c.paper,
                "delta": c.delta,
                "inside_ci": c.inside_ci,
                "source": c.source,
                "note": c.note,
            }
            for c in comparisons
        ],
        columns=list(COMPARISON_COLUMNS),
    )
    from evalkit.report.formats import csv_safe

    for col in ("model", "paper_model", "task", "benchmark", "split", "metric", "source", "note"):
        frame[col] = [csv_safe(v) if isinstance(v, str) else v for v in frame[col]]
    return frame.to_csv(index=False)

"""PNG charts (matplotlib, Agg backend; imported lazily).

* ``<task>.png`` — one bar per model with confidence-interval whiskers;
* ``<task>__<key>.png`` — grouped bars per breakdown (MTVQA languages, Video-MME durations...);
  long category names are wrapped, and rotated when neighbours would still overlap;
* ``<task>__<key>_radar.png`` — a radar chart for an ``ability`` breakdown (TouchStone) with at
  least three groups.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalkit.report.leaderboard import BreakdownRow, Leaderboard

RADAR_KEYS = ("ability",)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9+._-]+", "_", name).strip("_") or "task"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


#: characters per line of a wrapped category label
LABEL_WIDTH = 14


def _overlapping(labels: Sequence[Any], renderer: Any) -> bool:
    """Whether any two neighbouring tick labels overlap on the canvas."""
    boxes = [t.get_window_extent(renderer) for t in labels if t.get_text()]
    return any(a.x1 > b.x0 + 1 for a, b in zip(boxes, boxes[1:], strict=False))


def set_category_ticks(ax: Any, positions: Sequence[float], names: Sequence[str]) -> None:
    """Category tick labels that never overlap: long names are wrapped onto lines of
    :data:`LABEL_WIDTH` characters; if neighbours still collide they are rotated 45°, then 90°
    with a smaller font (the figure is laid out and drawn to measure the rendered labels; call it
    after everything else that takes room, such as the legend)."""
    wrapped = [textwrap.fill(str(n), LABEL_WIDTH, break_long_words=True) or str(n) for n in names]
    ax.set_xticks(list(positions), wrapped)
    fig = ax.figure
    for rotation, size in ((0, None), (45, None), (90, 7)):
        for label in ax.get_xticklabels():
            label.set_rotation(rotation)
            label.set_ha("center" if rotation in (0, 90) else "right")
            label.set_rotation_mode("anchor" if rotation == 45 else "default")
            if size:
                label.set_fontsize(size)
        fig.tight_layout()  # the layout decides the room between ticks
        fig.canvas.draw()
        if not _overlapping(ax.get_xticklabels(), fig.canvas.get_renderer()):
            return


def _errors(
    values: Sequence[float | None], lows: Sequence[float | None], highs: Sequence[float | None]
) -> Any:
    import numpy as np

    below = [0.0 if v is None or lo is None else max(0.0, v - lo) for v, lo in zip(values, lows, strict=True)]
    above = [
        0.0 if v is None or hi is None else max(0.0, hi - v) for v, hi in zip(values, highs, strict=True)
    ]
    return np.array([below, above])


def plot_task(board: Leaderboard, task: str, path: Path) -> Path:
    """Bar chart of ``task`` across models with interval whiskers."""
    plt = _pyplot()
    cells = [(m, c) for m in board.models if (c := board.cell(m, task)) is not None and c.value is not None]
    models = [m for m, _ in cells]
    values = [c.value for _, c in cells]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(models) + 2), 3.6))
    try:
        ax.bar(
            range(len(models)),
            values,
            yerr=_errors(values, [c.low for _, c in cells], [c.high for _, c in cells]),
            capsize=4,
            color="#4c72b0",
        )
        scale = cells[0][1].scale if cells else 1
        ax.set_ylabel(board.metrics[task] + (f" (×{scale:g})" if scale != 1 else ""))
        ax.set_title(task)
        for i, (v, (_, c)) in enumerate(zip(values, cells, strict=True)):
            top = max(v, c.high if c.high is not None else v)
            ax.annotate(
                f"{v:.1f}",
                (i, top),
                ha="center",
                va="bottom",
                fontsize=8,
                xytext=(0, 3),
                textcoords="offset points",
            )
        set_category_ticks(ax, range(len(models)), models)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def plot_breakdown(
    task: str, key: str, rows: Sequence[BreakdownRow], path: Path, ylabel: str | None = None
) -> Path:
    """Grouped bars: one group per breakdown value, one bar per model, with whiskers."""
    fig = breakdown_figure(task, key, rows, ylabel)
    try:
        fig.savefig(path, dpi=100)
    finally:
        _pyplot().close(fig)
    return path


def breakdown_figure(task: str, key: str, rows: Sequence[BreakdownRow], ylabel: str | None = None) -> Any:
    """The figure of :func:`plot_breakdown` (the caller closes it)."""
    import numpy as np

    plt = _pyplot()
    groups = list(dict.fromkeys(r.group for r in rows))
    models = list(dict.fromkeys(r.model for r in rows))
    index = {(r.model, r.group): r for r in rows}
    width = 0.8 / max(1, len(models))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.5 * len(groups) * max(1, len(models)) + 2), 3.8))
    try:
        x = np.arange(len(groups))
        for j, model in enumerate(models):
            rs = [index.get((model, g)) for g in groups]
            vals = [r.value if r and r.value is not None else 0.0 for r in rs]
            err = _errors(
                [r.value if r else None for r in rs],
                [r.low if r else None for r in rs],
                [r.high if r else None for r in rs],
            )
            ax.bar(x + (j - (len(models) - 1) / 2) * width, vals, width, yerr=err, capsize=3, label=model)
        ax.set_ylabel(ylabel or (rows[0].metric if rows else ""))
        ax.set_title(f"{task} by {key}")
        if len(models) > 1:
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        set_category_ticks(ax, x, groups)
        fig.tight_layout()
    except BaseException:
        plt.close(fig)
        raise
    return fig


def plot_radar(task: str, key: str, rows: Sequence[BreakdownRow], path: Path) -> Path:
    """Radar (spider) chart of a breakdown, one polygon per model."""
    plt = _pyplot()
    groups = list(dict.fromkeys(r.group for r in rows))
    models = list(dict.fromkeys(r.model for r in rows))
    index = {(r.model, r.group): r for r in rows}
    angles = [2 * math.pi * i / len(groups) for i in range(len(groups))]
    fig = plt.figure(figsize=(5.5, 5.5))
    try:
        ax = fig.add_subplot(projection="polar")
        for model in models:
            vals = [(index.get((model, g)).value or 0.0) if index.get((model, g)) else 0.0 for g in groups]
            ax.plot(angles + angles[:1], vals + vals[:1], label=model)
            ax.fill(angles + angles[:1], vals + vals[:1], alpha=0.15)
        ax.set_xticks(angles, groups, fontsize=8)
        ax.set_title(f"{task}: {key}")
        ax.legend(loc="lower right", bbox_to_anchor=(1.15, -0.1), fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def write_plots(
    board: Leaderboard,
    breakdown_rows: Mapping[str, Mapping[str, Sequence[BreakdownRow]]],
    out_dir: str | Path,
) -> list[Path]:
    """Write every chart into ``out_dir`` (created); returns the written paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for task in board.tasks:
        if any((c := board.cell(m, task)) is not None and c.value is not None for m in board.models):
            written.append(plot_task(board, task, out / f"{_safe(task)}.png"))
        for key, rows in breakdown_rows.get(task, {}).items():
            rows = [r for r in rows if r.value is not None]
            if not rows:
                continue
            scale = next((c.scale for m in board.models if (c := board.cell(m, task)) is not None), 1)
            ylabel = rows[0].metric + (f" (×{scale:g})" if scale != 1 else "")
            written.append(plot_breakdown(task, key, rows, out / f"{_safe(task)}__{_safe(key)}.png", ylabel))
            if key.lower() in RADAR_KEYS and len({r.group for r in rows}) >= 3:
                written.append(plot_radar(task, key, rows, out / f"{_safe(task)}__{_safe(key)}_radar.png"))
    return written

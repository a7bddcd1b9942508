"""Charts: long category names (MVBench task types, TouchStone categories) never overlap."""

from __future__ import annotations

import pytest

from evalkit.report.leaderboard import BreakdownRow
from evalkit.report.plots import breakdown_figure, set_category_ticks

pytest.importorskip("matplotlib")

LONG = [
    "Action Sequence", "Action Prediction", "Action Antonym", "Fine-grained Action",
    "Unexpected Action", "Object Existence", "Object Interaction", "Object Shuffle",
    "Moving Direction", "Action Localization", "Scene Transition", "Action Count",
    "Moving Count", "Moving Attribute", "State Change", "Fine-grained Pose",
    "Character Order", "Egocentric Navigation", "Episodic Reasoning", "Counterfactual Inference",
]  # fmt: skip


def _boxes(ax):
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()]


def _overlaps(boxes) -> int:
    return sum(1 for i, a in enumerate(boxes) for b in boxes[i + 1 :] if a.overlaps(b))


def _rows(groups, models=("qwen2-vl-2b", "qwen2-vl-7b")):
    return [
        BreakdownRow(m, g, "accuracy", 50.0 + k, 10, 45.0, 55.0) for m in models for k, g in enumerate(groups)
    ]


@pytest.mark.parametrize("groups", [LONG, LONG[:5], ["a very long category name without any break" * 2, "b"]])
def test_breakdown_labels_never_overlap(groups):
    import matplotlib.pyplot as plt

    fig = breakdown_figure("mvbench", "task_type", _rows(groups))
    try:
        ax = fig.axes[0]
        assert _overlaps(_boxes(ax)) == 0
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert [label.replace("\n", " ").replace("  ", " ") for label in labels] != [] and len(labels) == len(
            groups
        )
        assert all(max(len(line) for line in label.split("\n")) <= 14 for label in labels)  # wrapped
    finally:
        plt.close(fig)


def test_plain_labels_would_overlap():
    """The check above can fail: the same 20 names set as plain, unrotated ticks collide."""
    import matplotlib.pyplot as plt

    fig = breakdown_figure("mvbench", "task_type", _rows(LONG))
    try:
        ax = fig.axes[0]
        ax.set_xticks(range(len(LONG)), LONG, rotation=0, ha="center")
        assert _overlaps(_boxes(ax)) > 0
        set_category_ticks(ax, range(len(LONG)), LONG)
        assert _overlaps(_boxes(ax)) == 0
        first = ax.get_xticklabels()[0]
        assert first.get_text() == "Action\nSequence" or first.get_rotation() in (45.0, 90.0)
    finally:
        plt.close(fig)


def test_short_labels_stay_horizontal():
    import matplotlib.pyplot as plt

    fig = breakdown_figure("mtvqa", "language", _rows(["AR", "DE", "FR", "IT"]))
    try:
        assert {t.get_rotation() for t in fig.axes[0].get_xticklabels()} == {0.0}
    finally:
        plt.close(fig)

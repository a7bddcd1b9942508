"""Render tables as Markdown, CSV and LaTeX (booktabs).

A :class:`Table` holds structured cells (value text, ``±`` text, footnote markers, bold) so each
format can typeset them its own way: Markdown ``**81.2** ± 1.1†``, LaTeX
``\\textbf{81.2}{\\scriptsize$\\pm$1.1}\\textsuperscript{\\dag}``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from evalkit.report.leaderboard import Footnote, Leaderboard, cluster_note

PM = "±"
DASH = "–"


@dataclass
class TableCell:
    """One cell: ``text`` (already formatted), optional ``pm`` half-width text, markers, bold."""

    text: str
    pm: str | None = None
    markers: str = ""
    bold: bool = False


@dataclass
class Table:
    """A rectangular table with a header, per-column alignment ('l'/'r'), notes and footnotes."""

    columns: list[str]
    rows: list[list[TableCell]]
    align: list[str]
    column_markers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    footnotes: list[Footnote] = field(default_factory=list)
    title: str | None = None


def fmt(value: float | None, decimals: int) -> str:
    """Fixed-point text; an en dash for missing values."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    return f"{value:.{decimals}f}"


def leaderboard_table(board: Leaderboard, decimals: int = 1, show_ci: bool = True) -> Table:
    """The leaderboard as a :class:`Table`: best value per column in bold, ``±`` half-widths."""
    best = {t: board.best(t, decimals) for t in board.tasks}
    rows: list[list[TableCell]] = []
    for model in board.models:
        row = [TableCell(model)]
        for task in board.tasks:
            cell = board.cell(model, task)
            if cell is None:
                row.append(TableCell(DASH))
                continue
            pm = fmt(cell.half_width, decimals) if show_ci and cell.half_width is not None else None
            row.append(
                TableCell(
                    fmt(cell.value, decimals),
                    pm=pm,
                    markers="".join(cell.markers),
                    bold=cell.value is not None and model in best[task],
                )
            )
        rows.append(row)
    scales = {}
    for task in board.tasks:
        shown = [c.scale for m in board.models if (c := board.cell(m, task)) is not None]
        scales[task] = shown[0] if shown else 1
    metric_note = ", ".join(
        f"{t}: {board.metrics[t]}" + (f" ×{scales[t]:g}" if scales[t] != 1 else "") for t in board.tasks
    )
    notes = [f"Metrics: {metric_note}."]
    if show_ci:
        notes.append(
            f"{PM} = half-width of the {board.confidence:.0%} bootstrap confidence interval "
            "over samples; best per column in bold."
        )
        clustered = cluster_note(board)
        if clustered:
            notes.append(clustered)
    return Table(
        columns=["Model", *board.tasks],
        rows=rows,
        align=["l"] + ["r"] * len(board.tasks),
        column_markers=[""] + ["".join(board.column_markers.get(t, [])) for t in board.tasks],
        notes=notes,
        footnotes=list(board.footnotes),
    )


def leaderboard_csv(board: Leaderboard) -> str:
    """Wide CSV: ``model``, then per task ``<task>``, ``<task>_ci_low``, ``<task>_ci_high``,
    and ``<task>_flags`` (footnote markers). Values in paper scale, full precision."""
    import pandas as pd

    values, lows, highs = board.values(), board.lows(), board.highs()
    frame = pd.DataFrame(index=values.index)
    for task in board.tasks:
        frame[task] = values[task]
        frame[f"{task}_ci_low"] = lows[task]
        frame[f"{task}_ci_high"] = highs[task]
        frame[f"{task}_flags"] = [
            "".join((c.markers if (c := board.cell(m, task)) else []) + board.column_markers.get(task, []))
            for m in board.models
        ]
    frame.index = [csv_safe(str(m)) for m in frame.index]
    frame.index.name = "model"
    return frame.to_csv()


def csv_safe(text: str) -> str:
    """A cell that a spreadsheet never runs as a formula (``=``, ``+``, ``-``, ``@``, tab, CR first
    get a leading apostrophe, as OWASP recommends); numbers such as ``-1.5`` are kept."""
    if text and text[0] in "=+-@\t\r":
        try:
            float(text)
            return text
        except ValueError:
            return "'" + text
    return text


# ----------------------------------------------------------------------------------- markdown


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_cell(cell: TableCell) -> str:
    text = _md_escape(cell.text)
    if cell.bold:
        text = f"**{text}**"
    if cell.pm is not None:
        text += f" {PM} {cell.pm}"
    return text + cell.markers


def to_markdown(table: Table) -> str:
    """GitHub-flavoured Markdown table, followed by notes and footnotes."""
    markers = table.column_markers or [""] * len(table.columns)
    header = [_md_escape(c) + m for c, m in zip(table.columns, markers, strict=True)]
    body = [[_md_cell(c) for c in row] for row in table.rows]
    widths = [max(len(x) for x in col) for col in zip(header, *body, strict=True)]
    widths = [max(w, 3) for w in widths]

    def line(cells: Sequence[str]) -> str:
        padded = [
            c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(cells, widths, table.align, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if a == "r" else ("-" * (w + 2))
            for w, a in zip(widths, table.align, strict=True)
        )
        + "|"
    )
    out = []
    if table.title:
        out += [f"### {table.title}", ""]
    out += [line(header), rule, *(line(r) for r in body)]
    if table.notes or table.footnotes:
        out.append("")
    out += table.notes
    out += [f"{f.marker} {f.text}" for f in table.footnotes]
    return "\n".join(out) + "\n"


# -------------------------------------------------------------------------------------- LaTeX

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "–": "--",
    "×": r"$\times$",
    "Δ": r"$\Delta$",
    "✓": "yes",
    "✗": "no",
}
_LATEX_MARKERS = {"†": r"\dag", "‡": r"\ddag", "§": r"\S", "¶": r"\P", "‖": r"\|", "#": r"\#"}


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters (and map ±, –, ×, Δ) in plain text."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _latex_markers(markers: str) -> str:
    if not markers:
        return ""
    parts = [_LATEX_MARKERS.get(ch, latex_escape(ch)) for ch in markers]
    return r"\textsuperscript{" + "".join(parts) + "}"


def _latex_cell(cell: TableCell) -> str:
    text = latex_escape(cell.text)
    if cell.bold:
        text = r"\textbf{" + text + "}"
    if cell.pm is not None:
        text += r"{\scriptsize$\pm$" + latex_escape(cell.pm) + "}"
    return text + _latex_markers(cell.markers)


def to_latex(table: Table, caption: str | None = None, label: str | None = None) -> str:
    """A ``table`` float with a booktabs ``tabular`` (needs ``\\usepackage{booktabs}``).

    Notes and footnotes follow the tabular in ``\\footnotesize``.
    """
    markers = table.column_markers or [""] * len(table.columns)
    header = " & ".join(
        latex_escape(c) + _latex_markers(m) for c, m in zip(table.columns, markers, strict=True)
    )
    lines = [
        r"% Requires \usepackage{booktabs} in the preamble.",
        r"\begin{table}[t]",
        r"\centering",
        r"\small",
        r"\begin{tabular}{" + "".join(table.align) + "}",
        r"\toprule",
        header + r" \\",
        r"\midrule",
    ]
    for row in table.rows:
        lines.append(" & ".join(_latex_cell(c) for c in row) + r" \\")
    lines.append(r"\bottomrule")
    lines.append(r"\end{tabular}")
    if table.notes or table.footnotes:
        lines.append(r"\par\smallskip")
        lines.append(r"\begin{minipage}{\linewidth}\footnotesize")
        for note in table.notes:
            lines.append(latex_escape(note) + r"\par")
        for f in table.footnotes:
            lines.append(_latex_markers(f.marker) + " " + latex_escape(f.text) + r"\par")
        lines.append(r"\end{minipage}")
    if caption or table.title:
        lines.append(r"\caption{" + latex_escape(caption or table.title or "") + "}")
    if label:
        lines.append(r"\label{" + label + "}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"

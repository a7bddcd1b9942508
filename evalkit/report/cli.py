"""``evalkit report`` and ``evalkit gate`` command lines.

``report_main``/``gate_main`` take the arguments after the subcommand word and return an exit
code; problems the user can fix raise :class:`evalkit.errors.UsageError` (exit 2). This module
imports neither pandas nor matplotlib at import time.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from evalkit.errors import UsageError

FORMATS = ("md", "csv", "latex", "html")
_EXTENSIONS = {"md": ".md", "csv": ".csv", "latex": ".tex", "html": ".html"}


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _report_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="evalkit report",
        description="Leaderboard (Markdown, CSV, LaTeX, HTML) with bootstrap confidence intervals.",
    )
    p.add_argument(
        "paths", nargs="+", help="result dirs, results.json files or globs (a parent dir is searched)"
    )
    p.add_argument(
        "--format",
        "-f",
        action="append",
        default=[],
        help="md (default), csv, latex, html; repeatable or comma-separated",
    )
    p.add_argument("--output", "-o", help="file (one format) or directory (several formats); default stdout")
    p.add_argument(
        "--paper", help="compare with published numbers: qwen2-vl, qwen-vl, touchstone, or a CSV path"
    )
    p.add_argument(
        "--paper-model",
        action="append",
        default=[],
        metavar="OURS=PAPER",
        help="pair one of our model names with a paper model name (repeatable)",
    )
    p.add_argument("--plot", metavar="DIR", help="write PNG charts into DIR")
    p.add_argument(
        "--metric",
        action="append",
        default=[],
        metavar="[TASK=]METRIC",
        help="show a non-main metric (for every task that has it, or for one task)",
    )
    p.add_argument("--tasks", help="comma-separated task columns, in this order")
    p.add_argument("--no-ci", action="store_true", help="skip bootstrap intervals")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--n-resamples", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    p.add_argument("--confidence", type=float, default=0.95, help="interval confidence (default 0.95)")
    p.add_argument("--decimals", type=int, default=1, help="decimals in tables (default 1)")
    p.add_argument(
        "--html-samples",
        type=int,
        default=1000,
        metavar="N",
        help="samples per task and model embedded in the HTML page; the others go to page files "
        "in <html name>_samples/ beside it (0 = embed all; default 1000)",
    )
    p.add_argument("--title", default="evalkit report", help="HTML page title / LaTeX caption")
    return p


def _names(value: str | None) -> list[str] | None:
    """``"a, b"`` → ``["a", "b"]``; ``None`` for an empty option."""
    names = [x.strip() for x in (value or "").split(",") if x.strip()]
    return names or None


def _formats(values: Sequence[str]) -> list[str]:
    out: list[str] = []
    for raw in values or ["md"]:
        for f in raw.split(","):
            f = f.strip().lower()
            f = {"markdown": "md", "tex": "latex"}.get(f, f)
            if f not in FORMATS:
                raise UsageError(f"--format {f!r}: choose from {', '.join(FORMATS)}")
            if f not in out:
                out.append(f)
    return out


def report_main(argv: list[str]) -> int:
    """``evalkit report PATHS... [options]``; returns the exit code (0)."""
    from evalkit.report import formats as fm
    from evalkit.report.leaderboard import CIOptions, breakdowns, build_leaderboard, parse_metric_choice, warn
    from evalkit.report.loading import load_runs

    args = _report_parser().parse_args(argv)
    kinds = _formats(args.format)
    if args.n_resamples < 1:
        raise UsageError("--n-resamples must be at least 1")
    if not 0 < args.confidence < 1:
        raise UsageError("--confidence must lie in (0, 1)")
    out_dir: Path | None = None
    out_file: Path | None = None
    if args.output:
        target = Path(args.output)
        if len(kinds) > 1 or target.is_dir() or args.output.endswith(("/", "\\")):
            out_dir = target
        else:
            out_file = target
    if "html" in kinds and not args.output:
        raise UsageError("--format html writes a file: give --output FILE.html or a directory")

    runs = load_runs(args.paths)
    options = CIOptions(
        enabled=not args.no_ci, n_resamples=args.n_resamples, confidence=args.confidence, seed=args.seed
    )
    board = build_leaderboard(runs, parse_metric_choice(args.metric), options, _names(args.tasks))
    warn(board.warnings)

    comparisons = None
    paper_table = None
    if args.paper:
        from evalkit.report.paper import (
            compare_with_paper,
            comparison_csv,
            comparison_table,
            load_paper,
            parse_model_pairs,
        )

        comparisons = compare_with_paper(
            board, load_paper(args.paper), options, parse_model_pairs(args.paper_model)
        )
        if not comparisons:
            warn([f"no result matches a model/task of paper {args.paper!r}; see --paper-model"])
        paper_table = comparison_table(comparisons, args.decimals, args.paper)

    needs_breakdowns = "html" in kinds or args.plot
    breakdown_rows = breakdowns(board, options) if needs_breakdowns else {}

    table = fm.leaderboard_table(board, args.decimals, show_ci=options.enabled)
    rendered: dict[str, str] = {}
    page_files: dict[Path, str] = {}
    page_dir: Path | None = None
    for kind in kinds:
        if kind == "md":
            text = fm.to_markdown(table)
            if paper_table is not None:
                text += "\n" + fm.to_markdown(paper_table)
        elif kind == "latex":
            text = fm.to_latex(
                table,
                caption=args.title if args.title != "evalkit report" else "Results.",
                label="tab:results",
            )
            if paper_table is not None:
                text += "\n" + fm.to_latex(paper_table, caption=paper_table.title, label="tab:paper")
        elif kind == "csv":
            text = fm.leaderboard_csv(board)
            if comparisons is not None and out_dir is None:
                # One CSV stream can hold one table: with --paper it is the comparison.
                text = comparison_csv(comparisons)
        else:
            from evalkit.report.html import render_html, report_data, sample_page_files

            html_path = out_file if out_file is not None else (out_dir or Path(".")) / "report.html"
            data = report_data(
                board,
                runs,
                breakdown_rows,
                comparisons,
                args.paper,
                options,
                args.decimals,
                args.html_samples or None,
                args.title,
                page_dir=f"{html_path.stem}_samples",
            )
            text = render_html(data)
            page_dir = html_path.parent / data["page_dir"]
            page_files = {html_path.parent / rel: body for rel, body in sample_page_files(data).items()}
        rendered[kind] = text

    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        names = {
            "md": "leaderboard.md",
            "csv": "leaderboard.csv",
            "latex": "leaderboard.tex",
            "html": "report.html",
        }
        for kind, text in rendered.items():
            (out_dir / names[kind]).write_text(text, encoding="utf-8")
        if comparisons is not None and "csv" in kinds:
            (out_dir / f"paper-{Path(args.paper).stem}.csv").write_text(
                comparison_csv(comparisons), encoding="utf-8"
            )
        print(f"evalkit: wrote {', '.join(names[k] for k in rendered)} to {out_dir}", file=sys.stderr)
    elif out_file is not None:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(rendered[kinds[0]], encoding="utf-8")
        print(f"evalkit: wrote {out_file}", file=sys.stderr)
    else:
        sys.stdout.write("\n".join(rendered[k] for k in kinds))

    if page_dir is not None:
        _write_page_files(page_dir, page_files)

    if args.plot:
        from evalkit.report.plots import write_plots

        written = write_plots(board, breakdown_rows, args.plot)
        print(f"evalkit: wrote {len(written)} chart(s) to {args.plot}", file=sys.stderr)
    return 0


def _write_page_files(folder: Path, files: dict[Path, str]) -> None:
    """Write the HTML report's sample page files into ``folder``; page files of an earlier report
    there are removed first, so none can serve another run's samples."""
    import re

    for stale in folder.glob("t*m*/*.js"):
        if re.fullmatch(r"t\d+m\d+", stale.parent.name) and re.fullmatch(r"\d+\.js", stale.name):
            stale.unlink()
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if files:
        print(f"evalkit: wrote {len(files)} sample page file(s) to {folder}", file=sys.stderr)


def _gate_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="evalkit gate",
        description="Fail (exit 1) when the current run regresses significantly against a baseline.",
    )
    p.add_argument("--baseline", required=True, help="baseline results.json or its dir")
    p.add_argument("--current", required=True, help="current results.json or its dir")
    p.add_argument(
        "--min-effect",
        action="append",
        default=[],
        metavar="[TASK[/METRIC]=]X",
        help="smallest drop that counts, in the metric's natural scale (default 0.01); repeatable",
    )
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument(
        "--power",
        type=float,
        default=0.8,
        help="detection probability for the minimum detectable effect column (default 0.8)",
    )
    p.add_argument(
        "--method", choices=("bootstrap", "sign"), default="bootstrap", help="paired test (default bootstrap)"
    )
    p.add_argument("--tasks", help="comma-separated tasks to gate (default: all of the baseline's)")
    p.add_argument("--metrics", help="comma-separated metrics to gate (default: all)")
    p.add_argument("--n-resamples", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument(
        "--errors-as-zero",
        action="store_true",
        help="score errored samples 0 instead of leaving them out of the pairing",
    )
    p.add_argument(
        "--summary", metavar="FILE", help="also append the table to FILE (e.g. $GITHUB_STEP_SUMMARY)"
    )
    return p


def gate_main(argv: list[str]) -> int:
    """``evalkit gate --baseline B --current C``; returns 1 on a significant regression, else 0."""
    from evalkit.report.gate import format_gate, parse_min_effects, resolve_run, run_gate

    args = _gate_parser().parse_args(argv)
    if args.n_resamples < 1:
        raise UsageError("--n-resamples must be at least 1")
    default, overrides = parse_min_effects(args.min_effect, 0.01)
    report = run_gate(
        resolve_run(args.baseline, "baseline"),
        resolve_run(args.current, "current"),
        min_effect=default,
        min_effects=overrides,
        alpha=args.alpha,
        method=args.method,
        tasks=_names(args.tasks),
        metrics=_names(args.metrics),
        n_resamples=args.n_resamples,
        seed=args.seed,
        errors_as_zero=args.errors_as_zero,
        power=args.power,
    )
    text = format_gate(report)
    sys.stdout.write(text)
    if args.summary:
        with open(args.summary, "a", encoding="utf-8") as f:
            f.write("### evalkit gate\n\n" + text + "\n")
    return 1 if report.regressed else 0

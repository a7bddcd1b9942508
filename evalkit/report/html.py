"""The HTML report: sortable leaderboard, breakdowns, paper deltas, sample browser and views.

The page is one file: ``report.html`` (this package) with ``report.css`` and ``report.js`` inlined
and the data embedded as JSON; thumbnails named by a sample's ``"thumbnail"`` field (a path
relative to its result dir) are embedded as base64 data URIs. No network access is needed to view
it.

Samples: the page embeds the first ``max_samples`` samples of every task and model and, for every
sample, its id, status and score (so filters, paging and the compare view cover all samples).
The full records of the other samples are written as page files (``<page dir>/<block>/<n>.js``,
:func:`sample_page_files`) beside the HTML file, which the page loads on demand from the same
folder when one pages there or opens such a sample (still no network).

Status of a sample: *error* when it errored, *unscored* when it has no score behind the column's
metric (``aggregation[metric].score``); otherwise *correct* / *incorrect* only where the task
defines correctness: its per-sample score is a 0/1 score (accuracy, exact match, Acc@IoU≥0.5...),
correct meaning 1. Graded scores (ANLS, VQA accuracy, IoU, per-image CIDEr, judge scores) have no
such rule and the status is *scored*. The URL hash selects the view, e.g.
``report.html#task=docvqa&model=qwen2-vl-7b&filter=incorrect&q=invoice&sort=docvqa:asc&page=3``,
``#task=docvqa&model=m&sample=ID`` (one sample) or ``#task=docvqa&compare=A,B`` (two models on
the same samples, where they disagree).
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import math
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import evalkit
from evalkit.report.leaderboard import BreakdownRow, CIOptions, Leaderboard
from evalkit.report.loading import RunResult, SampleRecord, TaskResult
from evalkit.report.paper import Comparison

#: samples per page of the sample browser (and per page file)
PAGE_SIZE = 100
MAX_THUMBNAIL_BYTES = 512 * 1024
_GRADED_WORDS = ("anls", "vqa_accuracy", "iou", "cider", "bleu", "rouge", "meteor", "spice", "similarity")
_STATUS_CODES = {"correct": "c", "incorrect": "i", "error": "e", "unscored": "u", "scored": "s"}
_MIME = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
}


def _asset(name: str) -> str:
    return resources.files("evalkit.report").joinpath(name).read_text(encoding="utf-8")


def sample_status(score: float | None, errored: bool, correct_at: float | None = None) -> str:
    """``"error"``, ``"unscored"`` (no score), ``"correct"`` / ``"incorrect"`` (score ≥ / <
    ``correct_at``) or, where the task defines no correctness (``correct_at`` is ``None``),
    ``"scored"``."""
    if errored:
        return "error"
    if score is None:
        return "unscored"
    if correct_at is None:
        return "scored"
    return "correct" if score >= correct_at else "incorrect"


def is_graded_score(score_name: str) -> bool:
    """Scores that grade an answer rather than call it right or wrong (ANLS, VQA accuracy, IoU,
    CIDEr and other caption metrics, judge scores), whatever values one run happens to give."""
    name = score_name.lower()
    return name == "score" or name.endswith("_score") or any(word in name for word in _GRADED_WORDS)


def correctness_rule(records: Sequence[SampleRecord], score_name: str | None) -> dict[str, Any] | None:
    """Where the task defines a sample as right or wrong: a 0/1 per-sample score (accuracy, exact
    match, relaxed accuracy, Acc@IoU≥0.5...), i.e. not a graded one (:func:`is_graded_score`) and
    taking only the values 0 and 1. Then ``{"threshold": 1.0, "text": ...}``; else ``None``."""
    if not score_name or is_graded_score(score_name):
        return None
    values = {float(v) for s in records if not s.errored and (v := s.scores.get(score_name)) is not None}
    if not values or not values <= {0.0, 1.0}:
        return None
    return {"threshold": 1.0, "text": f"correct = {score_name} is 1 (the task scores each sample 0 or 1)"}


def _thumbnail(run_dir: Path, rel: str, images: dict[str, str]) -> str | None:
    """Embed a thumbnail once; returns its key in ``images`` or ``None`` when unusable."""
    key = f"{run_dir}::{rel}"
    if key in images:
        return key
    root = run_dir.resolve()
    path = (root / rel).resolve()
    mime = _MIME.get(path.suffix.lower())
    if mime is None or not path.is_relative_to(root) or not path.is_file():
        return None
    if path.stat().st_size > MAX_THUMBNAIL_BYTES:
        return None
    images[key] = f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    return key


def _score_of(s: SampleRecord, score_name: str | None) -> float | None:
    raw = s.scores.get(score_name) if score_name else None
    return None if raw is None else _num(float(raw))


def _sample_item(
    s: SampleRecord, score_name: str | None, correct_at: float | None, run_dir: Path, images: dict[str, str]
) -> dict[str, Any]:
    score = _score_of(s, score_name)
    return {
        "id": s.id,
        "question": s.question,
        "prompt": s.prompt,
        "prediction": s.prediction,
        "target": s.target,
        "score": score,
        "scores": {k: _num(v) if isinstance(v, int | float) else v for k, v in s.scores.items()},
        "status": sample_status(score, s.errored, correct_at),
        "error": s.error,
        "metadata": s.metadata,
        "thumb": _thumbnail(run_dir, s.thumbnail, images) if s.thumbnail else None,
    }


def _samples_block(
    result: TaskResult, metric: str, limit: int | None, images: dict[str, str], key: str
) -> tuple[dict[str, Any], dict[int, list[dict[str, Any]]]]:
    """The embedded block of one task × model, and the records of the other pages by page number
    (their thumbnails inlined, each page file standing on its own)."""
    score_name = result.main_score_name(metric) or result.main_score_name()
    records = result.samples()
    rule = correctness_rule(records, score_name)
    correct_at = None if rule is None else float(rule["threshold"])
    embedded = len(records) if not limit else min(len(records), -(-limit // PAGE_SIZE) * PAGE_SIZE)
    items = [_sample_item(s, score_name, correct_at, result.run.path, images) for s in records[:embedded]]
    pages: dict[int, list[dict[str, Any]]] = {}
    for start in range(embedded, len(records), PAGE_SIZE):
        own: dict[str, str] = {}
        page = [
            _sample_item(s, score_name, correct_at, result.run.path, own)
            for s in records[start : start + PAGE_SIZE]
        ]
        for item in page:
            item["thumb"] = own.get(item["thumb"]) if item["thumb"] else None  # the data URI itself
            item["inline_thumb"] = True
        pages[start // PAGE_SIZE] = page
    statuses = [sample_status(_score_of(s, score_name), s.errored, correct_at) for s in records]
    block = {
        "key": key,
        "score": score_name or "(none)",
        "correct": rule,
        "total": len(records),
        "embedded": embedded,
        "ids": [s.id for s in records],
        "status": "".join(_STATUS_CODES[x] for x in statuses),
        "scores": [_score_of(s, score_name) for s in records],
        "items": items,
    }
    return block, pages


def _num(x: float | None) -> float | None:
    """JSON-safe number: ``None`` for missing and NaN/inf."""
    return None if x is None or not math.isfinite(x) else float(x)


def report_data(
    board: Leaderboard,
    runs: Sequence[RunResult],
    breakdown_rows: Mapping[str, Mapping[str, Sequence[BreakdownRow]]],
    comparisons: Sequence[Comparison] | None = None,
    paper_name: str | None = None,
    ci: CIOptions | None = None,
    decimals: int = 1,
    max_samples: int | None = 1000,
    title: str = "evalkit report",
    page_dir: str = "report_samples",
) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready data (the page's only input).

    ``max_samples`` samples per task and model are embedded (rounded up to whole pages; ``None``:
    all); the records of the others are kept under ``"_pages"`` for :func:`sample_page_files`,
    which writes them into ``page_dir`` (relative to the HTML file)."""
    from evalkit.report.formats import leaderboard_table

    options = ci or CIOptions()
    notes = leaderboard_table(board, decimals, show_ci=options.enabled).notes
    best = {t: board.best(t, decimals) for t in board.tasks}
    columns = []
    for task in board.tasks:
        scales = [c.scale for m in board.models if (c := board.cell(m, task)) is not None]
        columns.append(
            {
                "task": task,
                "metric": board.metrics[task],
                "scale": scales[0] if scales else 1,
                "markers": "".join(board.column_markers.get(task, [])),
            }
        )
    rows = []
    for model in board.models:
        cells = {}
        for task in board.tasks:
            c = board.cell(model, task)
            if c is None:
                continue
            cells[task] = {
                "v": _num(c.value),
                "lo": _num(c.low),
                "hi": _num(c.high),
                "pm": _num(c.half_width),
                "n": c.ci.n if c.ci else c.result.n_scored,
                "nc": c.ci.n_clusters if c.ci else None,
                "markers": "".join(c.markers),
                "best": c.value is not None and model in best[task],
            }
        rows.append({"model": model, "cells": cells})

    breakdown_data: dict[str, dict[str, Any]] = {}
    for task, keys in breakdown_rows.items():
        for key, brs in keys.items():
            if not brs:
                continue
            cells_by_model: dict[str, dict[str, Any]] = {}
            for r in brs:
                cells_by_model.setdefault(r.model, {})[r.group] = {
                    "v": _num(r.value),
                    "lo": _num(r.low),
                    "hi": _num(r.high),
                    "pm": None if r.low is None or r.high is None else (r.high - r.low) / 2,
                    "n": r.n,
                }
            breakdown_data.setdefault(task, {})[key] = {
                "metric": brs[0].metric,
                "groups": list(dict.fromkeys(r.group for r in brs)),
                "models": list(dict.fromkeys(r.model for r in brs)),
                "cells": cells_by_model,
            }

    images: dict[str, str] = {}
    samples: dict[str, dict[str, Any]] = {}
    pages: dict[str, dict[int, list[dict[str, Any]]]] = {}
    for t, task in enumerate(board.tasks):
        for m, model in enumerate(board.models):
            c = board.cell(model, task)
            if c is not None and c.result.has_samples:
                key = f"t{t}m{m}"
                block, extra = _samples_block(c.result, c.metric, max_samples, images, key)
                samples.setdefault(task, {})[model] = block
                if extra:
                    pages[key] = extra

    paper = None
    if comparisons is not None:
        paper = {
            "name": paper_name or "",
            "rows": [
                {
                    "model": r.model,
                    "paper_model": r.paper_model,
                    "task": r.task,
                    "benchmark": r.benchmark,
                    "split": r.split,
                    "metric": r.metric,
                    "ours": _num(r.ours),
                    "lo": _num(r.low),
                    "hi": _num(r.high),
                    "pm": None if r.low is None or r.high is None else (r.high - r.low) / 2,
                    "paper": r.paper,
                    "paper_text": r.paper_text or f"{r.paper:g}",
                    "delta": _num(r.delta),
                    "inside": r.inside_ci,
                    "source": r.source,
                    "note": r.note,
                }
                for r in comparisons
            ],
        }

    return {
        "title": title,
        "generated": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "evalkit_version": evalkit.__version__,
        "confidence": options.confidence,
        "n_resamples": options.n_resamples if options.enabled else 0,
        "decimals": decimals,
        "leaderboard": {"columns": columns, "rows": rows},
        "notes": notes,
        "footnotes": [{"marker": f.marker, "text": f.text} for f in board.footnotes],
        "warnings": list(board.warnings),
        "runs": [
            {
                "model": run.model_name,
                "tasks": ", ".join(run.tasks),
                "path": str(run.path),
                "evalkit_version": run.provenance.get("evalkit_version"),
                "git_commit": run.provenance.get("git_commit"),
                "end_time": run.provenance.get("end_time"),
            }
            for run in runs
        ],
        "paper": paper,
        "breakdowns": breakdown_data,
        "samples": samples,
        "images": images,
        "page_size": PAGE_SIZE,
        "page_dir": page_dir,
        "_pages": pages,
    }


def sample_page_files(data: Mapping[str, Any]) -> dict[str, str]:
    """The page files of the samples not embedded in the page: ``{relative path: text}``.

    Each is a script that hands its records to the page
    (``evalkitSamplePage(block key, page number, records)``); :func:`report_data`'s
    ``page_dir`` is the folder they go in, beside the HTML file.
    """
    out: dict[str, str] = {}
    for key, pages in (data.get("_pages") or {}).items():
        for number, items in pages.items():
            payload = _script_json([key, number, items])
            out[f"{data['page_dir']}/{key}/{number}.js"] = f"evalkitSamplePage.apply(null, {payload});\n"
    return out


def _escape_html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _script_json(data: Any) -> str:
    payload = json.dumps(data, ensure_ascii=False, allow_nan=False)
    # "<" never appears raw inside a <script>, so "</script>" in a prompt cannot end it.
    return payload.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def render_html(data: Mapping[str, Any]) -> str:
    """Fill the page template with ``data`` (from :func:`report_data`; its ``_pages`` are left
    out: they go to :func:`sample_page_files`)."""
    payload = _script_json({k: v for k, v in data.items() if k != "_pages"})
    page = _asset("report.html")
    page = page.replace("/*__CSS__*/", _asset("report.css"))
    page = page.replace("/*__JS__*/", _asset("report.js"))
    page = page.replace("__TITLE__", _escape_html(str(data.get("title", "evalkit report"))))
    return page.replace("__DATA__", payload)

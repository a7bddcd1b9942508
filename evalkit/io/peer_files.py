"""Readers of other harnesses' per-sample prediction files, for ``evalkit score``/``evalkit judge``.

* lmms-eval — the per-sample log (``*_samples_<task>.jsonl``, one JSON object per line with
  ``doc_id``, ``doc``, ``target``, ``arguments``, ``resps``, ``filtered_resps``...; also the older
  ``<task>.json`` with a ``logs`` list): :func:`read_lmms_eval`.  The question a line was asked is
  ``doc["question"]``; logs that carry no ``doc`` (lmms-eval 0.7.x writes ``input``, the prompt,
  instead) give the prompt as the question, so the caller's question check still runs (the prompt
  contains the question) and a shifted ``doc_id`` is caught instead of scored.
* VLMEvalKit — prediction files (``<model>_<dataset>.xlsx`` / ``.tsv`` / ``.csv`` with ``index``,
  ``question``, ``prediction`` columns): :func:`read_vlmevalkit`.  An empty ``prediction`` cell is
  an empty answer (``""``), in every format, as VLMEvalKit itself reads it — not a missing sample.

Each reader returns :class:`ExternalPrediction` objects in file order; matching them to a task's
samples is the caller's job (:mod:`evalkit.runner.rescore`).
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from evalkit.errors import UsageError


@dataclass
class ExternalPrediction:
    """One prediction read from a samples file, with every handle that can match it to a sample.

    Attributes:
        prediction: the model output (None when the file has none; non-strings are kept and become
            score errors).
        prompt: the prompt as the harness logged it, if any.
        id: the sample id as written in the file (evalkit ``id``, VLMEvalKit ``index``).
        position: 0-based position in the harness's list of documents (lmms-eval ``doc_id``,
            VLMEvalKit row order).
        doc: the harness's document (lmms-eval ``doc``, images stripped), for task-specific ids.
        question: the question text as the harness saw it (to check positional alignment).
        error / error_type: an error carried over from evalkit's own samples file.
    """

    prediction: Any
    prompt: str | None = None
    id: str | None = None
    position: int | None = None
    doc: Mapping[str, Any] | None = None
    question: str | None = None
    error: str | None = None
    error_type: str | None = None


#: format reader: path -> predictions in file order
Reader = Callable[[Path], list[ExternalPrediction]]


# --------------------------------------------------------------------------- lmms-eval
def _lmms_prediction(obj: Mapping[str, Any]) -> Any:
    """The raw model output of one lmms-eval log entry: ``resps[0][0]``, else ``filtered_resps[0]``."""
    for key in ("resps", "filtered_resps"):
        value = obj.get(key)
        while isinstance(value, list):
            if not value:
                value = None
                break
            value = value[0]
        if value is not None:
            return value
    return None


def _lmms_entry(obj: Any, line: int) -> ExternalPrediction:
    if not isinstance(obj, Mapping) or "doc_id" not in obj:
        raise UsageError(f"lmms-eval log entry {line} has no 'doc_id' (not an lmms-eval per-sample log?)")
    args = obj.get("arguments")
    prompt = obj.get("input")
    if not isinstance(prompt, str) and isinstance(args, list) and args:
        first = args[0]
        if isinstance(first, list) and first:
            first = first[0]
        prompt = first if isinstance(first, str) else None
    doc = obj.get("doc") if isinstance(obj.get("doc"), Mapping) else {}
    question = doc.get("question")
    if not isinstance(question, str) and isinstance(prompt, str):
        question = prompt  # no doc (lmms-eval 0.7.x): the prompt holds the question text
    try:
        position = int(obj["doc_id"])
    except (TypeError, ValueError):
        raise UsageError(f"lmms-eval log entry {line}: doc_id {obj['doc_id']!r} is not an integer") from None
    return ExternalPrediction(
        prediction=_lmms_prediction(obj),
        prompt=prompt if isinstance(prompt, str) else None,
        position=position,
        doc=doc,
        question=question if isinstance(question, str) else None,
    )


def _dedupe_filters(entries: list[ExternalPrediction]) -> list[ExternalPrediction]:
    """lmms-eval logs a document once per filter; the raw response is the same in each copy."""
    seen: dict[int | None, Any] = {}
    out = []
    for e in entries:
        if e.position in seen and seen[e.position] == e.prediction:
            continue
        seen.setdefault(e.position, e.prediction)
        out.append(e)
    return out


def read_lmms_eval(path: Path) -> list[ExternalPrediction]:
    """An lmms-eval per-sample log: ``*_samples_<task>.jsonl`` or an older ``<task>.json`` with ``logs``
    (a document logged once per filter is kept once)."""
    return _dedupe_filters(_read_lmms_eval_entries(path))


def _read_lmms_eval_entries(path: Path) -> list[ExternalPrediction]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(text)
        entries = data.get("logs") if isinstance(data, Mapping) else data
        if isinstance(data, Mapping) and entries is None and isinstance(data.get("samples"), Mapping):
            groups = list(data["samples"].values())
            if len(groups) != 1:
                raise UsageError(f"{path} holds samples of {len(groups)} tasks; pass a single-task log")
            entries = groups[0]
        if not isinstance(entries, list):
            raise UsageError(f"{path} is not an lmms-eval log (no 'logs' list)")
        return [_lmms_entry(e, i + 1) for i, e in enumerate(entries)]
    out = []
    for i, line in enumerate(text.splitlines()):
        if line.strip():
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{path}:{i + 1}: not valid JSON ({exc.msg})") from None
            out.append(_lmms_entry(obj, i + 1))
    return out


# --------------------------------------------------------------------------- VLMEvalKit
_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def _xlsx_text(node: ElementTree.Element) -> str:
    return "".join(t.text or "" for t in node.iter(f"{_NS}t"))


def _col_index(ref: str) -> int:
    letters = re.match(r"[A-Z]+", ref)
    n = 0
    for ch in letters.group(0) if letters else "A":
        n = n * 26 + ord(ch) - 64
    return n - 1


def read_xlsx_rows(path: Path) -> list[dict[str, Any]]:
    """The first worksheet of an .xlsx file as a list of row dicts keyed by the header row.

    Uses pandas/openpyxl when installed, else a small reader of the OOXML parts (shared strings,
    inline strings, numbers, booleans), so VLMEvalKit files can be read without extra packages.
    """
    try:
        import openpyxl  # noqa: F401
    except ImportError:
        pass
    else:
        import pandas as pd

        frame = pd.read_excel(path)
        return [
            {k: (None if _is_nan(v) else v) for k, v in row.items()}
            for row in frame.to_dict(orient="records")
        ]
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise UsageError(f"{path} is not a valid .xlsx file") from None
    with zf:
        names = zf.namelist()
        shared: list[str] = []
        if "xl/sharedStrings.xml" in names:
            root = ElementTree.fromstring(zf.read("xl/sharedStrings.xml"))
            shared = [_xlsx_text(si) for si in root.iter(f"{_NS}si")]
        sheets = sorted(n for n in names if n.startswith("xl/worksheets/") and n.endswith(".xml"))
        if not sheets:
            raise UsageError(f"{path} has no worksheet")
        sheet = "xl/worksheets/sheet1.xml" if "xl/worksheets/sheet1.xml" in names else sheets[0]
        root = ElementTree.fromstring(zf.read(sheet))
    table: list[list[Any]] = []
    for row in root.iter(f"{_NS}row"):
        values: list[Any] = []
        for cell in row.iter(f"{_NS}c"):
            idx = _col_index(cell.get("r", "A"))
            while len(values) < idx:
                values.append(None)
            kind = cell.get("t", "n")
            v = cell.find(f"{_NS}v")
            if kind == "inlineStr":
                is_node = cell.find(f"{_NS}is")
                value: Any = _xlsx_text(is_node) if is_node is not None else ""
            elif v is None or v.text is None:
                value = None
            elif kind == "s":
                value = shared[int(v.text)]
            elif kind in ("str", "e"):
                value = v.text
            elif kind == "b":
                value = v.text == "1"
            else:
                num = float(v.text)
                value = int(num) if num.is_integer() else num
            values.append(value)
        table.append(values)
    if not table:
        return []
    header = [str(h) if h is not None else f"column_{i}" for i, h in enumerate(table[0])]
    return [
        {h: (r[i] if i < len(r) else None) for i, h in enumerate(header)}
        for r in table[1:]
        if any(x is not None for x in r)
    ]


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def read_vlmevalkit(path: Path) -> list[ExternalPrediction]:
    """A VLMEvalKit prediction file (.xlsx, .tsv or .csv) with ``index`` and ``prediction`` columns."""
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        rows = read_xlsx_rows(path)
    elif suffix in (".tsv", ".csv"):
        import pandas as pd

        frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False)
        rows = frame.to_dict(orient="records")
    else:
        raise UsageError(f"VLMEvalKit prediction files are .xlsx, .tsv or .csv, not {path.suffix!r}")
    if rows and "prediction" not in rows[0]:
        raise UsageError(f"{path} has no 'prediction' column (columns: {', '.join(map(str, rows[0]))})")
    out = []
    for n, row in enumerate(rows):
        index = row.get("index")
        pred = row.get("prediction")
        if pred is None or _is_nan(pred):
            pred = ""  # an empty cell is an empty answer (as in the .tsv, and in VLMEvalKit)
        if isinstance(pred, int | float) and not isinstance(pred, bool) and not _is_nan(pred):
            pred = str(pred)  # spreadsheets turn "3" into 3
        question = row.get("question")
        out.append(
            ExternalPrediction(
                prediction=pred,
                id=None if index is None or index == "" else str(index),
                position=n,
                question=question if isinstance(question, str) else None,
            )
        )
    return out


def detect_format(path: Path) -> str:
    """Guess the format of a samples file from its name and first record."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".tsv", ".csv"):
        return "vlmevalkit"
    if suffix == ".json":
        return "lmms_eval"
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    break
                if isinstance(obj, dict) and "doc_id" in obj and ("resps" in obj or "filtered_resps" in obj):
                    return "lmms_eval"
                if isinstance(obj, dict) and "id" in obj and "prediction" in obj:
                    return "evalkit"
                break
    raise UsageError(
        f"cannot tell the format of {path}; pass format=evalkit|lmms_eval|vlmevalkit "
        "(evalkit samples JSONL, lmms-eval *_samples_<task>.jsonl, VLMEvalKit .xlsx/.tsv)"
    )

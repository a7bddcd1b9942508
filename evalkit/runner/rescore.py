"""``evalkit score``: re-score an existing samples file against the dataset, without any model.

Predictions are read by a format reader (:data:`READERS`), matched to the task's samples, scored by
the task's current scorer, and written like ``evalkit run`` writes them (``results.json`` +
``samples/<task>.jsonl``). Formats (``format=auto`` picks one from the file):

* ``evalkit`` — evalkit's own ``samples/<task>.jsonl``; matched by ``id``; errored samples keep
  their error (input/model), score errors are re-scored.
* ``lmms_eval`` — lmms-eval's per-sample log (``*_samples_<task>.jsonl``, one JSON object per line
  with ``doc_id``, ``doc``, ``target``, ``arguments``, ``resps``, ``filtered_resps``...; also the
  older ``<task>.json`` with a ``logs`` list). The prediction is the raw model output
  ``resps[0][0]`` (lmms-eval's task filters are not applied: evalkit's scorer does its own
  extraction), the prompt ``arguments[0]``. Matched by the dataset id found in ``doc`` (the task's
  id column, or its ``external_sample_id``); tasks whose dataset has no id column (RealWorldQA,
  ChartQA, AI2D) are matched by position (``doc_id``), checked against the question text.
* ``vlmevalkit`` — VLMEvalKit prediction files (``<model>_<dataset>.xlsx`` / ``.tsv`` / ``.csv``
  with ``index``, ``question``, ``prediction`` columns). Matched by ``index`` when those are the
  dataset's ids, else by row order, checked against the question text.

Ids that do not match are a usage error that says how many and which (first few).
``check_questions=false`` skips the question-text check of positional matching.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.errors import UsageError
from evalkit.io.peer_files import (  # noqa: F401  (re-exported: the readers used to live here)
    ExternalPrediction,
    Reader,
    detect_format,
    read_lmms_eval,
    read_vlmevalkit,
    read_xlsx_rows,
)
from evalkit.runner.results import finalize_task, now_iso, provenance, write_results
from evalkit.runner.runner import score_record
from evalkit.runner.store import OutputLock, read_jsonl_records
from evalkit.types import Record, Sample

#: the one-line usage of ``evalkit score`` (printed by ``--help`` and on a missing argument)
SCORE_USAGE = (
    "usage: evalkit score <run folder> | task=<name> samples=<file> "
    "[format=auto|evalkit|lmms_eval|vlmevalkit] [overrides]"
)


# --------------------------------------------------------------------------- evalkit
def read_evalkit_samples(path: Path) -> dict[str, tuple[Any, str | None]]:
    """evalkit's own ``samples/<task>.jsonl`` (errored samples keep prediction None)."""
    return {r.id: (r.prediction, r.prompt) for r in read_jsonl_records(path)}


def read_evalkit(path: Path) -> list[ExternalPrediction]:
    """evalkit's samples JSONL as external predictions; input/model errors are carried over."""
    out = []
    for r in read_jsonl_records(path):
        keep = r.error is not None and r.error_type in ("input", "model")
        out.append(
            ExternalPrediction(
                prediction=r.prediction,
                prompt=r.prompt,
                id=r.id,
                error=r.error if keep else None,
                error_type=r.error_type if keep else None,
            )
        )
    return out


READERS: dict[str, Reader] = {
    "evalkit": read_evalkit,
    "lmms_eval": read_lmms_eval,
    "vlmevalkit": read_vlmevalkit,
}


# --------------------------------------------------------------------------- matching
def _pop_arg(args: list[str], key: str) -> str | None:
    for a in list(args):
        if a.startswith(f"{key}="):
            args.remove(a)
            return a.split("=", 1)[1]
    return None


def _mismatch(missing: list[str], unknown: list[str]) -> str:
    parts = []
    if unknown:
        parts.append(
            f"{len(unknown)} id(s) in the samples file are not in the dataset (first: {', '.join(unknown[:5])})"
        )
    if missing:
        parts.append(f"{len(missing)} dataset id(s) have no prediction (first: {', '.join(missing[:5])})")
    return "; ".join(parts)


def _external_key(task: Any, pred: ExternalPrediction) -> str | None:
    if pred.doc is not None:
        hook = getattr(task, "external_sample_id", None)
        if callable(hook):
            return hook(pred.doc)
        column = getattr(task, "id_column", None)
        value = pred.doc.get(column) if column else None
        return None if value is None else str(value)
    return pred.id


def _norm_question(text: str) -> str:
    return " ".join(text.lower().split())


def dataset_question(task: Any, sample: Sample) -> str | None:
    """The dataset's question text of a sample (None when the task cannot tell)."""
    hook = getattr(task, "sample_question", None)
    if callable(hook):
        return hook(sample)
    column = getattr(task, "question_column", None)
    dataset = getattr(task, "dataset", None)
    if not column or dataset is None or column not in getattr(dataset, "column_names", ()):
        return None
    cache = getattr(task, "_rescore_questions", None)
    if cache is None:
        cache = dataset[column]
        task._rescore_questions = cache
    value = cache[sample.index] if sample.index < len(cache) else None
    return value if isinstance(value, str) else None


def match_predictions(
    task: Any,
    all_samples: Sequence[Sample],
    samples: Sequence[Sample],
    preds: Sequence[ExternalPrediction],
    path: Path,
    check_questions: bool = True,
) -> dict[str, ExternalPrediction]:
    """Map sample ids of ``samples`` to predictions: by id when every prediction carries a dataset
    id, else by position (checked against the question text). Raises a :class:`UsageError` that
    counts and lists the mismatches."""
    all_ids = {s.id for s in all_samples}
    keys = [_external_key(task, p) for p in preds]
    by_id = all(k is not None for k in keys) and (
        all(k in all_ids for k in keys) or any(p.position is None for p in preds)
    )
    if not by_id:
        if any(p.position is None for p in preds):
            no_key = sum(1 for k in keys if k is None)
            raise UsageError(
                f"samples file {path}: {no_key} prediction(s) carry no id that task {task.name} can match"
            )
        keys = [
            all_samples[p.position].id if 0 <= p.position < len(all_samples) else f"#{p.position}"  # type: ignore[operator]
            for p in preds
        ]
    seen: dict[str, int] = {}
    dups = []
    for k in keys:
        seen[k] = seen.get(k, 0) + 1  # type: ignore[index]
        if seen[k] == 2:  # type: ignore[index]
            dups.append(k)
    if dups:
        raise UsageError(
            f"samples file {path}: {len(dups)} id(s) occur more than once (first: {', '.join(map(str, dups[:5]))})"
        )
    matched = dict(zip(keys, preds, strict=True))
    unknown = [str(k) for k in keys if k not in all_ids]
    missing = [s.id for s in samples if s.id not in matched]
    if unknown or missing:
        how = "by id" if by_id else "by position"
        raise UsageError(
            f"samples file {path} does not match task {task.name} (matched {how}): {_mismatch(missing, unknown)}"
        )
    # positions, and the row-index ids of datasets without an id column, say nothing about content:
    # check that the questions agree
    if check_questions and (not by_id or getattr(task, "id_column", "") is None):
        bad = []
        for s in samples:
            theirs = matched[s.id].question
            ours = dataset_question(task, s)
            if theirs is None or ours is None:
                continue
            a, b = _norm_question(theirs), _norm_question(ours)
            if not (a == b or a in b or b in a):
                bad.append(s.id)
        if bad:
            raise UsageError(
                f"samples file {path} does not match task {task.name}: {len(bad)} "
                f"question(s) differ from the dataset's (first ids: {', '.join(bad[:5])}); wrong task or "
                "dataset version? (check_questions=false skips this check)"
            )
    return {s.id: matched[s.id] for s in samples}


# --------------------------------------------------------------------------- command
def open_samples_file(
    samples_arg: str, fmt: str, task_name: str, args: list[str], command: str
) -> tuple[Path, str, Reader]:
    """Check a samples file, resolve its format and reader (``fmt="auto"`` detects it) and, unless ``args``
    already names one, append the default ``output_dir`` (the run folder the file came from, else
    ``outputs/<command>/<task>``). Shared by ``evalkit score`` and ``evalkit judge``."""
    path = Path(samples_arg).expanduser()
    if not path.exists():
        raise UsageError(f"samples file {path} does not exist")
    if fmt == "auto":
        fmt = detect_format(path)
    reader = READERS.get(fmt)
    if reader is None:
        raise UsageError(f"unknown samples format {fmt!r}; available: auto, {', '.join(READERS)}")
    if not any(a.startswith("output_dir=") for a in args):
        default_out = (
            path.parent.parent if path.parent.name == "samples" else Path("outputs") / command / task_name
        )
        args.append(f"output_dir={default_out}")
    return path, fmt, reader


def _run_folder_args(args: list[str]) -> None:
    """``evalkit score <run folder>``: turn a positional run folder into ``samples=``/``task=``."""
    positional = [a for a in args if "=" not in a and not a.startswith("-")]
    if not positional:
        return
    if len(positional) > 1:
        raise UsageError(f"evalkit score takes one run folder, got {len(positional)}: {' '.join(positional)}")
    folder = Path(positional[0]).expanduser()
    args.remove(positional[0])
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a run folder (pass samples=<file> for a samples file)")
    files = sorted((folder / "samples").glob("*.jsonl"))
    task = _pop_arg(args, "task")
    if task is None:
        if len(files) != 1:
            names = ", ".join(f.stem for f in files) or "none"
            raise UsageError(f"run folder {folder} holds samples of {names}; name one with task=<name>")
        task = files[0].stem
    args += [f"task={task}", f"samples={folder / 'samples' / f'{task}.jsonl'}"]


def _run_config(path: Path) -> dict[str, Any] | None:
    """The config of the run whose ``samples/<task>.jsonl`` is ``path`` (None when not a run folder)."""
    folder = path.parent.parent if path.parent.name == "samples" else None
    if folder is None or not (folder / "config.yaml").exists():
        return None
    import yaml

    try:
        data = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def _inherited_overrides(run_cfg: dict[str, Any] | None, task_name: str, args: list[str]) -> list[str]:
    """The dataset and ``limit`` of the run being re-scored, unless the command line sets them."""
    if not run_cfg or (run_cfg.get("task") or {}).get("name") != task_name:
        return []
    given = {a.split("=", 1)[0].lstrip("+~") for a in args}
    out = []
    dataset = (run_cfg.get("task") or {}).get("dataset") or {}
    for key in ("path", "name", "split", "revision"):
        full = f"task.dataset.{key}"
        if key in dataset and full not in given and "task.dataset" not in given:
            value = dataset[key]
            out.append(f"{full}={'null' if value is None else json.dumps(value)}")
    if "limit" not in given and "limit" in run_cfg:
        out.append(f"limit={'null' if run_cfg['limit'] is None else int(run_cfg['limit'])}")
    return out


def _read_predictions(reader: Reader, path: Path, fmt: str) -> list[ExternalPrediction]:
    try:
        return reader(path)
    except UsageError:
        raise
    except (RecursionError, UnicodeDecodeError, ValueError, KeyError, TypeError, IndexError, AttributeError,
            OSError) as exc:  # fmt: skip
        kind = "nested too deeply" if isinstance(exc, RecursionError) else f"{type(exc).__name__}: {exc}"
        raise UsageError(
            f"samples file {path} cannot be read as {fmt} predictions ({' '.join(str(kind).split())[:200]}); "
            "is it the right file and format=?"
        ) from None


_RECOMPUTED = ("prediction", "scores", "error", "error_type")


def rescore(args: list[str]) -> dict[str, Any]:
    """Run ``evalkit score`` with CLI-style ``key=value`` arguments; returns the results dict.

    Given a run folder (or its ``samples/<task>.jsonl``), the dataset and ``limit`` recorded in that
    run's config are used unless overridden, every field that is not recomputed (fingerprint, usage,
    model identity, thumbnail...) is kept, and results.json keeps the run's config with a
    ``rescored_by`` block."""
    from evalkit.overrides import compose
    from evalkit.pipeline import mark_health, prepare

    args = list(args)
    _run_folder_args(args)
    samples_arg = _pop_arg(args, "samples")
    fmt = _pop_arg(args, "format") or "auto"
    task_name = _pop_arg(args, "task")
    check = (_pop_arg(args, "check_questions") or "true").lower() not in ("false", "0", "no")
    if not samples_arg or not task_name:
        raise UsageError(SCORE_USAGE)
    path, fmt, reader = open_samples_file(samples_arg, fmt, task_name, args, "score")
    model_name = _pop_arg(args, "model") or "tiny"
    run_cfg = _run_config(path) if fmt == "evalkit" else None
    user_args = list(args)
    cfg = compose(task_name, model_name, [*_inherited_overrides(run_cfg, task_name, args), *args])
    predictions = _read_predictions(reader, path, fmt)
    originals = {r.id: r for r in read_jsonl_records(path)} if fmt == "evalkit" else {}

    start = now_iso()
    task, model = prepare(cfg)
    output_dir = Path(cfg["output_dir"]).expanduser()
    with OutputLock(output_dir):
        task.before_run(cfg, output_dir)  # e.g. an LLM judge's health check, before any work
        task.load()
        all_samples = task.samples()
        samples = all_samples
        if cfg.get("limit") is not None:
            samples = samples[: int(cfg["limit"])]
        matched = match_predictions(task, all_samples, samples, predictions, path, check_questions=check)
        records = []
        for s in samples:
            ext = matched[s.id]
            rec = Record(
                id=s.id,
                prompt=ext.prompt,
                prediction=ext.prediction,
                target=s.target,
                metadata=dict(s.metadata),
            )
            old = originals.get(s.id)
            if old is not None:  # keep what is not recomputed
                rec.fingerprint, rec.usage, rec.cached = old.fingerprint, dict(old.usage), old.cached
                rec.model_identity = old.model_identity
                rec.extra = {k: v for k, v in old.extra.items() if k not in _RECOMPUTED}
            if ext.error is not None:
                rec.error, rec.error_type = ext.error, ext.error_type  # type: ignore[assignment]
            elif ext.prediction is None:
                rec.error, rec.error_type = "no prediction in the samples file", "model"
            records.append(score_record(task, s, rec))
        records = task.after_generation(records, cfg, output_dir)  # e.g. the LLM-judge phase
        result = finalize_task(task, records, output_dir)
    old_results: dict[str, Any] = {}
    if (output_dir / "results.json").exists():
        try:
            old_results = json.loads((output_dir / "results.json").read_text())
        except (OSError, ValueError):
            old_results = {}
    model_info = old_results.get("model") or {"name": f"rescored:{path.name}", "backend": fmt}
    prov = provenance(
        model_info.get("resolved") or {}, task.dataset_info, int(cfg.get("seed") or 0), start, now_iso()
    )
    prov["rescored_from"] = str(path)
    prov["rescored_format"] = fmt
    config = dict(old_results.get("config") or run_cfg or cfg)
    config["rescored_by"] = {
        "time": now_iso(),
        "overrides": user_args,
        "task_version": f"{task.name}-{task.version}",
        "task": cfg.get("task"),
        "limit": cfg.get("limit"),
    }
    max_rate = float((cfg.get("runner") or {}).get("max_error_rate", 0.05))
    problem = mark_health(result, max_rate)
    results = write_results(
        output_dir, task.name, result, model_info, config, prov, old_results.get("timing") or {}
    )
    if problem:
        from evalkit.pipeline import IncompleteRunError

        raise IncompleteRunError(
            f"{task.name}: {problem}; results written to {output_dir} (marked incomplete)", results
        )
    return results

"""``evalkit judge task=<name> samples=<file> judge=<name> [overrides]``: re-judge a samples file.

No model runs: predictions are read from the samples file (evalkit JSONL, or the other formats of
``evalkit score``), matched to the dataset, and the task's judge phase
(:meth:`~evalkit.tasks.base.Task.after_generation`) scores them — through the judge cache and the
durable judgment log, so re-judging with the same judge and inputs makes no API call. Results are
written like ``evalkit run`` writes them (by default into the run folder the samples file came from).
The judge is health-checked first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evalkit.errors import UsageError

USAGE = "usage: evalkit judge task=<name> samples=<file> judge=<name> [format=auto|evalkit|...] [overrides]"


def judge_main(argv: list[str]) -> int:
    """Entry point of ``evalkit judge``; returns the exit code (errors raise EvalkitError)."""
    results = rejudge(argv)
    for name, t in (results.get("tasks") or {}).items():
        for metric, value in (t.get("metrics") or {}).items():
            shown = "null" if value is None else f"{value:.4f}"
            print(f"{name}  {metric}  {shown}")
    return 0


def rejudge(argv: list[str]) -> dict[str, Any]:
    """Run ``evalkit judge`` with CLI-style ``key=value`` arguments; returns the results dict."""
    from evalkit.overrides import compose
    from evalkit.runner.rescore import _pop_arg, match_predictions, open_samples_file
    from evalkit.runner.results import finalize_task, now_iso, provenance, write_results
    from evalkit.runner.runner import score_record
    from evalkit.runner.store import OutputLock
    from evalkit.tasks.base import Task
    from evalkit.tasks.registry import build_task
    from evalkit.types import Record

    args = list(argv)
    samples_arg = _pop_arg(args, "samples")
    task_name = _pop_arg(args, "task")
    fmt = _pop_arg(args, "format") or "auto"
    check = (_pop_arg(args, "check_questions") or "true").lower() not in ("false", "0", "no")
    if not samples_arg or not task_name:
        raise UsageError(USAGE)
    if not any(a.startswith(("judge=", "+judge=")) for a in args):
        raise UsageError(f"evalkit judge needs a judge: pass judge=gpt-4 (or judge=local ...); {USAGE}")
    path, fmt, reader = open_samples_file(samples_arg, fmt, task_name, args, "judge")
    output_dir = Path(str(next(a for a in args if a.startswith("output_dir=")).split("=", 1)[1])).expanduser()
    old: dict[str, Any] = {}
    if (output_dir / "results.json").exists():
        old = json.loads((output_dir / "results.json").read_text())
    model_info = old.get("model") or {"name": f"judged:{path.name}", "backend": fmt}
    model_name = _pop_arg(args, "model") or "tiny"
    cfg = compose(task_name, model_name, args)
    if "model_label" in cfg["task"] and not any(a.startswith("task.model_label=") for a in args):
        # the judged model's name (TouchStone puts it in the judge prompt), not the stand-in model's
        cfg["task"]["model_label"] = str(model_info.get("name"))
    task = build_task(cfg["task"])
    if type(task).after_generation is Task.after_generation:
        raise UsageError(
            f"task {task_name} has no judge phase (its scorer is rule-based); re-score it with "
            f"evalkit score task={task_name} samples={samples_arg}"
        )
    predictions = reader(path)
    start = now_iso()
    with OutputLock(output_dir):
        task.before_run(cfg, output_dir)
        task.load()
        all_samples = task.samples()
        samples = all_samples if cfg.get("limit") is None else all_samples[: int(cfg["limit"])]
        matched = match_predictions(task, all_samples, samples, predictions, path, check_questions=check)
        records = []
        for s in samples:
            ext = matched[s.id]
            rec = Record(id=s.id, prompt=ext.prompt, prediction=ext.prediction, target=s.target,
                         metadata=dict(s.metadata))  # fmt: skip
            if ext.error is not None:
                rec.error, rec.error_type = ext.error, ext.error_type  # type: ignore[assignment]
            elif ext.prediction is None:
                rec.error, rec.error_type = "no prediction in the samples file", "model"
            records.append(score_record(task, s, rec))
        records = task.after_generation(records, cfg, output_dir)
        result = finalize_task(task, records, output_dir)
    prov = provenance(
        model_info.get("resolved") or {}, task.dataset_info, int(cfg.get("seed") or 0), start, now_iso()
    )
    prov["judged_from"] = str(path)
    prov["judged_format"] = fmt
    return write_results(output_dir, task.name, result, model_info, cfg, prov, old.get("timing") or {})

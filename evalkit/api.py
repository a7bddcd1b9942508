"""Python API: run an evaluation from task/model names, or from a composed config.

>>> from evalkit.api import evaluate
>>> results = evaluate("docvqa_mini", "tiny", ["limit=8", "output_dir=/tmp/ek"])
>>> results["tasks"]["docvqa_mini"]["metrics"]["anls"]

The orchestration itself lives in :mod:`evalkit.pipeline` (prepare → run → finish), the override
checks and composition in :mod:`evalkit.overrides`; both are re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evalkit.errors import UsageError
from evalkit.overrides import compose, config_to_dict
from evalkit.pipeline import (
    DEFAULT_MAX_ERROR_RATE,
    IncompleteRunError,
    finish,
    mark_health,
    model_block,
    open_evaluation,
    prepare,
    run_from_config,
    runner_options,
    save_config,
)

__all__ = [
    "DEFAULT_MAX_ERROR_RATE",
    "IncompleteRunError",
    "compose",
    "config_to_dict",
    "evaluate",
    "finish",
    "mark_health",
    "model_block",
    "open_evaluation",
    "prepare",
    "run_from_config",
    "runner_options",
    "save_config",
]


def evaluate(task: str, model: str, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Compose ``task``/``model`` with Hydra overrides and run; returns the results.json content."""
    if not task or not model:
        raise UsageError("evaluate() needs a task name and a model name")
    from evalkit import warmup
    from evalkit.overrides import start_compose

    pending = start_compose(task, model, overrides)  # composed in a forked child, where it can
    warmup.start_for_args([f"model={model}", *overrides])  # torch/transformers load meanwhile
    try:
        cfg = pending.result()
    except BaseException:
        # refused: the caller goes on in this process, where a half-imported torch or transformers
        # would break its next import (``datasets`` among its importers)
        warmup.wait()
        raise
    return run_from_config(cfg)

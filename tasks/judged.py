"""Judge plumbing shared by the tasks an LLM judge scores after generation (MM-Vet, TouchStone).

Not a benchmark: :class:`JudgedTaskMixin` gives such a task its judge lifecycle — the judge config
is required (``judge=none`` is a usage error), the judge is built and health-checked before any
model work, and closed once judging is done with its description and usage kept for the results —
and :class:`JudgedTaskResult` adds the ``judge`` block to the results-contract layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from evalkit.errors import UsageError
from evalkit.judge.client import LLMJudge, _is_none_judge
from evalkit.tasks.base import TaskResult
from evalkit.types import Record

#: the error prefix of a record the judge could not score (cleared before judging again)
JUDGE_ERROR_PREFIX = "judge:"


@dataclass
class JudgedTaskResult(TaskResult):
    """TaskResult plus the ``judge`` block (judge identity, prompt version, usage, estimated cost)."""

    judge: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The results-contract layout plus ``judge``."""
        out = super().to_json()
        out["judge"] = self.judge
        return out


def clear_judge_error(record: Record) -> None:
    """Forget a judging failure of an earlier run (a ``score`` error starting ``judge:``), so the
    record is judged again; other errors stay."""
    if record.error_type == "score" and str(record.error or "").startswith(JUDGE_ERROR_PREFIX):
        record.error, record.error_type = None, None


class JudgedTaskMixin:
    """The judge lifecycle of a task scored by an LLM judge (put it before the task base class).

    Subclasses set :attr:`judge_suggestion`, the ``judge=...`` choices named when no judge is
    configured; they judge in ``after_generation`` and end with :meth:`finish_judging`.
    """

    #: what the "needs an LLM judge" usage error suggests after "pass "
    judge_suggestion: ClassVar[str] = "judge=gpt-4 (or judge=local judge.base_url=<url>)"

    name: str
    config: dict[str, Any]

    def __init__(self, config: Mapping[str, Any]):
        super().__init__(config)  # type: ignore[call-arg]
        self.judge: LLMJudge | None = None
        self.judge_summary: dict[str, Any] = {}

    def judge_config(self) -> dict[str, Any]:
        """The resolved judge config (``task.judge: ${judge}``); a usage error when there is none."""
        cfg = self.config.get("judge")
        if _is_none_judge(cfg):
            raise UsageError(
                f"task {self.name} needs an LLM judge: pass {self.judge_suggestion}; see docs/judge.md"
            )
        return dict(cfg)  # type: ignore[arg-type]

    def before_run(self, config: Mapping[str, Any], output_dir: Path) -> None:
        """Build the judge and health-check it before any model work (one clear line on failure)."""
        self.judge = LLMJudge.from_run_config(config, self.judge_config(), Path(output_dir), self.name)
        try:
            self.judge.health_check()
        except Exception:
            self.judge.close()
            self.judge = None
            raise

    def finish_judging(self, usage: dict[str, Any]) -> None:
        """Keep the judge's description with this run's ``usage`` for the results, then close it."""
        assert self.judge is not None
        self.judge_summary = {**self.judge.describe(), "usage_this_run": usage}
        self.judge.close()
        self.judge = None

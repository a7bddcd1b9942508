"""A window backend stopped by a fatal error (a 401 in the middle of a window) hands the answers it
already received to the runner, which writes and caches them before the run stops (issue 18)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from evalkit.api import compose, prepare
from evalkit.errors import BackendFatalError
from evalkit.models.base import Model
from evalkit.runner.runner import Runner, RunnerOptions
from evalkit.types import Request, Response


class RevokedMidWindow(Model):
    """Answers a whole window; the key is revoked after ``answered`` answers of the first call."""

    takes_windows = True
    preferred_batch_size = 4

    def __init__(self, answered: int) -> None:
        super().__init__({"name": "revoked"})
        self.answered = answered
        self.calls: list[list[str]] = []

    def identity(self) -> dict[str, Any]:
        return {"backend": "revoked-test"}

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        self.calls.append([r.sample_id for r in requests])
        if self.answered is None:
            return [Response(text=f"a-{r.sample_id}") for r in requests]
        partial = {k: Response(text=f"a-{r.sample_id}") for k, r in enumerate(requests) if k < self.answered}
        partial[len(requests) - 1] = Response(text="", error="never sent")  # failed ones are not kept
        raise BackendFatalError("401 Unauthorized: the key was revoked", partial=partial)


def test_answers_received_before_a_fatal_error_are_written_and_cached(tmp_path, docvqa_dir) -> None:
    task, _ = prepare(compose("docvqa", "tiny", [f"task.dataset.path={docvqa_dir}"]))
    task.load()
    samples = task.samples()[:12]
    opts = RunnerOptions(
        cache=True, cache_dir=str(tmp_path / "cache"), progress=False, window_batches=3, sort_by_length=False
    )
    model = RevokedMidWindow(answered=5)
    with pytest.raises(BackendFatalError, match="revoked"):
        Runner(task, model, tmp_path / "out", opts).run(samples)
    first_call = model.calls[0]
    assert len(first_call) == 12  # the whole window in one call
    kept = Runner(task, model, tmp_path / "out", opts).store.load()
    assert sorted(kept) == sorted(first_call[:5])
    assert all(kept[i].prediction == f"a-{i}" for i in first_call[:5])
    model.answered = None
    model.calls.clear()
    # a fresh folder is served the five paid answers from the response cache
    Runner(task, model, tmp_path / "other", opts).run(samples)
    assert sorted(sum(model.calls, [])) == sorted(first_call[5:])
    # the rerun of the stopped one resumes (cache off): only the unanswered samples are sent
    model.calls.clear()
    opts.cache = False
    records = Runner(task, model, tmp_path / "out", opts).run(samples)
    assert sorted(sum(model.calls, [])) == sorted(first_call[5:])
    assert [r.prediction for r in records] == [f"a-{s.id}" for s in samples]

"""Start-up of a run (issue 18): the backend's libraries are imported in the background while the
config is composed, the weights load while the dataset loads when the run will certainly need them,
and a model generating on the CPU is not slowed down by pipeline threads."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit import warmup
from evalkit.api import compose, evaluate, prepare
from evalkit.models.base import Model
from evalkit.pipeline import start_load_ahead
from evalkit.runner.cache import ResponseCache
from evalkit.runner.runner import BackgroundLoad, resolve_prefetch, resolve_workers
from evalkit.types import Response
from tests.conftest import read_samples


def test_backend_of_a_model_config_follows_its_defaults() -> None:
    assert warmup.backend_of_model_config("tiny") == "hf"  # tiny.yaml -> defaults: [hf]
    assert warmup.backend_of_model_config("qwen2-vl-7b") == "hf"
    assert warmup.backend_of_model_config("vllm-qwen2-vl-7b") == "vllm"
    assert warmup.backend_of_model_config("openai") == "openai"
    assert warmup.backend_of_model_config("no-such-model") is None


def test_warm_up_imports_what_the_backend_names_and_survives_a_missing_module() -> None:
    from evalkit.models.hf import HFModel
    from evalkit.models.openai_api import OpenAIModel

    assert "torch" in HFModel.warm_modules and not OpenAIModel.warm_modules
    warmup._import_all(("json:dumps", "evalkit_no_such_module_xyz", "never_reached"))  # no raise
    warmup._import_all(("colorsys",))
    assert "colorsys" in sys.modules


class Loadable(Model):
    """A backend with known heavy imports (so it may be loaded ahead) that counts its loads."""

    warm_modules = ("json",)
    loads = 0

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config or {"name": "loadable", "backend": "fake"})

    def identity(self) -> dict[str, Any]:
        return {"backend": "loadable"}

    def load(self) -> None:
        type(self).loads += 1
        self.loaded = True

    def generate(self, requests: Sequence[Any]) -> list[Response]:
        return [Response(text="x") for _ in requests]


def test_weights_load_ahead_only_when_the_run_certainly_needs_them(tmp_path) -> None:
    cache_dir = tmp_path / "cache"
    cfg = {"runner": {"cache": True}, "cache_dir": str(cache_dir), "model": {"backend": "fake"}}
    fresh = tmp_path / "fresh"
    loading = start_load_ahead(cfg, Loadable(), fresh)
    assert isinstance(loading, BackgroundLoad)
    loading.result()
    # responses of this model in the cache: the run may be served without weights (lazy load)
    model = Loadable()
    cache = ResponseCache(cache_dir / "responses.sqlite")
    cache.put_many([("k", Response(text="a"))], model=model.identity_hash())
    assert cache.has_model(model.identity_hash()) and not cache.has_model("other")
    cache.close()
    assert start_load_ahead(cfg, model, tmp_path / "fresh2") is None
    # ... unless the cache is off
    assert isinstance(
        start_load_ahead({**cfg, "runner": {"cache": False}}, Loadable(), fresh), BackgroundLoad
    )
    # a resumed folder may have nothing left to generate
    (tmp_path / "resumed" / "parts").mkdir(parents=True)
    assert start_load_ahead({**cfg, "runner": {"cache": False}}, Loadable(), tmp_path / "resumed") is None
    # a backend whose imports are unknown (could race `datasets`) keeps the lazy load
    plain = Loadable()
    type(plain).warm_modules = ()
    try:
        assert start_load_ahead({**cfg, "runner": {"cache": False}}, plain, fresh) is None
    finally:
        type(plain).warm_modules = ("json",)


def test_a_failed_load_ahead_is_raised_in_the_waiting_thread() -> None:
    class Broken(Loadable):
        def load(self) -> None:
            raise OSError("weights unreadable")

    loading = BackgroundLoad(Broken())
    try:
        loading.result()
    except OSError as exc:
        assert "unreadable" in str(exc)
    else:  # pragma: no cover - the test fails
        raise AssertionError("the load error was swallowed")


def test_a_failure_while_the_weights_load_is_reported_without_waiting_for_them(
    tmp_path, tiny_model_dir: Path, monkeypatch
) -> None:
    """A missing dataset is said at once: the run does not first sit through the weights' load
    (for ``model=tiny`` on a fresh machine that is the whole build and training)."""
    import threading

    import pytest

    from evalkit.errors import EvalkitError
    from evalkit.models.hf import HFModel

    release, entered, finished = threading.Event(), threading.Event(), threading.Event()
    real_load = HFModel.load

    def slow_load(self: HFModel) -> None:
        entered.set()
        release.wait(30)  # held until the run has answered (the bound only ends a broken test)
        real_load(self)
        finished.set()

    monkeypatch.setattr(HFModel, "load", slow_load)
    try:
        with pytest.raises(EvalkitError, match="does not exist"):
            evaluate("docvqa", "hf", [
                f"model.pretrained={tiny_model_dir}", "task.dataset.path=/no/such/folder", "runner.cache=false",
                f"output_dir={tmp_path / 'out'}", "runner.progress=false",
            ])  # fmt: skip
        assert entered.is_set()  # the load had started ahead ...
        assert not finished.is_set()  # ... and the error came while it was still running
    finally:
        release.set()
    assert finished.wait(120)


def test_a_bad_dataset_is_said_before_the_tiny_models_first_build(tmp_path, monkeypatch) -> None:
    """The tiny model's first use builds and trains it (a minute): a missing dataset is reported
    before that (the Python API has no pre-check: the run itself opens the dataset first)."""
    import pytest

    from evalkit.errors import EvalkitError

    models = tmp_path / "models"
    monkeypatch.setenv("EVALKIT_MODEL_CACHE", str(models))
    _, model = prepare(compose("docvqa_mini", "tiny"))
    assert not model.resolves_cheaply()  # not built here yet
    with pytest.raises(EvalkitError, match="does not exist"):
        evaluate("docvqa", "tiny", ["task.dataset.path=/no/such/folder", f"output_dir={tmp_path / 'o'}"])
    assert not models.exists()  # no build was started


def test_pipeline_threads_default_off_for_a_model_generating_on_the_cpu() -> None:
    assert resolve_workers(None, on_host=True) == 0 and resolve_prefetch(None, on_host=True) == 0
    assert resolve_workers(None, on_host=False) >= 1 and resolve_prefetch(None, on_host=False) == 1
    assert resolve_workers(3, on_host=True) == 3 and resolve_prefetch(2, on_host=True) == 2  # explicit wins
    _, model = prepare(compose("docvqa_mini", "tiny"))
    assert model.computes_on_host()  # tiny: device cpu


def test_cold_run_loads_ahead_and_matches_the_lazy_run(
    tmp_path, tiny_model_dir: Path, docvqa_dir: Path
) -> None:
    common = [
        f"model.pretrained={tiny_model_dir}", "model.max_pixels=50176", f"task.dataset.path={docvqa_dir}",
        "limit=6", "batch_size=2", "runner.progress=false", f"cache_dir={tmp_path / 'cache'}",
    ]  # fmt: skip
    cold = evaluate("docvqa", "hf", [*common, f"output_dir={tmp_path / 'a'}"])
    assert cold["timing"]["model_loaded"] is True and cold["timing"]["load_ahead"] is True
    # a model on the CPU starts sequential; the first window is one batch (2 samples: one measured
    # beyond the first, which pays the one-offs), the second (4 samples) is measured when the first
    # is not clear, and the record says what the timing decided (the decision itself is tested with
    # fixed timings below: on a slow machine the tiny model's building can outweigh its generation)
    pipeline = cold["timing"]["pipeline"]
    assert re.fullmatch(
        r"(sequential|overlap on after the (first|second) window) \(.*preprocessing = [\d.]+ x generation\)",
        pipeline["auto"],
    )
    overlapped = pipeline["auto"].startswith("overlap")
    assert (pipeline["workers"] >= 1) == overlapped and pipeline["prefetch_batches"] == int(overlapped)
    # the second run finds this model in the cache: nothing is loaded ahead, nothing at all here
    warm = evaluate("docvqa", "hf", [*common, f"output_dir={tmp_path / 'b'}"])
    assert warm["timing"]["model_loaded"] is False and warm["timing"]["n_cached"] == 6
    assert warm["timing"]["load_ahead"] is False
    keys = ("id", "prediction", "fingerprint", "scores")
    a = read_samples(tmp_path / "a" / "samples" / "docvqa.jsonl")
    b = read_samples(tmp_path / "b" / "samples" / "docvqa.jsonl")
    assert [[r[k] for k in keys] for r in a] == [[r[k] for k in keys] for r in b]


class OnHostModel(Model):
    """A backend 'on the CPU' whose preprocessing costs ``prep_s`` and generation ``gen_s`` per
    batch (``first_gen_s`` for its first batch: a warm-up), and fitting its first request
    ``first_fit_s`` (a one-off, such as the fitter's exactness check); it records which thread
    prepared each batch and which built (fitted) each request."""

    preferred_batch_size = 2

    def __init__(
        self, prep_s: float, gen_s: float, first_gen_s: float | None = None, first_fit_s: float = 0.0
    ) -> None:
        super().__init__({"name": "on-host"})
        self.prep_s, self.gen_s = prep_s, gen_s
        self.first_gen_s, self.first_fit_s = first_gen_s, first_fit_s
        self.prepared_in: list[str] = []
        self.built_in: list[str] = []

    def identity(self) -> dict[str, Any]:
        return {"backend": "on-host"}

    def computes_on_host(self) -> bool:
        return True

    def prepare(self, requests: Sequence[Any]) -> list[Any]:
        import threading
        import time

        time.sleep(self.prep_s)
        self.prepared_in.append(threading.current_thread().name)
        return list(requests)

    def generate(self, requests: Sequence[Any]) -> list[Response]:
        return self.generate_prepared(self.prepare(requests))

    def fit_request(self, request: Any) -> Any:
        import threading
        import time

        if not self.built_in and self.first_fit_s:
            time.sleep(self.first_fit_s)
        self.built_in.append(threading.current_thread().name)
        return request

    def generate_prepared(self, prepared: list[Any]) -> list[Response]:
        import time

        first, self.first_gen_s = self.first_gen_s, None
        time.sleep(self.gen_s if first is None else first)
        return [Response(text=r.sample_id) for r in prepared]


def _on_host_run(tmp_path: Path, docvqa_dir: Path, model: OnHostModel, **opts: Any):
    from evalkit.runner.runner import Runner, RunnerOptions

    task, _ = prepare(compose("docvqa", "tiny", [f"task.dataset.path={docvqa_dir}"]))
    task.load()
    samples = task.samples()[:12]  # windows of 1, 2, 2 and 1 batches of 2
    runner = Runner(
        task, model, tmp_path, RunnerOptions(cache=False, progress=False, window_batches=2, **opts)
    )
    records = runner.run(samples)
    assert [r.prediction for r in records] == [s.id for s in samples]
    return runner.stats.extra["pipeline"]


def test_cpu_model_turns_the_pipeline_on_only_when_preprocessing_is_a_large_share(
    tmp_path, docvqa_dir
) -> None:
    # preprocessing 0.6 of generation, clear on the first window (one batch, built sequentially and
    # measured): one build thread and one batch of look-ahead are turned on at once, so the second
    # window is built by the thread (sleeps far longer than building two fixture requests takes,
    # even on a loaded machine)
    slow_prep = OnHostModel(prep_s=0.3, gen_s=0.5)
    info = slow = _on_host_run(tmp_path / "a", docvqa_dir, slow_prep)
    assert info["workers"] == 1 and info["prefetch_batches"] == 1, info
    assert info["auto"].startswith("overlap on after the first window"), info
    assert slow_prep.built_in[:2] == ["MainThread"] * 2  # the first window: built in the main thread
    assert all(t.startswith("evalkit-build") for t in slow_prep.built_in[2:])  # all the others: not
    # the second window's first batch is prepared in the main thread, its second one ahead, at the
    # same time (so in either order)
    assert slow_prep.prepared_in[0] == "MainThread"
    second_window = sorted(t.split("_")[0] for t in slow_prep.prepared_in[1:3])
    assert second_window == ["MainThread", "evalkit-prepare"], slow_prep.prepared_in
    # preprocessing 1.5 x the generation: as many build threads as keep pace, ceil(1.5) = 2
    # (cores permitting; a ratio between two integers, so the building's own time cannot tip it)
    heavy = OnHostModel(prep_s=0.3, gen_s=0.2)
    info = _on_host_run(tmp_path / "d", docvqa_dir, heavy)
    assert info["workers"] == min(os.cpu_count() or 1, 2) and "overlap on" in info["auto"], info
    # building outweighs generating: the run keeps its torch thread count (it fixes the logits'
    # last bits) and says which runner.generate_threads would leave cores to the pipeline
    threads = info["generate_threads"]
    if threads > 1:
        assert f"runner.generate_threads={max(1, threads - info['workers'])}" in info["hint"], info
    assert "hint" not in slow  # preprocessing 0.6 of generation: overlap pays, but no hint
    # preprocessing a small share of generation: the run stays sequential
    fast_prep = OnHostModel(prep_s=0.0, gen_s=0.5)
    info = _on_host_run(tmp_path / "b", docvqa_dir, fast_prep)
    assert info["workers"] == 0 and info["prefetch_batches"] == 0 and info["auto"].startswith("sequential")
    assert set(fast_prep.prepared_in) == {"MainThread"}
    # the first window's generation is slow (a warm-up): not clear there, so the decision is taken
    # on the second window, as measured there (windows 1 and 2 sequential)
    warming = OnHostModel(prep_s=0.3, gen_s=0.2, first_gen_s=2.5)
    info = _on_host_run(tmp_path / "e", docvqa_dir, warming)
    assert info["auto"].startswith("overlap on after the second window"), info
    assert warming.prepared_in[:3] == ["MainThread"] * 3
    assert any(t.startswith("evalkit-prepare") for t in warming.prepared_in[3:])
    # the first sample's building pays the one-off costs (the fitter's exactness check): left out
    # of the first look, so a generation-bound run is not turned on by it
    one_off = OnHostModel(prep_s=0.0, gen_s=0.5, first_fit_s=1.5)
    info = _on_host_run(tmp_path / "f", docvqa_dir, one_off)
    assert info["workers"] == 0 and info["auto"].startswith("sequential"), info
    assert set(one_off.built_in) == {"MainThread"}
    # explicit settings are never second-guessed
    info = _on_host_run(tmp_path / "c", docvqa_dir, OnHostModel(0.3, 0.3), workers=0, prefetch_batches=0)
    assert info == {"workers": 0, "prefetch_batches": 0, "generate_threads": threads}


def test_a_refused_command_starts_no_background_imports(monkeypatch) -> None:
    """A misspelt key is refused before the warm-up starts: the error does not wait behind seconds
    of torch imports competing for the GIL. A valid command line starts them (before Hydra's job)."""
    import pytest

    from evalkit import cli
    from evalkit.errors import UsageError

    monkeypatch.setattr(warmup, "_thread", None)
    with pytest.raises(UsageError, match="bogus"):
        cli.cmd_run(["task=docvqa_mini", "model=tiny", "runner.bogus=1"])
    assert warmup._thread is None
    started: list[list[str]] = []
    monkeypatch.setattr(warmup, "start_for_args", lambda args: started.append(list(args)))
    monkeypatch.setattr(cli, "hydra_error_to_usage", lambda exc: UsageError(f"stopped: {exc}"))
    import hydra

    def no_job(*a, **k):  # stop right where Hydra would compose and run the job
        raise UsageError("job not run in this test")

    monkeypatch.setattr(hydra, "main", lambda **kw: lambda fn: no_job)
    with pytest.raises(UsageError, match="job not run"):
        cli.cmd_run(["task=docvqa_mini", "model=tiny", "limit=1"])
    assert started == [["task=docvqa_mini", "model=tiny", "limit=1"]]

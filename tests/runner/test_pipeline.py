"""The pipelined runner (issue 18): identical results to the sequential runner, overlap of the
backend's preprocessing with generation, bounded work in flight, one fingerprint per request, fast
pixel digests, a progress ETA that ignores the model load, and the first-run build message."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from evalkit.api import compose, evaluate, prepare
from evalkit.models.base import Model
from evalkit.runner.cache import CACHE_KEY_VERSION, cache_key
from evalkit.runner.runner import Runner, RunnerOptions
from evalkit.types import Request, Response, image_digest
from tests.conftest import read_samples

SEQUENTIAL = ["runner.workers=0", "runner.prefetch_batches=0"]
PIPELINED = ["runner.workers=3", "runner.prefetch_batches=2", "runner.window_batches=1"]


def _run(out: Path, tiny_model_dir: Path, docvqa_dir: Path, batch: int, mode: list[str]) -> list[dict]:
    evaluate(
        "docvqa",
        "hf",
        [
            f"model.pretrained={tiny_model_dir}", "model.max_pixels=50176", f"task.dataset.path={docvqa_dir}",
            "limit=20", f"batch_size={batch}", "runner.cache=false", "runner.progress=false",
            f"output_dir={out}", *mode,
        ],
    )  # fmt: skip
    return read_samples(out / "samples" / "docvqa.jsonl")


@pytest.mark.parametrize("batch", [1, 8])
def test_pipelined_predictions_equal_sequential(tmp_path, tiny_model_dir, docvqa_dir, batch) -> None:
    sequential = _run(tmp_path / "seq", tiny_model_dir, docvqa_dir, batch, SEQUENTIAL)
    pipelined = _run(tmp_path / "pipe", tiny_model_dir, docvqa_dir, batch, PIPELINED)
    assert len(sequential) == len(pipelined) == 20
    assert any(r["prediction"] for r in sequential)
    keys = ("id", "prediction", "prompt", "fingerprint", "scores", "usage", "error", "question")
    assert [[r.get(k) for k in keys] for r in pipelined] == [[r.get(k) for k in keys] for r in sequential]


class TwoStepModel(Model):
    """A backend that splits prepare/generate and records which thread did what, and when."""

    preferred_batch_size = 2

    def __init__(self) -> None:
        super().__init__({"name": "two-step"})
        self.events: list[tuple[str, tuple[str, ...], str]] = []
        self.prepared: dict[tuple[str, ...], threading.Event] = {}
        self.overlapped = 0
        self.order: list[tuple[str, ...]] = []
        self.on_generate: Any = None
        self.next_batch: dict[tuple[str, ...], tuple[str, ...]] = {}

    def identity(self) -> dict[str, Any]:
        return {"backend": "two-step"}

    def _event(self, ids: tuple[str, ...]) -> threading.Event:
        return self.prepared.setdefault(ids, threading.Event())

    def prepare(self, requests: Sequence[Request]) -> list[Request]:
        ids = tuple(r.sample_id for r in requests)
        self.events.append(("prepare", ids, threading.current_thread().name))
        self._event(ids).set()
        return list(requests)

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        return self.generate_prepared(self.prepare(requests))

    def generate_prepared(self, prepared: list[Request]) -> list[Response]:
        ids = tuple(r.sample_id for r in prepared)
        self.order.append(ids)
        if self.on_generate is not None:
            self.on_generate()
        nxt = self.next_batch.get(ids)
        # the next batch's preprocessing must start while this batch is still generating
        if nxt is not None and self._event(nxt).wait(timeout=120):
            self.overlapped += 1
        return [Response(text=r.sample_id) for r in prepared]


def _docvqa_task(docvqa_dir: Path):
    task, _ = prepare(compose("docvqa", "tiny", [f"task.dataset.path={docvqa_dir}"]))
    task.load()
    return task


def test_next_batch_is_prepared_while_the_current_one_generates(tmp_path, docvqa_dir) -> None:
    task = _docvqa_task(docvqa_dir)
    samples = task.samples()[:12]
    model = TwoStepModel()
    # the batches the runner will form: a first window of one batch (the first answer comes
    # early), then windows of 12, each sorted by length
    opts = RunnerOptions(cache=False, progress=False, window_batches=6, prefetch_batches=1, workers=2)
    runner = Runner(task, model, tmp_path, opts)
    first = sorted((task.build_request(s) for s in samples[:2]), key=_length)
    rest = sorted((task.build_request(s) for s in samples[2:]), key=_length)
    batches = [tuple(r.sample_id for r in first)]
    batches += [tuple(r.sample_id for r in rest[i : i + 2]) for i in range(0, 10, 2)]
    # within a window, every batch but the last has its successor prepared while it generates
    model.next_batch = dict(zip(batches[1:], batches[2:], strict=False))
    records = runner.run(samples)
    assert [r.prediction for r in records] == [s.id for s in samples]
    assert model.order == batches
    assert model.overlapped == len(batches) - 2
    # the first batch of each window is prepared when it is reached; the others ahead, in the thread
    ahead = [thread for kind, ids, thread in model.events if kind == "prepare" and ids not in batches[:2]]
    assert ahead and all(t.startswith("evalkit-prepare") for t in ahead)


class ThreadCountModel(TwoStepModel):
    """Records torch's thread count in the thread that prepares and in the one that generates."""

    def prepare(self, requests: Sequence[Request]) -> list[Request]:
        import torch

        self.events.append(
            ("prepare-threads", (str(torch.get_num_threads()),), threading.current_thread().name)
        )
        return super().prepare(requests)

    def generate_prepared(self, prepared: list[Request]) -> list[Response]:
        import torch

        self.events.append(
            ("generate-threads", (str(torch.get_num_threads()),), threading.current_thread().name)
        )
        return super().generate_prepared(prepared)


def test_pipeline_threads_use_one_torch_thread_and_the_generating_thread_keeps_its_own(
    tmp_path, docvqa_dir, monkeypatch
) -> None:
    """Build and prepare threads run torch on one core each (each thread that calls torch would
    otherwise open an OpenMP team as wide as the machine); the thread that generates keeps its
    count, and the process-wide setting is back afterwards."""
    torch = pytest.importorskip("torch")
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        task = _docvqa_task(docvqa_dir)
        built: list[tuple[str, int]] = []
        real_build = task.build_request

        def counting_build(sample):  # noqa: ANN001, ANN202
            built.append((threading.current_thread().name, torch.get_num_threads()))
            return real_build(sample)

        monkeypatch.setattr(task, "build_request", counting_build)
        model = ThreadCountModel()
        opts = RunnerOptions(cache=False, progress=False, window_batches=2, prefetch_batches=1, workers=2)
        Runner(task, model, tmp_path, opts).run(task.samples()[:12])
        in_workers = [n for thread, n in built if thread.startswith("evalkit-build")]
        assert in_workers and set(in_workers) == {1}
        prepared = {(ids[0], t) for kind, ids, t in model.events if kind == "prepare-threads"}
        assert {n for n, t in prepared if t.startswith("evalkit-prepare")} == {"1"}
        assert {(ids[0], t) for kind, ids, t in model.events if kind == "generate-threads"} == {
            ("2", threading.current_thread().name)
        }
        assert torch.get_num_threads() == 2
        seen: list[int] = []
        later = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        later.start()
        later.join()
        assert seen == [2]  # a thread started after the run gets the process-wide count again
    finally:
        torch.set_num_threads(saved)


class OnHostThreadCountModel(ThreadCountModel):
    """ThreadCountModel 'on the CPU' (the runner's CPU policy applies)."""

    def computes_on_host(self) -> bool:
        return True


def test_generate_threads_sets_the_generating_threads_count_and_frees_the_other_cores(
    tmp_path, docvqa_dir, monkeypatch
) -> None:
    """``runner.generate_threads`` below the cores: the model generates with that many torch threads
    from its first batch, the pipeline (defaults left at null) runs from the start on the cores
    left, the count is recorded, and the process-wide setting is back afterwards. Left at null,
    the generating thread keeps torch's count (recorded too) and the CPU policy measures."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        task = _docvqa_task(docvqa_dir)
        model = OnHostThreadCountModel()
        opts = RunnerOptions(cache=False, progress=False, window_batches=2, generate_threads=1)
        runner = Runner(task, model, tmp_path / "one", opts)
        runner.run(task.samples()[:12])
        generating = [ids[0] for kind, ids, _ in model.events if kind == "generate-threads"]
        assert generating and set(generating) == {"1"}
        info = runner.stats.extra["pipeline"]
        assert info["generate_threads"] == 1 and info["workers"] == 2 and info["prefetch_batches"] == 1
        assert info["auto"].startswith("overlap on (the model generates on 1 of 2 cores")
        # the second batch (the first window is one batch) was prepared ahead, in the thread
        assert any(t.startswith("evalkit-prepare") for kind, _, t in model.events if kind == "prepare")
        assert torch.get_num_threads() == 2

        default = OnHostThreadCountModel()
        opts = RunnerOptions(cache=False, progress=False, window_batches=2)
        runner = Runner(task, default, tmp_path / "default", opts)
        runner.run(task.samples()[:12])
        # whatever the measurement decides for the pipeline (this model generates in no time: it
        # turns the pipeline on), the generating thread's count is never changed by it
        assert {ids[0] for kind, ids, _ in default.events if kind == "generate-threads"} == {"2"}
        assert runner.stats.extra["pipeline"]["generate_threads"] == 2
    finally:
        torch.set_num_threads(saved)


def test_generate_threads_pipelined_predictions_equal_sequential_at_that_count(
    tmp_path, tiny_model_dir, docvqa_dir
) -> None:
    """The tiny model on the CPU at ``runner.generate_threads=1``: the pipeline runs from the start
    and changes no prediction of the sequential run at the same count."""
    one = ["runner.generate_threads=1"]
    sequential = _run(tmp_path / "seq", tiny_model_dir, docvqa_dir, 4, [*SEQUENTIAL, *one])
    pipelined = _run(tmp_path / "pipe", tiny_model_dir, docvqa_dir, 4, one)
    results = json.loads((tmp_path / "pipe" / "results.json").read_text())
    assert results["timing"]["pipeline"]["generate_threads"] == 1
    assert any(r["prediction"] for r in sequential)
    keys = ("id", "prediction", "prompt", "fingerprint", "scores", "error")
    assert [[r.get(k) for k in keys] for r in pipelined] == [[r.get(k) for k in keys] for r in sequential]


def _length(request: Request) -> tuple[int, int]:
    from evalkit.runner.runner import _length_key

    return _length_key(request)


def test_requests_in_flight_stay_bounded(tmp_path, docvqa_dir) -> None:
    task = _docvqa_task(docvqa_dir)
    samples = task.samples()[:30]
    built = {"n": 0}
    inner = task.build_request

    def counting(sample):  # noqa: ANN001, ANN202
        with lock:
            built["n"] += 1
        return inner(sample)

    lock = threading.Lock()
    task.build_request = counting  # type: ignore[method-assign]
    model = TwoStepModel()
    model.next_batch = {}
    seen: list[tuple[int, int]] = []
    model.on_generate = lambda: seen.append((len(model.order), built["n"]))
    window = 2 * 2  # batch 2 x window_batches 2
    opts = RunnerOptions(cache=False, progress=False, window_batches=2, workers=4, thumbnails=0)
    Runner(task, model, tmp_path, opts).run(samples)
    assert len(model.order) == 15
    for n_calls, n_built in seen:
        # at most one window of samples is built (or being built) and not yet written: the work in
        # flight does not grow with the number of samples
        assert n_built <= 2 * (n_calls - 1) + window, (n_calls, n_built)
    assert seen[0][1] < len(samples)


def test_fingerprint_computed_once_per_request(tmp_path, docvqa_dir, monkeypatch) -> None:
    task = _docvqa_task(docvqa_dir)
    samples = task.samples()[:10]
    calls = {"n": 0}
    original = Request.canonical

    def counting(self):  # noqa: ANN001, ANN202
        calls["n"] += 1
        return original(self)

    monkeypatch.setattr(Request, "canonical", counting)
    model = TwoStepModel()
    model.next_batch = {}
    opts = RunnerOptions(cache=True, cache_dir=str(tmp_path / "cache"), progress=False, workers=2)
    records = Runner(task, model, tmp_path / "out", opts).run(samples)
    assert all(r.fingerprint for r in records)
    assert calls["n"] == len(samples)  # cache key and record share one computation


def test_image_digest_is_xxh3_128_of_mode_size_and_pixels(tmp_path) -> None:
    import io

    import xxhash
    from PIL import Image

    img = Image.new("RGB", (37, 21), (10, 200, 30))
    img.putpixel((5, 7), (1, 2, 3))
    expected = xxhash.xxh3_128(b"RGB:37x21:" + img.tobytes()).hexdigest()
    assert image_digest(img) == expected
    # the same pixels stored as PNG and BMP give the same digest; one changed pixel does not
    for fmt in ("PNG", "BMP"):
        buf = io.BytesIO()
        img.save(buf, format=fmt)
        assert image_digest(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")) == expected
    other = img.copy()
    other.putpixel((0, 0), (0, 0, 0))
    assert image_digest(other) != expected
    # the key scheme carries its version: entries of the sha256-pixel scheme can never match
    assert CACHE_KEY_VERSION >= 2
    assert cache_key("m", "f") == hashlib.sha256(f"v{CACHE_KEY_VERSION}:m:f".encode()).hexdigest()
    assert cache_key("m", "f") != hashlib.sha256(b"m:f").hexdigest()


class SlowLoadModel(TwoStepModel):
    def load(self) -> None:
        time.sleep(0.5)
        self.loaded = True


def test_progress_rate_excludes_the_model_load(tmp_path, docvqa_dir) -> None:
    task = _docvqa_task(docvqa_dir)
    model = SlowLoadModel()
    model.next_batch = {}
    runner = Runner(task, model, tmp_path, RunnerOptions(cache=False, progress=True, workers=0))
    t0 = time.time()
    runner.run(task.samples()[:4])
    bar = runner._bar
    assert bar.smoothing == 0  # the average rate of the samples, not the last (or first) batch
    assert bar.start_t - t0 >= 0.5  # the load was taken out of the elapsed time


def test_first_tiny_build_says_what_it_does(tmp_path, monkeypatch, capfd) -> None:
    from evalkit.models.tiny import TinySpec, ensure_tiny_model, tiny_model_built, tiny_model_path

    monkeypatch.setenv("EVALKIT_MODEL_CACHE", str(tmp_path / "models"))
    stale = tmp_path / "models" / ".build-stopped"  # a build whose process was stopped
    (stale / "sub").mkdir(parents=True)
    assert not tiny_model_built(tmp_path, TinySpec(train_steps=2, train_rows=8))
    path = ensure_tiny_model(tmp_path, TinySpec(train_steps=2, train_rows=8))
    assert path == tiny_model_path(tmp_path, TinySpec(train_steps=2, train_rows=8))
    assert tiny_model_built(tmp_path, TinySpec(train_steps=2, train_rows=8))
    assert not stale.exists()  # cleared by the next builder (it holds the lock)
    err = capfd.readouterr().err
    assert "building the tiny test model" in err and "first run only" in err
    assert "building tiny model" in err  # the progress bar over the training steps
    assert (path / "evalkit_tiny.json").exists()
    ensure_tiny_model(tmp_path, TinySpec(train_steps=2, train_rows=8))
    assert "building" not in capfd.readouterr().err  # built once, silent afterwards


def test_a_model_on_the_cpu_sizes_the_generating_threads_torch_team_first() -> None:
    """Where torch is not imported yet, the runner imports it for a model on the CPU before any
    pipeline thread lowers the process-wide count, so the generating thread keeps the full count;
    for other backends it never imports torch."""
    import os
    import subprocess
    import sys

    code = (
        "import sys, threading\n"
        "from evalkit.runner.runner import background_thread_priority, pin_torch_threads\n"
        "assert 'torch' not in sys.modules\n"
        "assert pin_torch_threads() is None and 'torch' not in sys.modules\n"
        "n = pin_torch_threads(import_torch=True)\n"
        "t = threading.Thread(target=background_thread_priority); t.start(); t.join()\n"
        "print(n, sys.modules['torch'].get_num_threads())\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["2", "2"]

"""The Runner: shards, batches, caches and resumes; writes every finished sample durably.

Flow for one task on one rank::

    samples ─► skip finished (RecordStore.load) ─► shard (index % world_size) ─► window
        ─► build requests (InputError → error record) ─► sort by length ─► batches
        ─► cache lookup ─► Model.generate for the misses (model loaded lazily) ─► Task.score
        ─► RecordStore.append ─► ResponseCache.put

The model is only loaded when at least one request misses the cache, so a fully cached rerun never
touches the weights. Records are written per batch, so a crash or Ctrl-C loses at most the batch in
flight; rerunning the same command resumes where it stopped.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from evalkit.errors import BackendFatalError, EvalkitError, InputError, stable_message
from evalkit.models.base import Model
from evalkit.runner.cache import ResponseCache, cache_key, open_cache
from evalkit.runner.store import RecordStore, thumbnail_relpath
from evalkit.tasks.base import Task
from evalkit.types import (
    INPUT_IMAGE_SIZES,
    ModelInput,
    Record,
    Request,
    Response,
    Sample,
    json_safe,
    unsafe_json_reason,
)

log = logging.getLogger("evalkit")


@dataclass
class RunnerOptions:
    """Knobs of one run (from the ``runner`` config group and the top-level overrides)."""

    batch_size: int | None = None
    limit: int | None = None
    cache: bool = True
    cache_dir: str = "~/.cache/evalkit"
    progress: bool = True
    thumbnails: int = 200
    window_batches: int = 8
    sort_by_length: bool = True
    max_consecutive_model_errors: int = 50
    rank: int = 0
    world_size: int = 1
    retry_model_errors: bool = True
    #: share of error records above which the run is reported as failed (exit non-zero)
    max_error_rate: float = 0.05
    #: rebuild the requests of finished samples and reuse a record only if its fingerprint still
    #: matches (``None``: the caller decides; see :func:`evalkit.runner.identity`)
    verify_resumed: bool = True
    #: threads building requests (decode, resize, hash, thumbnail) ahead of generation; 0 builds
    #: them in the main thread, one after another; None: min(4, CPU cores), or 0 when the model
    #: generates on the CPU (``Model.computes_on_host``)
    workers: int | None = None
    #: batches whose backend preprocessing (template, processor) runs while the current one
    #: generates; 0: none (strictly sequential); None: 1, or 0 when the model generates on the CPU
    prefetch_batches: int | None = None
    #: torch threads of the generating thread when the model generates on the CPU; None: torch's
    #: own count (the cores). Fewer than the cores leaves the others to the pipeline, which then
    #: runs from the start (no measurement); a different count may change the last bits of the
    #: logits (torch's single-token attention splits its sum by thread), like a different batch size
    generate_threads: int | None = None


@dataclass
class RunStats:
    """What one invocation did (for the ``timing`` block of results.json)."""

    n_total: int = 0
    n_resumed: int = 0
    n_generated: int = 0
    n_cached: int = 0
    n_input_errors: int = 0
    n_model_errors: int = 0
    #: finished records not reused because they belong to another model or request
    n_stale: int = 0
    n_truncated: int = 0
    cache_problem: str | None = None
    model_s: float = 0.0
    load_s: float = 0.0
    total_s: float = 0.0
    model_loaded: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def _length_key(request: Request) -> tuple[int, int]:
    pixels = sum(img.size[0] * img.size[1] for img in request.images)
    pixels += sum(f.size[0] * f.size[1] for v in request.videos for f in v.frames)
    return (pixels, len(request.text))


class Runner:
    """Evaluates one task with one model into one output directory (one rank of a run)."""

    def __init__(
        self,
        task: Task,
        model: Model,
        output_dir: str | os.PathLike[str],
        options: RunnerOptions | None = None,
        on_batch_done: Callable[[int], None] | None = None,
        on_generate: Callable[[list[Request]], None] | None = None,
    ):
        self.task = task
        self.model = model
        self.output_dir = Path(output_dir)
        self.options = options or RunnerOptions()
        self.store = RecordStore(self.output_dir, task.name, rank=self.options.rank)
        self.stats = RunStats()
        self._on_batch_done = on_batch_done
        self._cache: ResponseCache | None = None
        self._model_hash: str | None = None
        self._consecutive_model_errors = 0
        self._thumbs_written = 0
        self._on_generate = on_generate
        self._lock = threading.Lock()
        self._bar: Any = None
        self._prep_pool: ThreadPoolExecutor | None = None
        self._builder: RequestBuilder | None = None
        #: a model load started ahead of the run (:class:`BackgroundLoad`); waited for at the
        #: first model call
        self.loading: BackgroundLoad | None = None
        self._prefetch = 0
        self._inline_prepare_s = 0.0
        #: a model on the CPU whose overlap decision is still to be measured (_decide_overlap)
        self._overlap_undecided = False

    # ----------------------------------------------------------------- public
    def select_samples(self) -> list[Sample]:
        """The task's samples, cut to ``limit`` (the first n in dataset order)."""
        samples = self.task.samples()
        if self.options.limit is not None and self.options.limit >= 0:
            samples = samples[: self.options.limit]
        ids = [s.id for s in samples]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise EvalkitError(
                f"task {self.task.name}: sample id {dup!r} occurs more than once in the dataset"
            )
        return samples

    def reusable(self, samples: Sequence[Sample], done: dict[str, Record]) -> dict[str, Record]:
        """The finished records that still belong to this evaluation.

        A record is reused only when it was produced by this model (its ``model_identity``) for the
        request this config builds now (its ``fingerprint``; checked by rebuilding the request when
        ``verify_resumed``). Model errors are redone with ``retry_model_errors``. Input-error records
        (bad data, no model involved) are kept, and re-tried only when ``verify_resumed`` (the code
        changed). Stale records are counted in ``stats.n_stale``."""
        model_key = self._model_key()
        keep: dict[str, Record] = {}
        for s in samples:
            rec = done.get(s.id)
            if rec is None:
                continue
            if self.options.retry_model_errors and rec.error_type == "model":
                continue
            if rec.error_type == "input":  # bad data: deterministic, unless the code changed
                if not self.options.verify_resumed:
                    keep[s.id] = rec
                continue
            if rec.model_identity != model_key:
                self.stats.n_stale += 1
                continue
            if self.options.verify_resumed and rec.fingerprint is not None:
                try:
                    fingerprint = self._build_request(s).fingerprint()
                except Exception:  # noqa: BLE001 - an unbuildable request is simply redone
                    fingerprint = None
                if fingerprint != rec.fingerprint:
                    self.stats.n_stale += 1
                    continue
            keep[s.id] = rec
        if self.stats.n_stale:
            log.warning(
                "%s: %d finished record(s) in %s were made for another request or model and are redone",
                self.task.name,
                self.stats.n_stale,
                self.output_dir,
            )
        return keep

    def pending(self, samples: Sequence[Sample], done: dict[str, Record]) -> list[Sample]:
        """Samples this rank still has to do: without a reusable record (:meth:`reusable`), in its shard.

        The ``i % world_size`` shard is only consistent when every rank sees the same finished set;
        multi-rank runs therefore shard one snapshot taken before any rank starts
        (:mod:`evalkit.runner.distributed` overrides this method)."""
        valid = self.reusable(samples, done)
        todo = [s for s in samples if s.id not in valid]
        ws, rank = self.options.world_size, self.options.rank
        return [s for i, s in enumerate(todo) if i % ws == rank] if ws > 1 else todo

    def run(self, samples: Sequence[Sample] | None = None) -> list[Record]:
        """Evaluate every pending sample of this rank; returns all records of ``samples`` in order."""
        t0 = time.perf_counter()
        samples = list(samples) if samples is not None else self.select_samples()
        done = self.store.load(repair=True, prefer_model=self._model_key())
        todo = self.pending(samples, done)
        self.stats.n_total = len(samples)
        self.stats.n_resumed = len(samples) - len(todo) if self.options.world_size == 1 else len(done)
        if self.options.cache:
            self._cache, self.stats.cache_problem = open_cache(
                Path(os.path.expanduser(self.options.cache_dir)) / "responses.sqlite"
            )
        try:
            self._run_pending(todo, initial=len(samples) - len(todo) if self.options.world_size == 1 else 0)
        finally:
            self.store.close()
            if self._cache is not None:
                self.stats.extra.update(self._cache.problems())
                self._cache.close()
        self.stats.total_s = time.perf_counter() - t0
        final = self.store.load(repair=False, prefer_model=self._model_key())
        return [final[s.id] for s in samples if s.id in final]

    # ----------------------------------------------------------------- internals
    def _progress(self, total: int, initial: int):
        from tqdm import tqdm

        return tqdm(
            total=total,
            initial=initial,
            desc=f"{self.task.name}" + (f"[rank {self.options.rank}]" if self.options.world_size > 1 else ""),
            unit="sample",
            disable=not self.options.progress,
            dynamic_ncols=True,
            position=self.options.rank,
            leave=True,
            smoothing=0,  # the ETA from the average rate of the samples, not the first slow batch
        )

    def _run_pending(self, todo: list[Sample], initial: int) -> None:
        opts = self.options
        bs = max(1, int(opts.batch_size or self.model.preferred_batch_size or 1))
        window = bs * max(1, opts.window_batches)
        # engines that batch themselves (vLLM, an HTTP client's concurrency) get the whole window
        per_call = window if getattr(self.model, "takes_windows", False) else bs
        self._bar = bar = self._progress(total=initial + len(todo), initial=initial)
        on_host = self.model.computes_on_host()
        # before any pipeline thread lowers the setting; a model on the CPU is a torch model
        torch_threads = pin_torch_threads(import_torch=on_host)
        generating = set_generate_threads(opts.generate_threads) if on_host else None
        cores = os.cpu_count() or 1
        # a model on the CPU competes with the pipeline's threads for the cores: whether overlap
        # pays is measured on the run's second window, run sequentially (see _decide_overlap) —
        # unless runner.generate_threads leaves cores free, which the pipeline then uses throughout
        auto = on_host and opts.workers is None and opts.prefetch_batches is None
        # cores left free: the pipeline's defaults are those of a model off the host (its threads
        # run at a lower priority, so they take what generation leaves, on every core)
        overlap = auto and generating is not None and generating < cores
        auto_cpu = auto and not overlap
        self._builder = builder = RequestBuilder(
            self, workers=resolve_workers(opts.workers, on_host and not overlap)
        )
        self._prefetch = resolve_prefetch(opts.prefetch_batches, on_host and not overlap)
        self.stats.extra["pipeline"] = info = {"workers": builder.workers, "prefetch_batches": self._prefetch}
        if on_host and torch_threads is not None:
            info["generate_threads"] = generating if generating is not None else torch_threads
        if auto_cpu:
            info["auto"] = "sequential (a model on the CPU; not measured)"
        elif overlap:
            info["auto"] = (
                f"overlap on (the model generates on {generating} of {cores} cores: runner.generate_threads)"
            )
        if self._prefetch > 0:
            self._start_prefetch()
        try:
            # the first window is one call's worth: the first answer does not wait for a whole window
            mark: tuple[float, float, float] | None = None
            self._overlap_undecided = auto_cpu  # cleared by the measurement (cached windows have none)
            windows = builder.windows(todo, window, first=min(window, per_call))
            for n, (built, errors) in enumerate(windows):
                if errors:
                    self.stats.n_input_errors += len(errors)
                    self.store.append(errors)
                    builder.release(len(errors))
                    bar.update(len(errors))
                if opts.sort_by_length:
                    built.sort(key=lambda sr: _length_key(sr[1]))
                batches = [built[b : b + per_call] for b in range(0, len(built), per_call)]
                built.clear()  # each batch's requests are released as soon as it is written
                decide = None
                n_built = sum(len(b) for b in batches) + len(errors)
                if self._overlap_undecided and n == 0 and n_built > 1:
                    # a first look on the first window: its building less the first sample's (which
                    # pays the one-off costs: the fitter's exactness check, lazy imports) against
                    # its generation (inflated by the warm-up, so this errs towards sequential);
                    # only a clear case decides here, anything else is measured on the second window
                    first = (builder.first_build_s or 0.0, 0.0, 0.0)
                    decide = functools.partial(self._decide_overlap, first, builder, n_built - 1, early=True)
                elif self._overlap_undecided and n >= 1 and mark is not None:
                    # measured on this window's building (run sequentially) and its first batch's
                    # generation (the first window pays the warm-up), decided before that batch
                    # hands its share of the look-ahead back to the builder
                    decide = functools.partial(self._decide_overlap, mark, builder, n_built)
                self._run_batches(batches, after_first=decide)
                if self._overlap_undecided:
                    mark = self._phase_times()  # the next window's building starts now
                bar.set_postfix(
                    cached=self.stats.n_cached, errors=self.stats.n_input_errors + self.stats.n_model_errors
                )
        finally:
            builder.close()
            if self._prep_pool is not None:
                self._prep_pool.shutdown(wait=True, cancel_futures=True)
                self._prep_pool = None
            restore_torch_threads(torch_threads)
            bar.close()

    def _start_prefetch(self) -> None:
        self._prep_pool = ThreadPoolExecutor(
            1, thread_name_prefix="evalkit-prepare", initializer=background_thread_priority
        )

    def _phase_times(self) -> tuple[float, float, float]:
        """(main-thread request building, main-thread backend preprocessing, generation) so far."""
        build = float(self.stats.extra.get("build_s", 0.0))
        return build, self._inline_prepare_s, self.stats.model_s - self._inline_prepare_s

    def _decide_overlap(
        self,
        mark: tuple[float, float, float],
        builder: RequestBuilder,
        n_built: int,
        n_generated: int,
        early: bool = False,
    ) -> None:
        """For a model on the CPU: turn the pipeline on (build threads, one batch preprocessed
        ahead) when, per sample, building (the ``n_built`` samples of the second window, run
        sequentially) and preprocessing took at least :data:`AUTO_OVERLAP_MIN_RATIO` of the
        generation time (its first batch, ``n_generated`` samples). Below that, the little work a
        background thread would hide costs more in torch's stalled parallel operations than it
        saves (measured: docs/architecture.md). Called after the window's first batch, so its
        other batches already overlap the next window's building.

        ``early``: the first window's look (``mark`` holds the first sample's building, left out).
        It only turns the pipeline on — then the second window is built by the threads, while the
        main thread would otherwise build it alone; below the ratio the decision waits for the
        second window."""
        now = self._phase_times()
        build, prep, gen = (now[i] - mark[i] for i in range(3))
        if gen <= 0 or n_built <= 0 or n_generated <= 0:
            if not early:  # nothing to measure on the second window either: stay sequential
                self._overlap_undecided = False
            return
        ratio = (build / n_built + prep / n_generated) / (gen / n_generated)
        if early and ratio < AUTO_OVERLAP_MIN_RATIO:
            return  # not clear on the first window: measured again on the second
        self._overlap_undecided = False
        info = self.stats.extra["pipeline"]
        if ratio >= AUTO_OVERLAP_MIN_RATIO:
            # as many build threads as keep pace with generation (preprocessing 1.4 x generation:
            # two; they run at a lower priority, so rather one more), never more than the cores
            workers = max(1, min(os.cpu_count() or 1, math.ceil(ratio)))
            builder.start_workers(workers)
            self._prefetch = 1
            if self._prep_pool is None:
                self._start_prefetch()
            info.update(workers=workers, prefetch_batches=1)
            which = "first" if early else "second"
            info["auto"] = f"overlap on after the {which} window (preprocessing = {ratio:.2f} x generation)"
            threads = int(info.get("generate_threads") or 1)  # the count this run generates with
            if ratio >= 1.0 and threads > 1:
                # the generating thread's team stays as wide as the cores (its count fixes the
                # logits' last bits; a timing must not): say what would overlap better
                info["hint"] = hint = (
                    f"building the requests takes {ratio:.2f} x the generation: runner.generate_threads="
                    f"{max(1, threads - workers)} would leave cores to it (faster; the last bits of the "
                    f"logits may differ from a run at {threads} threads)"
                )
                log.info("%s: %s", self.task.name, hint)
        else:
            info["auto"] = f"sequential (a model on the CPU; preprocessing = {ratio:.2f} x generation)"

    def _run_batches(
        self, batches: list[list[tuple[Sample, Request]]], after_first: Callable[[int], None] | None = None
    ) -> None:
        """Look the window's batches up in the cache, then generate the misses batch by batch, the
        backend's preprocessing of the next ``prefetch_batches`` batches running meanwhile; records
        are written in batch order. ``after_first(n)`` runs once the first batch (``n`` samples)
        that needed the model is written, before its samples are handed back to the builder."""
        refuse_unsupported_kind(self.model, batches)
        lookups = [self._lookup(batch) for batch in batches]
        prepared: dict[int, Future[Any]] = {}
        miss_order = [j for j, (_, misses) in enumerate(lookups) if misses]
        for j, batch in enumerate(batches):
            responses, misses = lookups[j]
            if misses:
                self._ensure_loaded()
                pos = miss_order.index(j)
                for k in miss_order[pos + 1 : pos + 1 + self._prefetch]:
                    reqs = [batches[k][i][1] for i in lookups[k][1]]
                    if k not in prepared and self._prep_pool is not None and reqs[0].kind == "generate":
                        prepared[k] = self._prep_pool.submit(self.model.prepare, reqs)
                try:
                    fresh = self._generate([batch[i][1] for i in misses], prepared.pop(j, None))
                except BackendFatalError as exc:  # keep what was answered (and paid for) first
                    self._keep_partial(batch, responses, misses, exc.partial)
                    raise
                self._take_fresh(batch, responses, dict(zip(misses, fresh, strict=True)))
            records = [
                self._record(sample, request, resp, cached=i not in misses)  # type: ignore[arg-type]
                for i, ((sample, request), resp) in enumerate(zip(batch, responses, strict=True))
            ]
            self.store.append(records)
            batches[j] = []  # release this batch's images
            if after_first is not None and misses:
                after_first(len(misses))
                after_first = None
            if self._builder is not None:
                self._builder.release(len(batch))
            self._bar.update(len(batch))
            if self._on_batch_done is not None:
                self._on_batch_done(len(batch))

    def _keep_partial(
        self,
        batch: list[tuple[Sample, Request]],
        responses: list[Response | None],
        misses: list[int],
        partial: dict[int, Response],
    ) -> None:
        """Write (and cache) the records of a call stopped by a fatal backend error: its cache hits
        and the answers the backend received before the stop (``partial``: position in ``misses``)."""
        fresh = {
            misses[k]: r
            for k, r in partial.items()
            if 0 <= k < len(misses) and isinstance(r, Response) and not r.error
        }
        self._take_fresh(batch, responses, fresh)
        records = [
            self._record(sample, request, resp, cached=i not in misses)
            for i, ((sample, request), resp) in enumerate(zip(batch, responses, strict=True))
            if resp is not None
        ]
        if records:
            self.store.append(records)
            self._bar.update(len(records))

    def _take_fresh(
        self,
        batch: list[tuple[Sample, Request]],
        responses: list[Response | None],
        fresh: dict[int, Response],
    ) -> None:
        """Put newly generated responses (batch position → response) into ``responses``, with their
        prompt, and into the response cache."""
        for i, resp in fresh.items():
            if resp.prompt is None:
                resp.prompt = self.model.render_prompt(batch[i][1])
            responses[i] = resp
        if self._cache is not None and fresh:
            self._cache.put_many(
                ((self._cache_key(batch[i][1]), r) for i, r in fresh.items()), model=self._model_key()
            )

    def _cache_key(self, request: Request) -> str:
        return cache_key(self._model_key(), request_fingerprint(request))

    def _lookup(self, batch: list[tuple[Sample, Request]]) -> tuple[list[Response | None], list[int]]:
        """``(responses, misses)``: the cached response of each request (None where there is none)
        and the positions of the requests that must be generated."""
        if self._cache is None:
            return [None] * len(batch), list(range(len(batch)))
        keys = [self._cache_key(req) for _, req in batch]
        hits = self._cache.get_many(keys)
        responses: list[Response | None] = [hits.get(k) for k in keys]
        return responses, [i for i, r in enumerate(responses) if r is None]

    def build_one(self, sample: Sample, thumbnail: bool) -> Request | Record:
        """The request of one sample, or its input-error record (bad data never stops the run).

        Thread-safe: called by the request-building workers. The fingerprint is computed here, once
        (off the main thread), and carried by the request."""
        problem = sample.error or _unsafe_sample(sample)
        if problem:
            return self._error_record(sample, problem, "input")
        try:
            request = self._build_request(sample)
        except InputError as exc:
            return self._error_record(sample, str(exc), "input")
        except (KeyError, TypeError, ValueError, IndexError, RecursionError) as exc:
            return self._error_record(sample, f"bad sample data: {type(exc).__name__}: {exc}", "input")
        if thumbnail and request.images:
            self._save_thumbnail(sample, request)
        request_fingerprint(request)
        return request

    def _build_request(self, sample: Sample) -> Request:
        """The task's request, as the backend's preprocessing will see it (images fitted to the
        pixel budget: :meth:`Model.fit_request`). Resume verification rebuilds it the same way."""
        return self.model.fit_request(self.task.build_request(sample))

    def _save_thumbnail(self, sample: Sample, request: Request) -> None:
        from evalkit.media.image import thumbnail_jpeg

        path = self.output_dir / thumbnail_relpath(self.task.name, sample.id)
        try:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                thumbnail_jpeg(request.images[0], path)
            with self._lock:
                self._thumbs_written += 1
        except OSError as exc:  # a thumbnail is a nicety; never fail a sample for it
            log.debug("thumbnail for %s not written: %s", sample.id, exc)

    def _model_key(self) -> str:
        if self._model_hash is None:
            self._model_hash = self.model.identity_hash()
        return self._model_hash

    def _ensure_loaded(self) -> None:
        if not self.model.loaded or self.loading is not None:
            t = time.perf_counter()
            try:
                if self.loading is not None:  # started ahead (evalkit.pipeline): wait for it
                    loading, self.loading = self.loading, None
                    loading.result()
                if not self.model.loaded:
                    self.model.load()
            except EvalkitError:
                raise
            except Exception as exc:  # a checkpoint problem: one line, never a traceback
                raise EvalkitError(load_failure_message(self.model, exc)) from exc
            took = time.perf_counter() - t
            self.stats.load_s += took
            self.stats.model_loaded = True
            if hasattr(self._bar, "start_t"):  # the ETA is the samples' rate: the load is not a sample
                self._bar.start_t += took

    def _generate(self, requests: list[Request], prepared: Future[Any] | None = None) -> list[Response]:
        """Generate for a batch (from its ``prepared`` inputs when the preprocessing ran ahead); if
        the batch fails as a whole, retry each request alone so one bad request cannot take its
        batch-mates down."""
        self._ensure_loaded()
        if self._on_generate is not None:
            self._on_generate(requests)
        t = time.perf_counter()
        try:
            try:
                if requests[0].kind == "choice_logprobs":  # likelihood-ranked options, no generation
                    responses = self.model.score_choices(requests)
                else:
                    if prepared is not None:
                        inputs = prepared.result()
                    else:
                        tp = time.perf_counter()
                        inputs = self.model.prepare(requests)
                        self._inline_prepare_s += time.perf_counter() - tp
                    responses = self.model.generate_prepared(inputs)
                if len(responses) != len(requests):
                    raise EvalkitError(
                        f"backend returned {len(responses)} responses for {len(requests)} requests"
                    )
                return responses
            except EvalkitError:
                raise
            except Exception as exc:
                if len(requests) == 1 or not getattr(self.model, "split_failed_batches", True):
                    # API backends: re-sending the batch's requests one by one would pay twice
                    message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                    return [Response(text="", error=message) for _ in requests]
                log.warning("batch of %d failed (%s); retrying its requests one by one", len(requests), exc)
                return [self._generate([r])[0] for r in requests]
        finally:
            self.stats.model_s += time.perf_counter() - t

    def _record(self, sample: Sample, request: Request, resp: Response, cached: bool) -> Record:
        rec = Record(
            id=sample.id,
            prompt=resp.prompt,
            prediction=None if resp.error else resp.text,
            target=sample.target,
            metadata=dict(sample.metadata),
            fingerprint=request_fingerprint(request),
            usage=resp.usage(),
            cached=cached,
            model_identity=self._model_key(),
        )
        rec.extra["question"] = _question_text(request)
        for key in ("finish_reason", "truncated", "logprobs", INPUT_IMAGE_SIZES):
            if key in resp.extra:
                rec.extra[key] = resp.extra[key]
        if resp.extra.get("truncated") and not resp.error:
            self.stats.n_truncated += 1
        thumb = thumbnail_relpath(self.task.name, sample.id)
        if self._thumbs_written and (self.output_dir / thumb).exists():
            rec.extra["thumbnail"] = thumb.as_posix()
        if resp.error:
            self.stats.n_model_errors += 1
            self._consecutive_model_errors += 1
            rec.error, rec.error_type = stable_message(resp.error), "model"
            if self._consecutive_model_errors >= self.options.max_consecutive_model_errors:
                self.store.append([rec])
                raise EvalkitError(
                    f"{self._consecutive_model_errors} consecutive model errors (last: {resp.error}); "
                    "stopping — fix the model/backend configuration and rerun to resume"
                )
            return rec
        self._consecutive_model_errors = 0
        if cached:
            self.stats.n_cached += 1
        else:
            self.stats.n_generated += 1
        return score_record(self.task, sample, rec)

    def _error_record(self, sample: Sample, message: str, kind: str) -> Record:
        return Record(
            id=sample.id,
            prompt=None,
            prediction=None,
            target=json_safe(sample.target),
            metadata=json_safe(dict(sample.metadata)),
            error=stable_message(message),
            error_type=kind,  # type: ignore[arg-type]
        )


class BackgroundLoad:
    """``model.load()`` in a background thread, started before the dataset is loaded when the run
    will certainly need the weights (:func:`evalkit.pipeline.run_from_config`), so that loading
    weights overlaps loading the data and building the first requests. :meth:`result` waits and
    re-raises a load failure in the caller's thread."""

    #: the load threads of this process still running (a run that failed before it needed the
    #: weights leaves its load running: see :meth:`any_running`)
    _running: ClassVar[set[threading.Thread]] = set()
    _running_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, model: Model):
        self.model = model
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="evalkit-load", daemon=True)
        with BackgroundLoad._running_lock:
            BackgroundLoad._running.add(self._thread)
        self._thread.start()

    @classmethod
    def any_running(cls) -> bool:
        """True while a load is still running (the run it served failed before needing it)."""
        with cls._running_lock:
            return any(thread.is_alive() for thread in cls._running)

    def _run(self) -> None:
        try:
            self.model.load()
        except BaseException as exc:  # noqa: BLE001 - handed to the thread that waits
            self._error = exc
        finally:
            with BackgroundLoad._running_lock:
                BackgroundLoad._running.discard(threading.current_thread())

    def result(self) -> None:
        """Wait for the load; raise its exception, if any."""
        self._thread.join()
        if self._error is not None:
            raise self._error

    def wait_quietly(self) -> None:
        """Wait for the load, ignoring its outcome (before closing the model)."""
        self._thread.join()


def refuse_unsupported_kind(model: Model, batches: Sequence[Sequence[tuple[Sample, Request]]]) -> None:
    """Stop (one line, before any request) when likelihood requests meet a backend without them."""
    if not getattr(model, "supports_choice_logprobs", False) and any(
        req.kind == "choice_logprobs" for batch in batches for _, req in batch
    ):
        model.score_choices([])  # raises the backend's one-line UsageError


def _unsafe_sample(sample: Sample) -> str | None:
    """An input-error message when the sample's answers or metadata cannot be stored as text."""
    reason = unsafe_json_reason(sample.target)
    if reason:
        return f"the gold answers {reason}"
    reason = unsafe_json_reason(dict(sample.metadata))
    return f"the sample metadata {reason}" if reason else None


_QUESTION_CHARS = 2000


def _question_text(request: Request) -> str:
    """The model-independent text of a request (its text parts), cut for the samples file."""
    text = request.text
    return text if len(text) <= _QUESTION_CHARS else text[:_QUESTION_CHARS] + "…"


def request_fingerprint(request: Request) -> str:
    """The request's content fingerprint, computed once per request object and reused."""
    cached = getattr(request, "_evalkit_fingerprint", None)
    if cached is None:
        cached = request.fingerprint()
        object.__setattr__(request, "_evalkit_fingerprint", cached)
    return cached


def load_failure_message(model: Model, exc: BaseException) -> str:
    """One line for a model that cannot be loaded, with what to do."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    name = model.config.get("pretrained") or model.name
    if "trust_remote_code" in text or "custom code" in text:
        return (
            f"model {name} needs its own code from the checkpoint (trust_remote_code); if you trust it pass "
            "model.trust_remote_code=true, or use a backend that implements it (vLLM, an API server)"
        )
    return f"could not load model {name}: {type(exc).__name__}: {first[:300]}"


def score_record(task: Task, sample: Sample, rec: Record) -> Record:
    """Fill ``rec.scores`` (and task extras) from ``rec.prediction``; scoring failures become
    ``error_type="score"`` records. Used by the runner and by ``evalkit score``."""
    rec.scores = {}
    if rec.error_type == "score":
        rec.error, rec.error_type = None, None
    if not task.has_targets or rec.error is not None:
        return rec
    prediction = rec.prediction
    try:
        if not isinstance(prediction, str):
            raise ValueError(f"prediction is {type(prediction).__name__}, not a string")
        seen = ModelInput.from_extra(rec.extra)
        rec.scores = {k: float(v) for k, v in task.score_response(sample, prediction, seen).items()}
        rec.extra.update(task.record_extra_response(sample, prediction, seen))
    except (ValueError, TypeError, KeyError) as exc:
        rec.error, rec.error_type = stable_message(f"cannot score: {exc}"), "score"
    return rec


#: for a model on the CPU, the pipeline is turned on when building and preprocessing the requests
#: take at least this share of the generation time (measured on the run's first window, when it
#: is that clear there, else on the second)
AUTO_OVERLAP_MIN_RATIO = 0.5

#: nice value of the pipeline's background threads (request building, backend preprocessing)
BACKGROUND_NICE = 10


def background_thread_priority() -> None:
    """Set up a pipeline thread (request building, backend preprocessing): its torch operations
    (the processor's resize and normalisation) run on one core, and its CPU priority is lowered
    (Linux: per-thread nice value), so that the work done ahead of time never slows the model call
    on the critical path; it fills the cores' idle time.

    One core each, because every thread that calls torch otherwise opens an OpenMP team as wide as
    the machine: two build threads and the generating thread were three teams spinning on two
    cores (measured in docs/architecture.md). ``torch.set_num_threads`` sets the calling thread's
    OpenMP team size; the generating thread keeps its own (see :func:`pin_torch_threads`)."""
    torch = _imported_torch()
    if torch is not None:
        torch.set_num_threads(1)
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
    except (AttributeError, OSError):  # not Linux, or not permitted: run at normal priority
        pass


def _imported_torch() -> Any:
    """torch when it is already (fully) imported, else None: the pipeline never imports it."""
    torch = sys.modules.get("torch")
    return torch if torch is not None and hasattr(torch, "set_num_threads") else None


def pin_torch_threads(import_torch: bool = False) -> int | None:
    """Fix the calling (generating) thread's torch thread count before pipeline threads start, and
    return it (None without torch). torch sizes a thread's OpenMP team when the thread first uses
    it, from the process-wide setting that :func:`background_thread_priority` lowers to one; reading
    it here sizes this thread's team now. ``import_torch``: import it first when it is not yet (a
    model that computes on the CPU would otherwise size its team after a pipeline thread lowered
    the setting). Give the result to :func:`restore_torch_threads`."""
    if import_torch and "torch" not in sys.modules:
        import torch  # noqa: F401 - imported here so that this thread's team is sized now
    torch = _imported_torch()
    return int(torch.get_num_threads()) if torch is not None else None


def set_generate_threads(threads: int | None) -> int | None:
    """Set the calling (generating) thread's torch thread count to ``runner.generate_threads``
    (``None``: leave it); returns the count set. :func:`restore_torch_threads` puts it back."""
    torch = _imported_torch()
    if threads is None or torch is None:
        return None
    threads = max(1, int(threads))
    torch.set_num_threads(threads)
    return threads


def restore_torch_threads(threads: int | None) -> None:
    """Put the process-wide torch thread count back (threads started later get it again)."""
    torch = _imported_torch()
    if torch is not None and threads:
        torch.set_num_threads(threads)


def resolve_workers(workers: int | None, on_host: bool = False) -> int:
    """The number of request-building threads: ``runner.workers``, or by default min(4, CPU cores)
    — none when the model generates on the CPU (``on_host``: see ``Model.computes_on_host``)."""
    if workers is not None:
        return max(0, int(workers))
    return 0 if on_host else min(4, os.cpu_count() or 1)


def resolve_prefetch(prefetch_batches: int | None, on_host: bool = False) -> int:
    """Batches preprocessed ahead: ``runner.prefetch_batches``, or by default 1 — none when the model
    generates on the CPU."""
    if prefetch_batches is not None:
        return max(0, int(prefetch_batches))
    return 0 if on_host else 1


class RequestBuilder:
    """Builds the requests of the pending samples ahead of generation, window by window.

    With ``workers > 0`` a pool of threads builds them (image decode, resize, hashing and thumbnail
    encoding release the GIL in PIL, numpy and xxhash) while the model generates. The look-ahead is
    bounded by samples, not windows: at most ``window`` samples are built or being built and not
    yet written (the caller hands back capacity with :meth:`release` as it writes records), so
    memory does not grow with the number of samples. Results come back in sample order, so the run
    is identical to a sequential one."""

    def __init__(self, runner: Runner, workers: int):
        self.runner = runner
        self.workers = workers
        self.pool = (
            ThreadPoolExecutor(
                workers, thread_name_prefix="evalkit-build", initializer=background_thread_priority
            )
            if workers > 0
            else None
        )
        self._thumbnails_left = max(0, runner.options.thumbnails)
        self._chunks: list[list[Sample]] = []
        self._items: list[list[Future[Request | Record] | tuple[Sample, bool]]] = []
        self._next = (0, 0)  # (chunk, offset) of the next sample to submit
        self._capacity = 0
        self._lock = threading.Lock()
        #: seconds the first sample built in the caller's thread took (it pays the one-off costs);
        #: None until one is
        self.first_build_s: float | None = None

    def _submit_one(self) -> None:
        c, o = self._next
        sample = self._chunks[c][o]
        thumb = self._thumbnails_left > 0  # the first n pending samples get a preview
        self._thumbnails_left -= int(thumb)
        if self.pool is None:
            self._items[c].append((sample, thumb))
        else:
            self._items[c].append(self.pool.submit(self.runner.build_one, sample, thumb))
        self._capacity -= 1
        self._next = (c, o + 1) if o + 1 < len(self._chunks[c]) else (c + 1, 0)

    def _fill(self, force_chunk: int = -1) -> None:
        with self._lock:
            while self._next[0] < len(self._chunks) and (self._capacity > 0 or self._next[0] <= force_chunk):
                self._submit_one()

    def release(self, n: int) -> None:
        """``n`` samples were written: build as many more ahead."""
        self._capacity += n
        self._fill()

    def windows(
        self, todo: Sequence[Sample], window: int, first: int | None = None
    ) -> Iterator[tuple[list[tuple[Sample, Request]], list[Record]]]:
        """``(built, errors)`` per window of ``window`` samples (the first one ``first`` samples), in
        order; later samples are being built while the caller works on these. Time the caller
        waits for unfinished builds is added to ``stats.extra["build_wait_s"]``; without workers,
        the time spent building in the caller's thread to ``stats.extra["build_s"]``."""
        head = max(1, min(first or window, window))
        self._chunks = [list(todo[:head])] if todo else []
        self._chunks += [list(todo[i : i + window]) for i in range(head, len(todo), window)]
        self._items = [[] for _ in self._chunks]
        self._next, self._capacity = (0, 0), window
        stats = self.runner.stats.extra
        for n, chunk in enumerate(self._chunks):
            self._fill(force_chunk=n)  # this window is wholly submitted before it is waited for
            built: list[tuple[Sample, Request]] = []
            errors: list[Record] = []
            t = time.perf_counter()
            for sample, item in zip(chunk, self._items[n], strict=True):
                if isinstance(item, Future):
                    result = item.result()
                else:
                    t1 = time.perf_counter()
                    result = self.runner.build_one(*item)
                    if self.first_build_s is None:
                        self.first_build_s = time.perf_counter() - t1
                if isinstance(result, Record):
                    errors.append(result)
                else:
                    built.append((sample, result))
            # the build pool behind (main thread idle), or the main thread building itself
            key = "build_wait_s" if self.pool is not None else "build_s"
            stats[key] = round(stats.get(key, 0.0) + time.perf_counter() - t, 4)
            self._items[n] = []  # the futures hold the requests: drop them with the window
            yield built, errors

    def start_workers(self, workers: int) -> None:
        """Build the samples not built yet in ``workers`` threads from now on: those queued for
        the caller's thread (later windows, not started: the caller is between windows) go to the
        threads too, in order."""
        with self._lock:
            if self.pool is None and workers > 0:
                self.pool = pool = ThreadPoolExecutor(
                    workers, thread_name_prefix="evalkit-build", initializer=background_thread_priority
                )
                self.workers = workers
                for items in self._items:
                    for i, item in enumerate(items):
                        if not isinstance(item, Future):
                            items[i] = pool.submit(self.runner.build_one, *item)

    def close(self) -> None:
        """Stop the workers (requests not started yet are dropped)."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

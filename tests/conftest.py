"""Shared fixtures: a seeded tiny Qwen2-VL built once per session, fixture datasets in the hub
schemas, an isolated cache, and a helper that runs the real ``evalkit`` CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


#: the slowest test files (a minute or more of CPU each), scheduled first: with ``-n 2 --dist
#: loadfile`` a long file started last would leave one worker finishing it alone. A scheduling hint
#: only (tests keep their order within a file; a stale entry costs nothing). xdist hands the first files out in turn (1st, 3rd to one worker; 2nd, 4th to the other): the 2nd
#: and 4th need no trained tiny model, so the second worker works while the first one trains it
#: (about a minute; the other users of ``model=tiny`` would wait on its build lock)
SLOW_FILES_FIRST = (
    "tests/spine/test_integrity.py",  # trains the tiny model (model=tiny)
    "tests/metrics/test_metrics_caption.py",  # Java only
    "tests/spine/test_resume_and_cache.py",
    "tests/runner/test_pipeline.py",  # the untrained fixture model only
    "tests/runner/test_distributed.py",
    "tests/tasks/test_scienceqa.py",
    "tests/tasks/test_math_reasoning.py",
    "tests/reliability/test_crash_consistency.py",
    "tests/spine/test_ci_gate.py",
    "tests/spine/test_docvqa_e2e.py",
    "tests/tasks/test_captioning.py",
    "tests/runner/test_rank_watchdog.py",
    "tests/reliability/test_disk_full.py",
)


def pytest_configure(config: pytest.Config) -> None:
    """Keep :data:`SLOW_FILES_FIRST` in effect under ``--dist loadfile``: pytest-xdist (>= 3.5)
    otherwise hands files out by their number of tests, not by the order collected."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the slowest files first (stable: the order inside a file is unchanged)."""
    rank = {name: i for i, name in enumerate(SLOW_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test session gets its own response cache and model cache (no state leaks in)."""
    path = tmp_path_factory.mktemp("evalkit-cache")
    os.environ["EVALKIT_CACHE_DIR"] = str(path)
    # locally built models (the trained tiny model) are shared by all workers of this test run;
    # building is atomic (temp folder + rename), so concurrent first uses are safe
    shared = tmp_path_factory.getbasetemp()
    shared = shared.parent if shared.name.startswith("popen-gw") else shared
    os.environ.setdefault("EVALKIT_MODEL_CACHE", str(shared / "evalkit-models"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded random-weight tiny Qwen2-VL (real model class, real processor, locally trained
    tokenizer), saved with ``save_pretrained``."""
    from evalkit.models.tiny import build_tiny_qwen2_vl

    return build_tiny_qwen2_vl(tmp_path_factory.mktemp("tiny-qwen2-vl"))


@pytest.fixture(scope="session")
def docvqa_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DocVQA fixture laid out like the hub repo (DocVQA/validation-*.parquet, 30 rows + test)."""
    from evalkit.testing.docvqa import write_docvqa_hub_layout

    return write_docvqa_hub_layout(tmp_path_factory.mktemp("docvqa"), n_rows=30, seed=3)


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: int = 600):
    """Run ``python -m evalkit.cli <args>`` in a subprocess; returns the CompletedProcess."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "evalkit.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=timeout,
    )


def run_cli_here(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float | None = None
):
    """``evalkit <args>`` through :func:`evalkit.cli.main` in this process; returns a
    ``CompletedProcess`` with the exit code and the captured stdout/stderr, as :func:`run_cli` does.

    For tests about what a run computes and says (results, records, refusals, one-line errors):
    it skips the 3-6 s of interpreter start and torch/transformers imports of a subprocess. Tests
    about the process itself (signals, kills, the console script, environment read at import,
    plugins imported from files) keep :func:`run_cli`. Exits and uncaught exceptions map to exit
    codes as the interpreter maps them; the environment, working directory, logging handlers and
    Hydra's global state are restored afterwards. ``timeout`` raises ``subprocess.TimeoutExpired``
    (a SIGALRM in this, the main, thread)."""
    import contextlib
    import io
    import logging
    import signal
    import traceback
    import warnings

    from hydra.core.global_hydra import GlobalHydra

    from evalkit import cli

    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    os.environ.update(env or {})
    if cwd is not None:
        os.chdir(cwd)
    GlobalHydra.instance().clear()

    def expired(signum, frame):  # noqa: ANN001, ANN202, ARG001
        raise subprocess.TimeoutExpired(["evalkit", *args], timeout or 0)

    saved_alarm = signal.signal(signal.SIGALRM, expired) if timeout else None
    if timeout:
        signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.resetwarnings()  # warnings are printed to stderr, as the interpreter does
            warnings.simplefilter("default")
            warnings.showwarning = warnings._showwarning_orig  # type: ignore[attr-defined]
            try:
                code = cli.main(list(args))
            except subprocess.TimeoutExpired:
                raise
            except SystemExit as exc:
                if exc.code is None or isinstance(exc.code, int):
                    code = exc.code or 0
                else:  # sys.exit("message"): the interpreter prints it and exits 1
                    print(exc.code, file=sys.stderr)
                    code = 1
            except BaseException:  # what the interpreter does with an uncaught exception
                traceback.print_exc()
                code = 1
    finally:
        if timeout:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, saved_alarm)
        GlobalHydra.instance().clear()
        for handler in root.handlers:
            if handler not in saved_handlers:
                handler.close()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(["evalkit", *args], code, out.getvalue(), err.getvalue())


def read_samples(path: Path) -> list[dict]:
    """The JSON objects of a samples JSONL file."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def cli():
    """The CLI runner helper (see :func:`run_cli_here`: in this process)."""
    return run_cli_here


@pytest.fixture
def cli_process():
    """The CLI in a subprocess (see :func:`run_cli`)."""
    return run_cli

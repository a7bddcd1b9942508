"""Import the chosen backend's heavy libraries in the background while the run starts up.

Importing torch and transformers takes seconds and is the larger part of a small run's start-up.
The command line and the Python API know the model group as soon as they see the arguments, so they
start these imports in one background thread (:func:`start_for_model`) while the main thread
composes the config (the command line once its argument checks have passed, so a refused command
does not pay for them). Only the imports the chosen
backend needs are made (:attr:`evalkit.models.base.Model.warm_modules`; none for the API and fake
backends), after ``datasets`` (:data:`COMMON_MODULES`: every task loads its data with it, and it
brings pandas and pyarrow, over a second to import).

:func:`wait` must be called before the main thread may import any of those libraries itself or
touch a library that inspects them (``datasets`` looks at ``transformers`` when it is in
``sys.modules``): a half-imported torch or transformers breaks its importers. The pipeline calls it
first thing (:func:`evalkit.pipeline.run_from_config`), before the task or model is built, so the
imports overlap only the argument checks and Hydra's composition.
A failed warm-up import is ignored: the backend's own import at load time reports it.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from pathlib import Path

log = logging.getLogger("evalkit")

_lock = threading.Lock()
#: imported for every backend, first: what opening any evaluation needs
COMMON_MODULES: tuple[str, ...] = ("datasets",)
_thread: threading.Thread | None = None


def backend_of_model_config(name: str, config_dir: Path | None = None) -> str | None:
    """The ``backend`` of the model config ``name`` (following its ``defaults`` list), or None."""
    import yaml

    if config_dir is None:
        from evalkit.tasks.registry import config_dir as configs

        config_dir = configs()
    seen: set[str] = set()
    while name and name not in seen:
        seen.add(name)
        path = config_dir / "model" / f"{name}.yaml"
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            return None
        if not isinstance(data, dict):
            return None
        if data.get("backend"):
            return str(data["backend"])
        bases = [d for d in data.get("defaults") or [] if isinstance(d, str) and d != "_self_"]
        name = bases[0] if bases else ""
    return None


def start(backend: str) -> None:
    """Start importing ``backend``'s libraries (its ``warm_modules``) in a background thread, once
    per process."""
    global _thread
    from evalkit.models.base import backend_class

    with _lock:
        if _thread is not None:
            return
        try:
            modules = tuple(backend_class(backend).warm_modules)
        except Exception:  # noqa: BLE001 - an unknown backend is reported later, with its own line
            return
        # every task loads its data with ``datasets`` (pandas and pyarrow: over a second to import)
        modules = (*COMMON_MODULES, *modules)
        _thread = threading.Thread(target=_import_all, args=(modules,), name="evalkit-warmup", daemon=True)
        _thread.start()


def _import_all(modules: tuple[str, ...]) -> None:
    """Import ``"package.module"`` or ``"package:attribute"`` (an attribute of a lazy module)."""
    t = time.perf_counter()
    for spec in modules:
        name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(name)
            if attr:
                getattr(module, attr)
        except Exception as exc:  # noqa: BLE001 - the backend's load reports import problems itself
            log.debug("warm-up import of %s failed: %s", spec, exc)
            return
    log.debug("warm-up imports took %.2fs", time.perf_counter() - t)


def start_for_model(name: str | None) -> None:
    """:func:`start` for the backend of the model config ``name`` (``model=<name>``)."""
    if not name:
        return
    backend = backend_of_model_config(name)
    if backend:
        start(backend)


def start_for_args(args: list[str] | tuple[str, ...]) -> None:
    """:func:`start_for_model` for the ``model=`` choice of a command line (the default model when
    there is none)."""
    choice = None
    for a in args:
        key, sep, value = a.partition("=")
        if sep and key.lstrip("+") in ("model", "model.backend"):
            if key.lstrip("+") == "model.backend":
                start(value)
                return
            choice = value.split(",")[0]
    start_for_model(choice or "tiny")


def is_started() -> bool:
    """Whether :func:`start` has begun the background imports in this process."""
    return _thread is not None


def wait() -> None:
    """Block until the background imports (if any) are done."""
    thread = _thread
    if thread is not None and thread.is_alive():
        thread.join()

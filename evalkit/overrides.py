"""Checking and composing ``key=value`` overrides into a run config (shared by the CLI, the Python
API, ``evalkit score`` and ``evalkit judge``).

Lives below every command so that none of them imports another: ``cli`` and ``api`` both import
this module; it imports neither.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError, UsageError


def _group_choice(args: Sequence[str], group: str) -> list[str]:
    for a in args:
        if a.startswith(f"{group}=") or a.startswith(f"+{group}="):
            value = a.split("=", 1)[1]
            return [v for v in value.split(",") if v]
    return []


_SECRET_OVERRIDE = re.compile(r"^[+~]*[\w.]*(api[_-]?key|token|secret|password)\s*=", re.IGNORECASE)
_SECRET_HEADERS = re.compile(r"(headers|auth|credentials?|cookie)$", re.IGNORECASE)
_CREDENTIAL_VALUE = re.compile(r"(?i)(authorization|bearer|basic|api[_-]?key|token|cookie|sk-)")


def check_no_secrets(args: Sequence[str]) -> None:
    """Refuse credentials on the command line: they would land in shell history and Hydra's dumps."""
    from evalkit.redact import url_secret_parts

    for a in args:
        if _SECRET_OVERRIDE.match(a) and not a.split("=", 1)[0].endswith("_env"):
            key = a.split("=", 1)[0].lstrip("+~")
            raise UsageError(
                f"{key} must not be given on the command line; put the key in an environment variable and "
                f"name it with {key.rsplit('.', 1)[0] + '.' if '.' in key else ''}api_key_env=<VARIABLE>"
            )
        key, _, value = a.partition("=")
        key = key.lstrip("+~")
        if _SECRET_HEADERS.search(key) and _CREDENTIAL_VALUE.search(value):
            raise UsageError(
                f"{key} must not carry credentials on the command line; put the key in an environment "
                "variable and name it with model.api_key_env=<VARIABLE>"
            )
        if "://" in value and url_secret_parts(value.strip("'\"")):
            raise UsageError(
                f"{key} must not carry credentials (user info or query values) on the command line; "
                "put the key in an environment variable (model.api_key_env=<VARIABLE>) and pass the URL "
                "without them"
            )


def check_names(args: Sequence[str]) -> None:
    """Fail early, with the list of choices, on an unknown task/model/runner/judge name.

    A name is known when its config file exists (or, for a task, an entry point registers it); the
    full list of choices is only read for the error message."""
    from evalkit.tasks.registry import _group_entries, config_dir, list_models, list_tasks, task_entry_points

    listing = {
        "task": list_tasks,
        "model": list_models,
        "runner": lambda: _group_entries("runner"),
        "judge": lambda: _group_entries("judge"),
    }
    for group, entries in listing.items():
        for name in _group_choice(args, group):
            if (config_dir() / group / f"{name}.yaml").is_file():
                continue
            if group == "task" and name in task_entry_points():
                continue
            available = [e.name for e in entries()]
            if name not in available:
                raise UsageError(
                    f"unknown {group} {name!r}; available: {', '.join(available)} (see `evalkit list`)"
                )


_GROUPS = ("task", "model", "runner", "judge")


def _key_overrides(args: Sequence[str]) -> list[tuple[str, str]]:
    """``(prefix, key)`` of every value override (``key=v``, ``+key=v``, ``++key=v``, ``~key``);
    group choices, Hydra's own keys and flags are left out."""
    out = []
    for a in args:
        if a.startswith("-") or ("=" not in a and not a.startswith("~")):
            continue
        raw = a.split("=", 1)[0]
        prefix = raw[: len(raw) - len(raw.lstrip("+~"))]
        key = raw.lstrip("+~")
        if key in _GROUPS or key.startswith(("hydra.", "hydra/")) or key == "hydra" or "/" in key:
            continue
        out.append((prefix, key))
    return out


def base_config(args: Sequence[str]) -> dict:
    """The composed config for the group choices in ``args`` (first choice of a sweep), without
    any value override: the reference for checking override keys."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from omegaconf import OmegaConf

    choices = [f"{g}={c[0]}" for g in _GROUPS if (c := _group_choice(args, g))]
    register_output_dir_resolver()
    with initialize_config_module(config_module="evalkit.configs", version_base=None):
        cfg = hydra_compose(config_name="config", overrides=choices)
    data = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(data, dict)
    data.pop("hydra", None)
    return data


def check_override_keys(args: Sequence[str], composed: Mapping[str, Any] | None = None) -> None:
    """Refuse a misspelt override key with one line naming the closest valid key.

    ``key=v`` must name an existing key. ``+key=v`` may add a new key inside the task, model or judge
    group (a plugin's or backend's own option); new keys at the top level or under ``runner`` are
    refused (nothing would read them). ``composed``: the config already composed with ``args``
    (spares composing the base config when no override adds a key)."""
    from evalkit.config_check import flat_keys, unknown_key_error

    overrides = _key_overrides(args)
    if not overrides:
        return
    if composed is not None:
        # the composed config holds every key the overrides set: a plain `key=v` whose key is there
        # existed before (Hydra refuses to set unknown keys), so only added keys need the base
        known_after = set(flat_keys(composed))
        if all("+" not in prefix and key in known_after for prefix, key in overrides):
            return
    valid = flat_keys(base_config(args))
    known = set(valid)
    for prefix, key in overrides:
        if key in known:
            continue
        parent = key.rsplit(".", 1)[0] if "." in key else ""
        group = key.split(".", 1)[0]
        adding = "+" in prefix
        if adding and group in ("task", "model", "judge") and (parent in known or parent == group):
            continue  # `+` adds a plugin's or backend's own option deliberately
        raise unknown_key_error(key, valid)


def precheck_values(args: Sequence[str]) -> dict[str, Any]:
    """Compose the run's config once and check its values and its output folder before Hydra
    starts the job (which creates the folder): a bad value leaves nothing behind. Returns the
    composed config (resolved, without the ``hydra`` node)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from omegaconf import OmegaConf

    from evalkit.config_check import validate_config

    with initialize_config_module(config_module="evalkit.configs", version_base=None):
        cfg = hydra_compose(config_name="config", overrides=list(args))
    data = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(data, dict)
    data.pop("hydra", None)
    validate_config(data)
    check_output_dir_writable(str(data.get("output_dir") or ""))
    dataset = (data.get("task") or {}).get("dataset")
    if isinstance(dataset, dict):  # a missing local copy is said now, not after the imports
        from evalkit.tasks.datasets import check_local_dataset_path

        check_local_dataset_path(dataset)
    return data


def check_output_dir_writable(output_dir: str) -> None:
    """One line when ``output_dir`` cannot be created or written (a file in the way, read-only)."""
    if not output_dir:
        return
    path = Path(output_dir).expanduser()
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    problem = None
    if not probe.is_dir():
        problem = f"{probe} is not a folder"
    elif not os.access(probe, os.W_OK | os.X_OK):
        problem = "permission denied"
    else:
        try:
            import tempfile

            with tempfile.TemporaryFile(dir=probe):
                pass
        except OSError as exc:
            problem = exc.strerror or str(exc)
    if problem:
        raise UsageError(f"output_dir {path} is not writable ({problem}); choose another output_dir=<folder>")


def register_output_dir_resolver() -> None:
    """Register ``${evalkit_output_dir:}`` (the default output folder, one per distinct evaluation)."""
    from omegaconf import OmegaConf

    if OmegaConf.has_resolver("evalkit_output_dir"):
        return

    def resolve(*, _root_):  # noqa: ANN001, ANN202 - OmegaConf passes the root config
        from evalkit.runner.identity import default_output_dir

        clean = {}
        for key in ("task", "model", "limit", "seed"):
            if key in _root_:
                node = _root_[key]
                clean[key] = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
        return default_output_dir(clean)

    OmegaConf.register_new_resolver("evalkit_output_dir", resolve)


def register_entry_point_tasks(args: Sequence[str]) -> None:
    """Make entry-point tasks selectable as ``task=<name>`` by storing their default config."""
    from evalkit.tasks.registry import entry_point_config

    names = _tasks_without_config_file(args)
    if not names:
        return
    from hydra.core.config_store import ConfigStore

    from evalkit import warmup

    warmup.wait()  # a plugin module may import torch itself: not while the warm-up imports it
    cs = ConfigStore.instance()
    for name in names:
        config = entry_point_config(name)
        if config is not None:
            cs.store(group="task", name=name, node=config)


def _tasks_without_config_file(args: Sequence[str]) -> list[str]:
    """The ``task=`` choices of ``args`` that have no YAML file (entry-point tasks, or unknown)."""
    from evalkit.tasks.registry import config_dir

    return [n for n in _group_choice(args, "task") if not (config_dir() / "task" / f"{n}.yaml").exists()]


def hydra_error_to_usage(exc: BaseException) -> UsageError:
    """One line for a Hydra/OmegaConf composition error (bad override syntax, missing config...)."""
    text = " ".join(str(exc).split())
    text = text.replace("Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.", "")
    m = re.search(r"Ambiguous value for argument '([^']+)'", text)
    if m:
        key = m.group(1).split("=", 1)[0]
        return UsageError(
            f"{m.group(1)}: a comma-separated value is a sweep; run it with `evalkit run -m ...` "
            f"(one job per value), or quote it as {key}='...' for a literal string"
        )
    m = re.search(r"Could not override '([^']+)'", text)
    if m:
        return UsageError(f"unknown config key {m.group(1)!r} (see `evalkit run --cfg job` for the config)")
    return UsageError(f"bad override: {text[:300].strip()}")


def compose(task: str, model: str, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Compose the Hydra config for ``task``/``model`` plus overrides into a plain resolved dict.

    Misspelt keys and bad values raise :class:`~evalkit.errors.UsageError`, as on the command line."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    args = [f"task={task}", f"model={model}", *overrides]
    check_no_secrets(args)
    check_names(args)
    register_entry_point_tasks(args)
    register_output_dir_resolver()
    try:
        try:
            with initialize_config_module(config_module="evalkit.configs", version_base=None):
                cfg = hydra_compose(config_name="config", overrides=args)
        except Exception:
            check_override_keys(args)  # a misspelt key: the line naming the closest valid key
            raise
        data = config_to_dict(cfg)
        check_override_keys(args, composed=data)
    except EvalkitError:
        raise
    except Exception as exc:  # Hydra / OmegaConf errors: one line
        raise hydra_error_to_usage(exc) from None
    from evalkit.config_check import validate_config

    validate_config(data)
    return data


class ComposeAhead:
    """A composition started ahead of the warm-up imports; :meth:`result` gives what it returned.

    Hydra's import and composition are 0.2-0.4 s of work that holds the GIL. Done in the main
    thread while the warm-up thread imports torch and transformers (:mod:`evalkit.warmup`), the two
    take the GIL from each other and the run's first sample comes that much later. So, on Linux and
    while the process has no other thread, :func:`start_compose` (the Python API) forks a child
    that composes and checks the config and pipes the plain dict back as JSON; the parent starts
    the warm-up meanwhile, on another core. The child is a copy of this process — same files,
    environment, plugins and resolvers — so it composes the same config. It never reports an error
    itself: on any failure (a bad override, a crash, a pipe problem, a value JSON would not give
    back exactly) the parent calls the same function in-process, which raises the usual one-line
    error. ``EVALKIT_COMPOSE_FORK=0`` turns the fork off.
    """

    def __init__(self, fn: Any, *args: Any):
        self.fn, self.args = fn, args
        self.pid: int | None = None
        self._fd: int | None = None

    @property
    def forked(self) -> bool:
        """True while a child process composes the config."""
        return self.pid is not None

    def fork(self) -> None:
        """Start the child (see the class docstring for when this is safe)."""
        import sys

        read_fd, write_fd = os.pipe()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # nothing buffered is written twice
        pid = os.fork()
        if pid == 0:  # the child: compose, send, leave without running the parent's exit handlers
            status = 1
            try:
                os.close(read_fd)
                with os.fdopen(write_fd, "wb") as pipe:
                    pipe.write(self._child_payload())
                status = 0
            finally:
                try:
                    sys.stderr.flush()
                finally:
                    os._exit(status)
        os.close(write_fd)
        self.pid, self._fd = pid, read_fd

    def _child_payload(self) -> bytes:
        """JSON of the result, or of a failure. A result JSON would not give back exactly (an
        integer key, a tuple) counts as a failure: the parent then calls the function itself."""
        import json

        try:
            value = self.fn(*self.args)
            text = json.dumps({"ok": value})
            if json.loads(text) != {"ok": value}:
                raise ValueError("not exactly representable as JSON")
        except BaseException:  # noqa: BLE001 - the parent calls again and reports it
            text = json.dumps({"failed": True})
        return text.encode()

    def _collect(self) -> tuple[bool, Any]:
        import json

        assert self.pid is not None and self._fd is not None
        try:
            with os.fdopen(self._fd, "rb") as pipe:
                self._fd = None
                payload = pipe.read()
        finally:
            _, status = os.waitpid(self.pid, 0)
            self.pid = None
        try:
            message = json.loads(payload)
        except ValueError:  # a child that died before it wrote everything: call it here
            return False, None
        ok = status == 0 and isinstance(message, dict) and "ok" in message
        return ok, message.get("ok") if ok else None

    def result(self) -> Any:
        """The child's result, or the function's own when there is no child or it failed."""
        if self.pid is not None:
            ok, value = self._collect()
            if ok:
                return value
        return self.fn(*self.args)


def start_compose(task: str, model: str, overrides: Sequence[str] = ()) -> ComposeAhead:
    """Begin :func:`compose` for ``task``/``model``/``overrides`` in a forked child where that is
    safe and useful (see :class:`ComposeAhead`); call this before :func:`evalkit.warmup.start`.

    Checks that need no Hydra (credentials on the command line, unknown names) run here at once, so
    their errors are raised from this call, as from :func:`compose`."""
    args = [f"task={task}", f"model={model}", *overrides]
    check_no_secrets(args)
    check_names(args)
    pending = ComposeAhead(compose, task, model, tuple(overrides))
    if _fork_safe_and_worthwhile(args):
        try:
            pending.fork()
        except OSError:  # no fork here (limits, sandbox): composed in-process by result()
            pending.pid = None
    return pending


def _fork_safe_and_worthwhile(args: Sequence[str]) -> bool:
    """Whether to compose in a forked child: on Linux, in a process with no other thread (a fork
    copies no lock another thread holds), with warm-up imports left to overlap, no entry-point task
    to register with Hydra first (that state would stay in the child), and the fork not turned off
    by the user."""
    import sys
    import threading

    if os.environ.get("EVALKIT_COMPOSE_FORK", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if not sys.platform.startswith("linux") or threading.active_count() != 1:
        return False
    if _tasks_without_config_file(args):
        return False
    from evalkit import warmup

    # a warm process (a second evaluation in a notebook) has nothing left to overlap
    return not warmup.is_started() and any(m not in sys.modules for m in ("datasets", "transformers"))


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Resolve an OmegaConf config (Hydra's own ``hydra`` node dropped) into a plain dict."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg, DictConfig):
        data = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    else:
        data = dict(cfg)
    assert isinstance(data, dict)
    data.pop("hydra", None)
    return data  # type: ignore[return-value]

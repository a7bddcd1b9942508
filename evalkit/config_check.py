"""Up-front validation of a composed run config: every known key type- and range-checked before
anything loads, unknown keys refused with the closest valid key.

Used by ``evalkit run`` (before Hydra composes, for misspelt overrides, and after, for values) and
by the Python API (:func:`evalkit.api.run_from_config`), which raise the same
:class:`~evalkit.errors.UsageError`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from evalkit.errors import UsageError

Check = Callable[[str, Any], None]


def _fail(key: str, value: Any, expected: str) -> None:
    raise UsageError(f"{key}={value!r} is not valid: expected {expected}")


def _int(minimum: int | None = None, nullable: bool = False) -> Check:
    def check(key: str, value: Any) -> None:
        if value is None and nullable:
            return
        what = (
            "an integer"
            + (f" >= {minimum}" if minimum is not None else "")
            + (" or null" if nullable else "")
        )
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(key, value, what)
        if minimum is not None and value < minimum:
            _fail(key, value, what)

    return check


def _number(minimum: float | None = None, maximum: float | None = None, nullable: bool = False,
            strict_min: bool = False) -> Check:  # fmt: skip
    def check(key: str, value: Any) -> None:
        if value is None and nullable:
            return
        rng = []
        if minimum is not None:
            rng.append(f"{'>' if strict_min else '>='} {minimum}")
        if maximum is not None:
            rng.append(f"<= {maximum}")
        what = "a number" + (" " + " and ".join(rng) if rng else "") + (" or null" if nullable else "")
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(float(value)):
            _fail(key, value, what)
        if minimum is not None and (value <= minimum if strict_min else value < minimum):
            _fail(key, value, what)
        if maximum is not None and value > maximum:
            _fail(key, value, what)

    return check


def _bool(key: str, value: Any) -> None:
    if not isinstance(value, bool):
        _fail(key, value, "true or false")


def _str(nullable: bool = False) -> Check:
    def check(key: str, value: Any) -> None:
        if value is None and nullable:
            return
        if not isinstance(value, str) or not value:
            _fail(key, value, "a non-empty string" + (" or null" if nullable else ""))

    return check


def _any(key: str, value: Any) -> None:
    return None


#: top-level keys (besides the groups) and their checks
TOP_LEVEL: dict[str, Check] = {
    "limit": _int(1, nullable=True),
    "batch_size": _int(1, nullable=True),
    "output_dir": _str(nullable=True),
    "seed": _int(0),
    "cache_dir": _str(),
}
GROUPS = ("task", "model", "runner", "judge")

#: ``runner`` keys and their checks (unknown runner keys are refused)
RUNNER: dict[str, Check] = {
    "name": _str(),
    "description": _any,
    "nproc": _int(1),
    "gpus_per_rank": _int(1),
    "cache": _bool,
    "resume": _bool,
    "progress": _bool,
    "thumbnails": _int(0),
    "window_batches": _int(1),
    "sort_by_length": _bool,
    "max_consecutive_model_errors": _int(1),
    "max_error_rate": _number(0.0, 1.0),
    "verify_resumed": lambda k, v: None if v in ("auto", True, False) else _fail(k, v, "auto, true or false"),
    "backend": _str(),
    "timeout_s": _number(0.0, strict_min=True),
    "rank_timeout_s": _number(0.0, strict_min=True, nullable=True),
    "master_port": _int(1, nullable=True),
    "log_to": _str(nullable=True),
    "log_project": _str(nullable=True),
    "prefetch_batches": _int(0, nullable=True),
    "workers": _int(0, nullable=True),
    "generate_threads": _int(1, nullable=True),
}

#: keys inside the task / model groups whose values are checked when present
TASK: dict[str, Check] = {
    "generation.max_new_tokens": _int(1),
    "generation.min_new_tokens": _int(0, nullable=True),
    "generation.temperature": _number(0.0),
    "generation.top_p": _number(0.0, 1.0, nullable=True, strict_min=True),
    "generation.top_k": _int(1, nullable=True),
    "generation.repetition_penalty": _number(0.0, strict_min=True, nullable=True),
}
#: the precisions ``model.dtype`` may name (torch's and vLLM's spellings)
DTYPES = ("auto", "bfloat16", "float16", "half", "float32", "float", "float64")


def _dtype(key: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or value not in DTYPES:
        _fail(key, value, "one of " + ", ".join(DTYPES))


MODEL: dict[str, Check] = {
    "dtype": _dtype,
    "min_pixels": _int(1, nullable=True),
    "max_pixels": _int(1, nullable=True),
    "batch_size": _int(1, nullable=True),
    "concurrency": _int(1, nullable=True),
    "timeout_s": _number(0.0, strict_min=True, nullable=True),
    "max_retries": _int(0, nullable=True),
    "fit_images": _bool,
}


def _get(cfg: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def flat_keys(cfg: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Every dotted key of a nested mapping (``task.generation.max_new_tokens``...)."""
    out = []
    for k, v in cfg.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        out.append(key)
        if isinstance(v, Mapping):
            out.extend(flat_keys(v, key))
    return out


def closest_key(key: str, valid: Iterable[str]) -> str | None:
    """The valid key most like ``key`` (None when nothing is close)."""
    valid = list(valid)
    same_depth = [v for v in valid if v.count(".") == key.count(".")]
    match = difflib.get_close_matches(key, same_depth or valid, n=1, cutoff=0.6)
    return match[0] if match else None


def unknown_key_error(key: str, valid: Iterable[str]) -> UsageError:
    """``unknown config key 'limt'; did you mean 'limit'?``. A key evalkit knows but the chosen
    task config leaves unset (``task.generation.temperature``...) is named with the ``+`` that adds
    it (model keys are backend-specific: a key the chosen backend lacks gets the closest key)."""
    group, _, rest = key.partition(".")
    if group == "task" and rest in TASK:  # decoding knobs: every backend reads them
        return UsageError(
            f"{key} is not set by this {group}'s config; add it with +{key}=<value> (a leading + adds a key)"
        )
    near = closest_key(key, valid)
    hint = f"; did you mean {near!r}?" if near else " (see `evalkit run --cfg job` for the config)"
    return UsageError(f"unknown config key {key!r}{hint}")


def validate_config(cfg: Mapping[str, Any]) -> None:
    """Type- and range-check a composed config; raise :class:`UsageError` on the first problem."""
    valid_top = set(TOP_LEVEL) | set(GROUPS)
    for key in cfg:
        if key == "hydra":
            continue
        if key not in valid_top:
            raise unknown_key_error(str(key), [*valid_top, *flat_keys(cfg)])
    for key, check in TOP_LEVEL.items():
        if key in cfg:
            check(key, cfg[key])
    runner = cfg.get("runner") or {}
    if not isinstance(runner, Mapping):
        raise UsageError("runner must be a config group (runner=<name>)")
    for key, value in runner.items():
        if key not in RUNNER:
            raise unknown_key_error(f"runner.{key}", [f"runner.{k}" for k in RUNNER])
        RUNNER[key](f"runner.{key}", value)
    for group, checks in (("task", TASK), ("model", MODEL)):
        node = cfg.get(group) or {}
        if not isinstance(node, Mapping):
            raise UsageError(f"{group} must be a config group ({group}=<name>)")
        for dotted, check in checks.items():
            present, value = _get(node, dotted)
            if present:
                check(f"{group}.{dotted}", value)

"""The ``evalkit`` command line.

    evalkit run task=<name> model=<name> [overrides]     evaluate (Hydra; -m for sweeps)
    evalkit list                                        tasks and models, one line each
    evalkit score <run folder> | task=<name> samples=<file> [...]   re-score, no model
    evalkit report <results dirs or globs> [...]        leaderboards, paper tables, HTML
    evalkit gate --baseline B --current C               CI regression gate (exit 1 on regression)
    evalkit judge task=<name> samples=<file> judge=<name>   re-judge a samples file (LLM judge)
    evalkit version | --version                         the installed version
    evalkit run --help                                  the stable overrides of `evalkit run`, examples

Options: --debug (or EVALKIT_DEBUG=1) shows tracebacks.

Errors print one line, ``evalkit: error: ...``, and exit non-zero (2 for usage errors); add
``--debug`` (or set ``EVALKIT_DEBUG=1``) for the traceback.

Start-up is light: ``list`` and argument checks import neither torch nor transformers nor any
task plugin.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from evalkit.errors import EvalkitError, UsageError
from evalkit.redact import redact_text

USAGE = "\n\n".join(__doc__.split("\n\n")[1:3]) if __doc__ else ""

RUN_HELP = """usage: evalkit run task=<name> model=<name> [overrides] [-m] [--debug]

Evaluates one task with one model and writes results.json, samples/<task>.jsonl and run.json into
output_dir. Rerunning the same command resumes; a different evaluation in the same folder is refused.

Stable overrides:
  task=<name> model=<name>       what to evaluate (`evalkit list` shows every task and model)
  limit=<n>                      only the first n samples (default: all)
  batch_size=<n>                 requests per model call / concurrent API requests
  output_dir=<dir>               results folder (default outputs/<task>/<model>[-<ckpt>]-<hash8>)
  seed=<n>                       seed (recorded)
  task.prompt=<preset>           a prompt preset of the task (default, qwen_vl, ...) or a template
  task.dataset.path=<id|folder>  a hub id or a local copy; task.dataset.split=test -> submission file
  task.generation.max_new_tokens=<n>
  model.pretrained=<id|folder>   for model=hf / model=vllm
  model.min_pixels=<n> model.max_pixels=<n>    the image pixel budget
  runner.cache=false runner.resume=false        no response cache / start the folder over
  runner.max_error_rate=<0..1>   error share above which the run exits 1 (default 0.05)
  runner=multigpu runner.nproc=<n>             data-parallel ranks
  judge=<name>                   LLM judge for judge-scored tasks (touchstone, mmvet...)

Examples:
  evalkit run task=docvqa_mini model=tiny
  evalkit run task=docvqa model=qwen2-vl-7b batch_size=8 limit=500
  evalkit run -m task=docvqa_mini model=tiny task.prompt=default,qwen_vl

Exit codes: 0 = trusted results; 1 = failure or results marked incomplete (nothing scored, too many
errors); 2 = usage error. Hydra's own views of the composed config: --cfg job, --info.
"""
_DEBUG = False
_SWEEP_FAILURES: list[str] = []


def _debug_enabled(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("EVALKIT_DEBUG", "") not in ("", "0", "false")


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
    """Fail early, with the list of choices, on an unknown task/model/runner/judge name."""
    from evalkit.tasks.registry import _group_entries, list_models, list_tasks

    for group, available in (
        ("task", [e.name for e in list_tasks()]),
        ("model", [e.name for e in list_models()]),
        ("runner", [e.name for e in _group_entries("runner")]),
        ("judge", [e.name for e in _group_entries("judge")]),
    ):
        for name in _group_choice(args, group):
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


def check_override_keys(args: Sequence[str]) -> None:
    """Refuse a misspelt override key with one line naming the closest valid key.

    ``key=v`` must name an existing key. ``+key=v`` may add a new key inside the task, model or judge
    group (a plugin's or backend's own option); new keys at the top level or under ``runner`` are
    refused (nothing would read them)."""
    from evalkit.config_check import flat_keys, unknown_key_error

    overrides = _key_overrides(args)
    if not overrides:
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


def precheck_values(args: Sequence[str]) -> None:
    """Compose the run's config once and check its values and its output folder before Hydra
    starts the job (which creates the folder): a bad value leaves nothing behind."""
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
    from evalkit.tasks.registry import config_dir, entry_point_config

    names = [n for n in _group_choice(args, "task") if not (config_dir() / "task" / f"{n}.yaml").exists()]
    if not names:
        return
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    for name in names:
        config = entry_point_config(name)
        if config is not None:
            cs.store(group="task", name=name, node=config)


def _print_results(results: dict) -> None:
    rows = []
    for name, t in (results.get("tasks") or {}).items():
        for metric, value in (t.get("metrics") or {}).items():
            shown = "null" if value is None else f"{value:.4f}"
            rows.append((name, metric, shown, str(t.get("n_samples")), str(t.get("n_errors"))))
        if t.get("submission_file"):
            rows.append(
                (name, "submission", t["submission_file"], str(t.get("n_samples")), str(t.get("n_errors")))
            )
    header = ("task", "metric", "value", "n", "errors")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    for name, t in (results.get("tasks") or {}).items():
        n, n_err = t.get("n_samples") or 0, t.get("n_errors") or 0
        if n_err:
            kinds = ", ".join(f"{v} {k}" for k, v in sorted((t.get("errors_by_type") or {}).items()))
            print(
                f"ERRORS: {name}: {n_err} of {n} samples ({n_err / max(n, 1):.1%}) are error records"
                + (f" ({kinds})" if kinds else "")
                + "; the metrics exclude them — see the `error` field in samples/"
                + f"{name}.jsonl",
                file=sys.stderr,
            )


def hydra_error_to_usage(exc: BaseException) -> UsageError:
    """One line for a Hydra/OmegaConf composition error (bad override syntax, missing config...)."""
    text = " ".join(str(exc).split())
    text = text.replace("Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.", "")
    m = re.search(r"Could not override '([^']+)'", text)
    if m:
        return UsageError(f"unknown config key {m.group(1)!r} (see `evalkit run --cfg job` for the config)")
    return UsageError(f"bad override: {text[:300].strip()}")


def _job_output_dir(cfg, multirun: bool) -> str | None:  # noqa: ANN001 - an OmegaConf node
    """In a ``-m`` sweep with an explicit ``output_dir``, each job gets its own sub-folder named
    after its evaluation (the default output_dir already differs per evaluation)."""
    if not multirun:
        return None
    from hydra.core.hydra_config import HydraConfig

    if not any(o.lstrip("+").startswith("output_dir=") for o in HydraConfig.get().overrides.task):
        return None
    from evalkit.api import config_to_dict
    from evalkit.runner.identity import default_output_dir

    name = default_output_dir(config_to_dict(cfg)).split("/", 1)[1].replace("/", "-")
    return f"{cfg.output_dir}/{name}"


def _hydra_job(cfg) -> None:  # the body of `evalkit run`, called by Hydra per job
    from hydra.core.hydra_config import HydraConfig

    from evalkit.api import IncompleteRunError, config_to_dict, run_from_config
    from evalkit.redact import install_log_redaction, register_config_secrets

    multirun = HydraConfig.get().mode.name == "MULTIRUN"
    data = config_to_dict(cfg)
    register_config_secrets(data)
    install_log_redaction()
    try:
        job_dir = _job_output_dir(cfg, multirun)
        if job_dir:
            data["output_dir"] = job_dir
        results = run_from_config(data)
    except EvalkitError as exc:
        if isinstance(exc, IncompleteRunError):
            _print_results(exc.results)
        if _DEBUG:
            traceback.print_exc()
        print(f"evalkit: error: {redact_text(str(exc))}", file=sys.stderr)
        if multirun:
            _SWEEP_FAILURES.append(str(exc))
            return
        raise SystemExit(exc.exit_code) from None
    if not results:  # a non-zero rank under torchrun: rank 0 prints the table
        return
    _print_results(results)
    out = (results.get("config") or {}).get("output_dir") or data.get("output_dir")
    print(f"results: {out}/results.json")


def cmd_run(args: list[str]) -> int:
    """``evalkit run``: compose with Hydra (supports -m sweeps, launchers, --cfg job) and run."""
    check_no_secrets(args)
    check_names(args)
    register_entry_point_tasks(args)
    register_output_dir_resolver()
    try:
        check_override_keys(args)
        if not any(a in ("-m", "--multirun") for a in args) and not any(a.startswith("--") for a in args):
            precheck_values(args)
    except EvalkitError:
        raise
    except Exception as exc:  # Hydra/OmegaConf composition errors: one line
        raise hydra_error_to_usage(exc) from None
    import hydra

    main = hydra.main(config_path="pkg://evalkit.configs", config_name="config", version_base=None)(
        _hydra_job
    )
    saved = sys.argv
    saved_env = os.environ.get("HYDRA_FULL_ERROR")
    sys.argv = ["evalkit", *args]
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra's errors reach us, and become one line
    try:
        main()
    except (SystemExit, KeyboardInterrupt, EvalkitError):
        raise
    except Exception as exc:
        if _DEBUG:
            traceback.print_exc()
        raise hydra_error_to_usage(exc) from None
    finally:
        sys.argv = saved
        if saved_env is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved_env
    if _SWEEP_FAILURES:
        print(
            f"evalkit: error: {len(_SWEEP_FAILURES)} job(s) of the sweep failed (see above)", file=sys.stderr
        )
        return 1
    return 0


def cmd_list(args: list[str]) -> int:
    """``evalkit list``: tasks and models, one line each with a short description."""
    from evalkit.tasks.registry import AREAS, list_models, list_tasks

    tasks, models = list_tasks(), list_models()
    width = max(len(e.name) for e in [*tasks, *models]) + 2
    print("tasks:")
    order = [*AREAS, ""]
    for area in order + sorted({e.area for e in tasks} - set(order)):
        group = [e for e in tasks if e.area == area]
        if not group:
            continue
        print(f"  [{AREAS.get(area, area or 'other')}]")
        for e in group:
            print(f"    {e.name.ljust(width)}{e.description}")
    print("models:")
    for e in models:
        print(f"  {e.name.ljust(width)}{e.description}")
    return 0


def cmd_score(args: list[str]) -> int:
    """``evalkit score task=<name> samples=<file> [format=evalkit|lmms_eval|vlmevalkit] [overrides]``."""
    from evalkit.api import IncompleteRunError
    from evalkit.runner.rescore import rescore

    try:
        results = rescore(args)
    except IncompleteRunError as exc:
        _print_results(exc.results)
        raise
    _print_results(results)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``evalkit`` console script; returns the exit code."""
    global _DEBUG
    args = list(sys.argv[1:] if argv is None else argv)
    _DEBUG = _debug_enabled(args)
    args = [a for a in args if a != "--debug"]
    if not args or args[0] in ("-h", "--help", "help"):
        print("usage:\n" + USAGE)
        return 0
    if args[0] in ("--version", "-V"):
        args[0] = "version"
    cmd, rest = args[0], args[1:]
    if cmd == "run" and any(a in ("-h", "--help") for a in rest):
        print(RUN_HELP, end="")
        return 0
    from evalkit.runner import results as _results

    _results.COMMAND[:] = [redact_text(a) for a in ["evalkit", *args]]
    try:
        if cmd == "run":
            return cmd_run(rest)
        if cmd == "list":
            return cmd_list(rest)
        if cmd == "score":
            return cmd_score(rest)
        if cmd == "report":
            from evalkit.report.cli import report_main

            return report_main(rest)
        if cmd == "gate":
            from evalkit.report.cli import gate_main

            return gate_main(rest)
        if cmd == "judge":
            from evalkit.judge.cli import judge_main

            return judge_main(rest)
        if cmd in ("version", "--version"):
            import evalkit

            print(f"evalkit {evalkit.__version__}")
            return 0
        raise UsageError(f"unknown command {cmd!r}; commands: run, list, score, report, gate, judge, version")
    except EvalkitError as exc:
        if _DEBUG:
            traceback.print_exc()
        print(f"evalkit: error: {redact_text(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `evalkit list | head`: the reader went away
        try:
            sys.stdout.close()
        except OSError:
            pass
        return 0
    except KeyboardInterrupt:
        print(
            "evalkit: interrupted; finished samples are saved — rerun the same command to resume",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

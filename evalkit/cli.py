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
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from evalkit.errors import EvalkitError, Terminated, UsageError, as_evalkit_error
from evalkit.overrides import (  # noqa: F401 - the override checks live below the commands
    _group_choice,
    _key_overrides,
    base_config,
    check_names,
    check_no_secrets,
    check_output_dir_writable,
    check_override_keys,
    config_to_dict,
    hydra_error_to_usage,
    precheck_values,
    register_entry_point_tasks,
    register_output_dir_resolver,
)
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
#: the keys the current `evalkit run -m` sweeps over (set by cmd_run)
_SWEPT: set[str] = set()


def _debug_enabled(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("EVALKIT_DEBUG", "") not in ("", "0", "false")


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


def _swept_keys(args: Sequence[str]) -> set[str]:
    """The keys a ``-m`` command line sweeps over (``k=a,b``, ``k=range(...)``, ``k=choice(...)``)."""
    out = set()
    for a in args:
        if a.startswith("-") or "=" not in a:
            continue
        key, value = a.split("=", 1)
        depth, quoted, comma = 0, None, False
        for ch in value:
            if quoted:
                quoted = None if ch == quoted else quoted
            elif ch in "'\"":
                quoted = ch
            elif ch in "[{(":
                depth += 1
            elif ch in "]})":
                depth -= 1
            elif ch == "," and depth == 0:
                comma = True
        if comma or value.startswith(("range(", "choice(", "glob(", "interval(")):
            out.add(key.lstrip("+~"))
    return out


def _job_output_dir(cfg, multirun: bool) -> str | None:  # noqa: ANN001 - an OmegaConf node
    """In a ``-m`` sweep with an explicit ``output_dir`` over anything but the task, each job gets its
    own sub-folder named after its evaluation (the default output_dir already differs per
    evaluation). A sweep over tasks alone keeps one folder: its tasks share one results table."""
    if not multirun or _SWEPT <= {"task"}:  # (in a launcher's worker process _SWEPT is empty)
        return None
    from hydra.core.hydra_config import HydraConfig

    given = [o for o in HydraConfig.get().overrides.task if o.lstrip("+").startswith("output_dir=")]
    if not given or "${" in given[0] or "$\\{" in given[0]:  # templated: already differs per job
        return None
    from evalkit.runner.identity import default_output_dir

    name = default_output_dir(config_to_dict(cfg)).split("/", 1)[1].replace("/", "-")
    return f"{cfg.output_dir}/{name}"


def _hydra_job(cfg) -> None:  # the body of `evalkit run`, called by Hydra per job
    from hydra.core.hydra_config import HydraConfig

    from evalkit.pipeline import IncompleteRunError, run_from_config
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
    except Exception as caught:  # noqa: BLE001 - every failure of a run becomes one line
        exc = as_evalkit_error(caught)
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
        if not any(a in ("-m", "--multirun") for a in args) and not any(a.startswith("--") for a in args):
            try:
                composed = precheck_values(args)
            except EvalkitError:
                check_override_keys(args)  # a misspelt key explains a bad value best
                raise
            except Exception:
                check_override_keys(args)  # a misspelt key: the line naming the closest valid key
                raise
            check_override_keys(args, composed=composed)
        else:
            check_override_keys(args)
    except EvalkitError:
        raise
    except Exception as exc:  # Hydra/OmegaConf composition errors: one line
        raise hydra_error_to_usage(exc) from None
    if not any(a.startswith("--") for a in args):  # not a config view (--cfg, --info, --help)
        from evalkit import warmup

        warmup.start_for_args(args)  # the backend's libraries load while Hydra composes the job
    import hydra

    _SWEPT.clear()
    _SWEEP_FAILURES.clear()  # main() may be called more than once in a process
    _SWEPT.update(_swept_keys(args))
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
    if args:
        raise UsageError(f"evalkit list takes no arguments (got {' '.join(args)!r}); run: evalkit list")
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
    from evalkit.pipeline import IncompleteRunError
    from evalkit.runner.rescore import rescore

    try:
        results = rescore(args)
    except IncompleteRunError as exc:
        _print_results(exc.results)
        raise
    _print_results(results)
    return 0


def _command_usage(cmd: str) -> str | None:
    """The one-line usage ``evalkit <cmd> --help`` prints; ``None`` for the commands with a help of
    their own (``run``; ``report`` and ``gate`` through argparse) and for unknown commands."""
    if cmd == "score":
        from evalkit.runner.rescore import SCORE_USAGE

        return SCORE_USAGE
    if cmd == "judge":
        from evalkit.judge.cli import USAGE

        return USAGE
    return {
        "list": "usage: evalkit list    (tasks and models, one line each; no arguments)",
        "version": "usage: evalkit version    (the installed evalkit's version; no arguments)",
    }.get(cmd)


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
    if any(a in ("-h", "--help") for a in rest) and (usage := _command_usage(cmd)) is not None:
        print(usage)
        return 0
    from evalkit.runner import results as _results

    _results.COMMAND[:] = [redact_text(a) for a in ["evalkit", *args]]
    restore_sigterm = _raise_on_sigterm() if cmd in ("run", "score", "judge") else None
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
            if rest:
                raise UsageError(f"evalkit version takes no arguments (got {' '.join(rest)!r})")
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
    except KeyboardInterrupt as exc:
        how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        print(
            f"evalkit: {how}; finished samples are saved — rerun the same command to resume"
            if cmd == "run"
            else f"evalkit: {how}",
            file=sys.stderr,
        )
        return 128 + signal.SIGTERM if isinstance(exc, Terminated) else 130
    except Exception as caught:  # noqa: BLE001 - not foreseen (a bug, an I/O error): one line too
        if _DEBUG:
            traceback.print_exc()
        # run, score and judge keep what they finished (samples, judgments): a rerun picks it up
        exc = as_evalkit_error(caught, resumable=cmd in ("run", "score", "judge"))
        print(f"evalkit: error: {redact_text(str(exc))}", file=sys.stderr)
        return exc.exit_code
    finally:
        if restore_sigterm is not None:
            restore_sigterm()


def _raise_on_sigterm() -> Callable[[], None] | None:
    """Make SIGTERM raise :class:`~evalkit.errors.Terminated` in the main thread for the command's
    duration (only where nothing else handles SIGTERM: a host program's handler is left alone);
    returns what restores the previous handler."""
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None

    def handler(signum: int, frame: Any) -> None:  # noqa: ARG001
        raise Terminated()

    signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL)


def entry() -> None:
    """The ``evalkit`` console script: :func:`main`, then exit with its code.

    A run that failed while its weights were still loading in the background (say, a dataset path
    that does not exist, found while the tiny model trains) has said what went wrong; that load
    cannot be interrupted, and interpreter shutdown under a running torch thread aborts the
    process (``terminate called``, exit 134). The process then ends at once, with the run's code."""
    try:
        code = main()
    except SystemExit as exc:  # a failed `run` job leaves Hydra with SystemExit(<exit code>)
        if exc.code is not None and not isinstance(exc.code, int):
            raise
        code = exc.code or 0
    runner = sys.modules.get("evalkit.runner.runner")
    if runner is not None and runner.BackgroundLoad.any_running():
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()

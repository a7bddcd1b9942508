"""The command line: light start-up, one clear error line, no traceback walls."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import run_cli


def test_list_shows_tasks_and_models_without_heavy_imports():
    code = (
        "import sys; from evalkit.cli import main; rc = main(['list']);"
        "heavy = [m for m in ('torch', 'transformers', 'datasets', 'pandas', 'evalkit.plugins.docvqa') if m in sys.modules];"
        "print('HEAVY', heavy); sys.exit(rc)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout
    lines = out.stdout.splitlines()
    assert any(line.split()[:1] == ["docvqa"] for line in lines)
    assert any(line.split()[:1] == ["docvqa_mini"] for line in lines)
    for model in ("hf", "tiny", "qwen2-vl-2b", "qwen2-vl-7b", "qwen2-vl-72b"):
        assert any(line.split()[:1] == [model] for line in lines), model
    # every entry has a description
    entries = [line for line in lines if line.startswith("  ")]
    assert all(len(line.split()) > 1 for line in entries)


def test_list_refuses_arguments_it_does_not_take():
    from tests.conftest import run_cli_here

    proc = run_cli_here("list", "--bogus")
    assert proc.returncode == 2 and proc.stdout == ""
    assert (
        proc.stderr.strip()
        == "evalkit: error: evalkit list takes no arguments (got '--bogus'); run: evalkit list"
    )
    helped = run_cli_here("list", "--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage: evalkit list")


def test_help_of_each_command_is_its_usage_and_exit_0():
    from tests.conftest import run_cli_here

    for cmd, head in [("score", "usage: evalkit score <run folder>"), ("judge", "usage: evalkit judge task=<name>"),
                      ("version", "usage: evalkit version"), ("report", "usage: evalkit report"),
                      ("gate", "usage: evalkit gate")]:  # fmt: skip
        proc = run_cli_here(cmd, "--help")
        assert proc.returncode == 0 and proc.stdout.startswith(head), (cmd, proc.stdout, proc.stderr)
    wrong = run_cli_here("version", "--bogus")
    assert wrong.returncode == 2
    assert wrong.stderr.strip() == "evalkit: error: evalkit version takes no arguments (got '--bogus')"
    missing = run_cli_here("score")  # a missing argument is still an error (exit 2), with the usage
    assert missing.returncode == 2 and "usage: evalkit score" in missing.stderr


def test_a_comma_list_without_multirun_says_how_to_sweep(tmp_path):
    from tests.conftest import run_cli_here

    proc = run_cli_here("run", "task=docvqa_mini,textvqa", "model=tiny", f"output_dir={tmp_path / 'o'}")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "evalkit: error: task=docvqa_mini,textvqa: a comma-separated value is a sweep; run it with "
        "`evalkit run -m ...` (one job per value), or quote it as task='...' for a literal string"
    )
    assert not (tmp_path / "o").exists()


def test_unknown_task_is_one_clear_line():
    out = run_cli("run", "task=nosuchtask", "model=tiny")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    err = out.stderr.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("evalkit: error: unknown task 'nosuchtask'") and "docvqa" in err[0]


def test_unknown_model_is_one_clear_line():
    out = run_cli("run", "task=docvqa_mini", "model=gpt-17")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert "unknown model 'gpt-17'" in out.stderr and "qwen2-vl-7b" in out.stderr


def test_missing_dataset_path_is_one_clear_line(tmp_path):
    # a machine where the tiny model is not built yet: the missing dataset is said at once, with
    # the usage exit code, before the minute-long build and training of the model
    models = tmp_path / "models"
    out = run_cli(
        "run", "task=docvqa", "model=tiny", "task.dataset.path=/no/such/folder", f"output_dir={tmp_path / 'o'}",
        env={"EVALKIT_MODEL_CACHE": str(models)},
    )  # fmt: skip
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Traceback" not in out.stderr and "terminate" not in out.stderr
    assert "evalkit: error: dataset path /no/such/folder does not exist" in out.stderr
    assert "building the tiny test model" not in out.stderr and not models.exists()


def test_debug_flag_shows_traceback(tmp_path):
    out = run_cli(
        "run",
        "task=docvqa",
        "model=tiny",
        "task.dataset.path=/no/such/folder",
        f"output_dir={tmp_path}",
        "--debug",
    )
    assert out.returncode != 0
    assert "Traceback" in out.stderr


def test_unknown_command():
    out = run_cli("frobnicate")
    assert out.returncode == 2
    assert "unknown command 'frobnicate'" in out.stderr


_SLOW_LOAD = """
import sys, time
import torch
from evalkit import cli
from evalkit.models.hf import HFModel

real_load = HFModel.load

def slow_load(self):  # torch work in the load thread for 60 s, then the real load
    a = torch.randn(256, 256, requires_grad=True)
    t = time.time()
    while time.time() - t < 60:
        (a @ a).sum().backward()
    real_load(self)

HFModel.load = slow_load
sys.argv = ["evalkit", *sys.argv[1:]]
cli.entry()
"""


def test_a_failure_during_the_background_load_exits_with_its_code(tmp_path, tiny_model_dir):
    """The console script ends at once with the run's exit code when the run failed while its
    weights were still loading: no wait for the load, and no abort (exit 134, ``terminate called``)
    from interpreter shutdown under the running torch thread."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", _SLOW_LOAD, "run", "task=docvqa", "model=hf", f"model.pretrained={tiny_model_dir}",
         "task.dataset.path=/no/such/folder", "runner.cache=false", f"output_dir={tmp_path / 'o'}"],
        capture_output=True, text=True, timeout=50,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "terminate" not in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("evalkit: error: dataset path /no/such/folder")


_UNFORESEEN = """
import errno, sys
import evalkit.pipeline, evalkit.cli
kind = sys.argv[1]
def boom(*args, **kwargs):
    raise {"key": KeyError("image"), "eio": OSError(errno.EIO, "Input/output error", "/mnt/out/x")}[kind]
evalkit.pipeline.run_from_config = boom  # an error evalkit did not foresee, inside a run
evalkit.cli.cmd_score = boom  # and inside another command
sys.argv = ["evalkit", *sys.argv[2:]]
evalkit.cli.entry()
"""


def test_an_unforeseen_error_is_one_line_not_a_bad_override(tmp_path):
    """An exception no code path turned into an EvalkitError (a bug, an I/O error of the OS) is
    still one line and exit 1 — not a traceback, and not taken for a bad override (exit 2)."""
    for kind, line in [
        ("key", "evalkit: error: internal error: KeyError: 'image' — rerun with --debug"),
        ("eio", "evalkit: error: Input/output error on /mnt/out/x (errno 5)"),
    ]:
        for cmd in (["run", "task=docvqa_mini", "model=tiny", f"output_dir={tmp_path / kind}"],
                    ["score", str(tmp_path / kind)]):  # fmt: skip
            out = subprocess.run([sys.executable, "-c", _UNFORESEEN, kind, *cmd], capture_output=True,
                                 text=True, timeout=300)  # fmt: skip
            assert out.returncode == 1, (cmd, out.stderr[-800:])
            assert line in out.stderr and "finished samples are kept" in out.stderr, out.stderr[-800:]
            assert "Traceback" not in out.stderr and "bad override" not in out.stderr
            assert "Error executing job" not in out.stderr
    out = subprocess.run([sys.executable, "-c", _UNFORESEEN, "key", "score", str(tmp_path), "--debug"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 1 and "Traceback" in out.stderr and "KeyError: 'image'" in out.stderr

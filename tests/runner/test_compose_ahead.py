"""The Python API composes the config in a forked child while the warm-up imports run
(``evalkit.overrides.ComposeAhead``, issue 18 start-up). The child must give exactly the config an
in-process composition gives, and every failure must be the in-process one: same error, same line.

The fork only happens in a process with a single thread and nothing imported yet, which the test
process is not: each case runs in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork is Linux-only")


def run_script(body: str, tmp_path: Path, **env: str) -> dict:
    """Run ``body`` in a fresh interpreter; it prints one JSON line, returned."""
    script = tmp_path / "case.py"
    script.write_text(textwrap.dedent(body))
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "EVALKIT_CACHE_DIR": str(tmp_path / "cache"), **env},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


COMPARE = """
import json, sys
from evalkit.errors import UsageError
from evalkit.overrides import compose, start_compose

def outcome(fn):
    try:
        return {"config": fn()}
    except UsageError as exc:
        return {"error": str(exc)}

cases = [
    ["limit=3", "output_dir=/tmp/x", "task.prompt='{question} Answer:'", "model.max_pixels=200704"],
    [],  # the default output_dir (a resolver, hashed from the config)
    ["limit=-2"],  # a bad value
    ["limt=2"],  # a misspelt key
    ["runner.workers=two"],  # a wrong type
]
out = {"forked": [], "ahead": [], "here": [], "hydra_in_parent": None}
for i, overrides in enumerate(cases):
    pending = start_compose("docvqa_mini", "tiny", overrides)
    out["forked"].append(pending.forked)
    out["ahead"].append(outcome(pending.result))
    if i == 0:
        # nothing of Hydra was imported here: the child composed
        out["hydra_in_parent"] = "hydra" in sys.modules
out["here"] = [outcome(lambda o=o: compose("docvqa_mini", "tiny", o)) for o in cases]
print(json.dumps(out))
"""


def test_the_forked_composition_gives_the_in_process_config_and_errors(tmp_path) -> None:
    out = run_script(COMPARE, tmp_path)
    assert out["forked"] == [True] * 5
    assert out["hydra_in_parent"] is False
    assert out["ahead"] == out["here"]
    assert out["ahead"][0]["config"]["limit"] == 3
    assert out["ahead"][0]["config"]["task"]["prompt"] == "{question} Answer:"
    assert out["ahead"][1]["config"]["output_dir"].startswith("outputs/docvqa_mini/")
    assert "limit" in out["ahead"][2]["error"] and "'limit'" in out["ahead"][3]["error"]
    assert "workers" in out["ahead"][4]["error"]


def test_no_fork_when_turned_off_or_when_it_could_overlap_nothing(tmp_path) -> None:
    out = run_script(
        """
        import json, threading
        from evalkit.overrides import start_compose
        off = start_compose("docvqa_mini", "tiny", ["limit=1"])
        off_forked = off.forked
        off.result()
        import os
        os.environ["EVALKIT_COMPOSE_FORK"] = "1"
        stop = threading.Event()
        t = threading.Thread(target=stop.wait)
        t.start()  # a second thread: forking now could copy a lock another thread holds
        busy = start_compose("docvqa_mini", "tiny", ["limit=1"])
        stop.set(); t.join()
        import datasets, transformers  # a warm process: nothing left to overlap
        warm = start_compose("docvqa_mini", "tiny", ["limit=1"])
        print(json.dumps({"off": off_forked, "busy": busy.forked, "warm": warm.forked,
                          "limit": warm.result()["limit"]}))
        """,
        tmp_path,
        EVALKIT_COMPOSE_FORK="0",
    )
    assert out == {"off": False, "busy": False, "warm": False, "limit": 1}


def test_a_child_that_dies_is_replaced_by_the_in_process_call(tmp_path) -> None:
    out = run_script(
        """
        import json, os
        from evalkit.overrides import ComposeAhead
        parent = os.getpid()

        def compose_or_die(value):
            if os.getpid() != parent:
                os._exit(3)  # killed before it wrote anything
            return {"composed_in": "parent", "value": value}

        def compose_or_garble(value):
            if os.getpid() != parent:
                os.write(1, b"")
                raise MemoryError  # reported to the parent as a failure
            return {"composed_in": "parent", "value": value}

        def compose_with_an_integer_key(value):  # JSON would give the key back as "1"
            return {"composed_in": "parent" if os.getpid() == parent else "child", "value": value, 1: 2}

        results = []
        for fn in (compose_or_die, compose_or_garble):
            pending = ComposeAhead(fn, 7)
            pending.fork()
            results.append([pending.forked, pending.result(), pending.forked])
        pending = ComposeAhead(compose_with_an_integer_key, 7)
        pending.fork()
        exact = pending.result() == {"composed_in": "parent", "value": 7, 1: 2}
        print(json.dumps({"results": results, "integer_key_composed_here": exact}))
        """,
        tmp_path,
    )
    expected = [True, {"composed_in": "parent", "value": 7}, False]
    assert out == {"results": [expected, expected], "integer_key_composed_here": True}


def test_evaluate_composes_ahead_and_runs(tmp_path) -> None:
    """The whole API call with the fork on: the run's config is the in-process composition's."""
    out = run_script(
        f"""
        import json, sys
        from evalkit.api import compose, evaluate
        args = ["model.backend=fake", "+model.mode=echo", "limit=3", "output_dir={tmp_path / "run"}",
                "runner.progress=false"]
        results = evaluate("docvqa_mini", "tiny", args)
        hydra = "hydra" in sys.modules
        print(json.dumps({{"hydra": hydra, "n": results["tasks"]["docvqa_mini"]["n_samples"],
                          "same": results["config"] == compose("docvqa_mini", "tiny", args)}}))
        """,
        tmp_path,
    )
    assert out == {"hydra": False, "n": 3, "same": True}


def test_a_refused_evaluate_leaves_no_half_imported_library_behind(tmp_path) -> None:
    """``evaluate()`` starts the warm-up imports before the child's verdict; when the config is
    refused, the caller goes on in the same process, so those imports are complete before the
    error reaches it (a half-imported transformers breaks ``datasets``)."""
    out = run_script(
        """
        import json
        from evalkit import warmup
        from evalkit.api import evaluate
        from evalkit.errors import UsageError
        try:
            evaluate("docvqa_mini", "tiny", ["limt=3"])
            error = None
        except UsageError as exc:
            error = str(exc)
        alive = warmup._thread is not None and warmup._thread.is_alive()
        import transformers
        print(json.dumps({"error": error, "alive": alive, "complete": hasattr(transformers, "PreTrainedTokenizerBase")}))
        """,
        tmp_path,
    )
    assert "'limit'" in out["error"]
    assert out["alive"] is False and out["complete"] is True

"""Crash consistency, hostile input and secret hygiene, measured (issue 9).

1. **Kills.** A reference run of a synthetic DocVQA set (``--n`` rows, scripted ``fake`` backend,
   ``batch_size`` 4, response cache off) is compared with a run that is SIGKILLed ``--kills`` times
   at seeded random points: mid record write (``record_write_mid``: a torn line on disk), right
   after a batch was made durable (``after_batch``), a plain ``SIGKILL`` from the parent at a
   random moment, half-way through writing ``samples/<task>.jsonl`` (``merge``) and
   ``results.json`` (``results_write``); the same command is rerun after every kill. After each
   kill the directory must be consistent (every complete record in the work log equals the
   reference record of its id, no id twice, results.json/samples either absent or complete); the
   final ``tasks`` block of results.json and the samples file must equal the reference byte for
   byte (the samples file is in dataset order; sorted by id as well). ``timing``/``provenance``
   differ by nature and are not compared.
2. **Lock.** A second run started on the same ``output_dir`` while the first runs must fail at once
   with the lock message; the first must still equal the reference.
3. **Malformed inputs** (:mod:`evalkit.testing.malformed`): handled / total.
4. **Secrets.** Keys planted in ``OPENAI_API_KEY``, ``DASHSCOPE_API_KEY``, ``HF_TOKEN`` and in
   ``+model.api_key=...`` on the command line; every file under ``output_dir`` (``.hydra/`` and
   logs included) is searched for them.

    python benchmarks/reliability.py [--n 200] [--kills 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TASK = "docvqa"
PLANTED = {
    "OPENAI_API_KEY": "sk-proj-PLANTEDopenai0123456789abcdef",
    "DASHSCOPE_API_KEY": "sk-PLANTEDdashscope0123456789abcd",
    "HF_TOKEN": "hf_PLANTEDhuggingface0123456789abcd",
}
CLI_KEY = "sk-PLANTEDcommandline0123456789abcd"


def make_fixture(root: Path, n: int, seed: int = 9) -> tuple[Path, Path]:
    """A synthetic DocVQA parquet of ``n`` rows and a fake-backend answer table (2/3 right)."""
    import datasets

    from evalkit.testing.docvqa import make_docvqa_rows, write_docvqa_parquet

    datasets.utils.logging.disable_progress_bar()
    data = write_docvqa_parquet(root / "docvqa.parquet", n_rows=n, seed=seed)
    rows = make_docvqa_rows(n, seed=seed)
    answers = {
        q: (a[0] if i % 3 else "wrong")
        for i, (q, a) in enumerate(zip(rows["questionId"], rows["answers"], strict=True))
    }
    table = root / "answers.json"
    table.write_text(json.dumps(answers))
    return data, table


def run_args(
    data: Path, table: Path, out: Path, delay_s: float = 0.0, extra: tuple[str, ...] = ()
) -> list[str]:
    """The ``evalkit run`` command line of every run of the campaign."""
    return [
        sys.executable, "-m", "evalkit.cli", "run", f"task={TASK}", "model=tiny", "model.backend=fake",
        "+model.mode=table", f"+model.answers={table}", f"+model.delay_s={delay_s}",
        f"task.dataset.path={data}", "batch_size=4", "runner.cache=false", "runner.progress=false",
        f"output_dir={out}", *extra,
    ]  # fmt: skip


def _env(fault: str = "", extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("EVALKIT_FAULT", None)
    if fault:
        env["EVALKIT_FAULT"] = fault
    env.update(extra or {})
    return env


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@dataclass
class Kill:
    """One kill of the campaign and what was found on disk after it."""

    kind: str
    arg: int
    killed: bool = False
    consistent: bool = False
    torn_tail: bool = False
    records_before: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class CrashReport:
    """Outcome of :func:`crash_campaign`."""

    kills: list[Kill]
    final_rc: int
    tasks_equal: bool
    samples_bytes_equal: bool
    samples_sorted_equal: bool
    lost: int
    duplicated: int
    problems: list[str]

    @property
    def survived(self) -> int:
        """Kills that happened, left a consistent directory, and ended in an identical result."""
        final_ok = self.final_rc == 0 and self.tasks_equal and self.samples_bytes_equal and not self.lost
        final_ok = final_ok and not self.duplicated
        return sum(k.killed and k.consistent for k in self.kills) if final_ok else 0


def reference_run(root: Path, data: Path, table: Path) -> Path:
    """The uninterrupted run everything is compared with."""
    out = root / "reference"
    proc = subprocess.run(run_args(data, table, out), capture_output=True, text=True, env=_env())
    if proc.returncode != 0:
        raise RuntimeError(f"reference run failed: {proc.stderr[-2000:]}")
    return out


def _reference_records(ref: Path) -> dict[str, dict[str, Any]]:
    lines = (ref / "samples" / f"{TASK}.jsonl").read_text().splitlines()
    return {json.loads(line)["id"]: json.loads(line) for line in lines if line.strip()}


def check_state(out: Path, ref: dict[str, dict[str, Any]]) -> tuple[list[str], bool, int]:
    """Problems in ``out`` after a kill, whether the work log ends in a torn line, records kept."""
    problems: list[str] = []
    part = out / "parts" / TASK / "rank-0.jsonl"
    raw = part.read_bytes() if part.exists() else b""
    torn = bool(raw) and not raw.endswith(b"\n")
    complete = raw[: raw.rfind(b"\n") + 1] if raw else b""
    seen: set[str] = set()
    for line in complete.splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            problems.append("corrupt complete line in the work log")
            continue
        if rec["id"] in seen:
            problems.append(f"id {rec['id']} twice in the work log")
        seen.add(rec["id"])
        rec.pop("written_at", None)  # the append time differs by nature (not in samples/)
        if rec != ref.get(rec["id"]):
            problems.append(f"record {rec['id']} differs from the reference")
    for path in (out / "results.json", out / "samples" / f"{TASK}.jsonl"):
        if path.exists():
            try:
                text = path.read_text()
                if path.suffix == ".json":
                    json.loads(text)
                else:
                    [json.loads(x) for x in text.splitlines()]
            except (json.JSONDecodeError, UnicodeDecodeError):
                problems.append(f"{path.name} is half-written")
    return problems, torn, len(seen)


def _plan(rng: random.Random, n_kills: int) -> list[str]:
    mid = ["record_write_mid", "after_batch", "parent"]
    kinds = mid + [rng.choice(mid) for _ in range(max(0, n_kills - 5))]
    rng.shuffle(kinds)
    return [*kinds, "merge", "results_write"][:n_kills]


def crash_campaign(root: Path, n: int = 200, n_kills: int = 10, seed: int = 0) -> CrashReport:
    """Kill a run ``n_kills`` times at seeded random points, rerunning after each; compare."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    data, table = make_fixture(root, n)
    ref_dir = reference_run(root, data, table)
    ref = _reference_records(ref_dir)
    out = root / "killed"
    part = out / "parts" / TASK / "rank-0.jsonl"
    bs = 4
    kills: list[Kill] = []
    plan = _plan(rng, n_kills)
    for i, kind in enumerate(plan):
        done = _lines(part)
        mid_left = sum(1 for k in plan[i:] if k not in ("merge", "results_write"))
        budget = max(1, (n - done) // bs // (mid_left + 1)) if kind not in ("merge", "results_write") else 1
        arg = rng.randint(1, budget)
        kill = Kill(kind, arg, records_before=done)
        if kind == "parent":
            proc = subprocess.Popen(run_args(data, table, out, delay_s=0.01), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, env=_env())  # fmt: skip
            target = done + arg * bs
            deadline = time.time() + 120
            while proc.poll() is None and time.time() < deadline and _lines(part) < target:
                time.sleep(0.001)
            time.sleep(rng.uniform(0, 0.01))  # land anywhere inside the next batch
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            rc = proc.wait()
        else:
            proc = subprocess.Popen(run_args(data, table, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    env=_env(f"{kind}:{arg}"))  # fmt: skip
            rc = proc.wait(timeout=300)
        kill.killed = rc == -signal.SIGKILL
        kill.problems, kill.torn_tail, _ = check_state(out, ref)
        if not kill.killed:
            kill.problems.append(f"process was not killed (rc {rc})")
        kill.consistent = not kill.problems
        kills.append(kill)
    final = subprocess.run(run_args(data, table, out), capture_output=True, text=True, env=_env())
    return compare(ref_dir, out, kills, final.returncode, [final.stderr[-500:]] if final.returncode else [])


def compare(ref_dir: Path, out: Path, kills: list[Kill], rc: int, problems: list[str]) -> CrashReport:
    """Compare a (resumed) run directory with the reference run."""
    tasks_equal = samples_equal = sorted_equal = False
    lost = duplicated = 0
    if rc == 0:
        ref_res = json.loads((ref_dir / "results.json").read_text())
        res = json.loads((out / "results.json").read_text())
        tasks_equal = json.dumps(ref_res["tasks"], sort_keys=True) == json.dumps(res["tasks"], sort_keys=True)
        a = (ref_dir / "samples" / f"{TASK}.jsonl").read_bytes()
        b = (out / "samples" / f"{TASK}.jsonl").read_bytes()
        samples_equal = a == b
        sorted_equal = sorted(a.splitlines()) == sorted(b.splitlines())
        ref_ids = [json.loads(x)["id"] for x in a.splitlines()]
        ids = [json.loads(x)["id"] for x in b.splitlines()]
        log_ids = [
            json.loads(x)["id"] for x in (out / "parts" / TASK / "rank-0.jsonl").read_bytes().splitlines()
        ]
        lost = len(set(ref_ids) - set(ids)) + len(set(ref_ids) - set(log_ids))
        duplicated = (len(ids) - len(set(ids))) + (len(log_ids) - len(set(log_ids)))
        leftovers = [p.name for p in out.rglob(".*.tmp-*")]
        if leftovers:
            problems.append(f"temp files left behind: {leftovers}")
    return CrashReport(kills, rc, tasks_equal, samples_equal, sorted_equal, lost, duplicated, problems)


def _config_dumps(out: Path) -> dict[str, bytes]:
    """The saved configs of a run: evalkit's ``config.yaml`` and Hydra's ``.hydra/`` (if enabled)."""
    paths = [out / "config.yaml", *sorted((out / ".hydra").glob("*"))]
    return {str(p.relative_to(out)): p.read_bytes() for p in paths if p.is_file()}


def lock_check(root: Path, n: int = 200) -> dict[str, Any]:
    """A second run on a busy output_dir fails at once; the first one is not disturbed.

    Returns ``refused`` (rc 1, the lock message, no traceback), ``first_intact`` (the first run
    finished and equals the reference), ``hydra_intact`` (the refused run did not overwrite the
    first run's saved config), ``seconds`` (how long the refused run took) and ``message``."""
    data, table = make_fixture(root, n)
    ref_dir = reference_run(root, data, table)
    out = root / "locked"
    part = out / "parts" / TASK / "rank-0.jsonl"
    delay = max(0.05, 8.0 / max(1, n // 4))  # the first run lasts >= 8 s
    first = subprocess.Popen(run_args(data, table, out, delay_s=delay), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, env=_env())  # fmt: skip
    deadline = time.time() + 120
    while _lines(part) < 1 and first.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    dumps_before = _config_dumps(out)
    t = time.perf_counter()
    second = subprocess.run(
        run_args(data, table, out, extra=("limit=5",)), capture_output=True, text=True, env=_env()
    )
    seconds = time.perf_counter() - t
    still_running = first.poll() is None
    hydra_intact = bool(dumps_before) and _config_dumps(out) == dumps_before
    rc_first = first.wait(timeout=300)
    report = compare(ref_dir, out, [], rc_first, [])
    return {
        "refused": second.returncode == 1
        and still_running
        and "is in use by another evalkit run" in second.stderr
        and "Traceback" not in second.stderr,
        "first_intact": rc_first == 0 and report.tasks_equal and report.samples_bytes_equal,
        "hydra_intact": hydra_intact,
        "seconds": round(seconds, 1),
        "message": second.stderr.strip().splitlines()[-1] if second.stderr.strip() else "",
    }


def _scan(out: Path, streams: dict[str, str], secrets: list[str]) -> list[str]:
    texts = dict(streams)
    if out.exists():
        for path in sorted(p for p in out.rglob("*") if p.is_file()):
            texts[str(path.relative_to(out))] = path.read_bytes().decode("utf-8", "replace")
    return [f"{name}: key {s[:12]}..." for name, text in texts.items() for s in secrets if s in text]


def secrets_check(root: Path, n: int = 12) -> dict[str, Any]:
    """Plant keys in the environment and on the command line; list every place one shows up.

    Two runs: (a) keys in ``OPENAI_API_KEY``/``DASHSCOPE_API_KEY``/``HF_TOKEN`` (must succeed);
    (b) additionally ``+model.api_key=<key>`` on the command line (refused up front, or redacted).
    Every file under each ``output_dir`` (``.hydra/``, logs) and stdout/stderr are searched."""
    data, table = make_fixture(root, n)
    env = _env(extra=PLANTED)
    env_out = root / "secrets-env"
    a = subprocess.run(run_args(data, table, env_out), capture_output=True, text=True, env=env)
    cli_out = root / "secrets-cli"
    b = subprocess.run(run_args(data, table, cli_out, extra=(f"+model.api_key={CLI_KEY}",)),
                       capture_output=True, text=True, env=env)  # fmt: skip
    secrets = [*PLANTED.values(), CLI_KEY]
    leaks = _scan(env_out, {"<stdout>": a.stdout, "<stderr>": a.stderr}, secrets)
    leaks += [f"(cli run) {x}" for x in _scan(cli_out, {"<stdout>": b.stdout, "<stderr>": b.stderr}, secrets)]
    return {
        "env_run_ok": a.returncode == 0,
        "cli_key": "redacted"
        if b.returncode == 0
        else ("refused" if "api_key" in b.stderr else "run failed"),
        "cli_message": b.stderr.strip().splitlines()[-1] if b.stderr.strip() else "",
        "leaks": leaks,
    }


def main() -> None:
    """Run all four checks and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    from evalkit.testing.malformed import run_suites, summary

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["EVALKIT_CACHE_DIR"] = str(root / "cache")
        t0 = time.perf_counter()
        crash = crash_campaign(root / "crash", args.n, args.kills, args.seed)
        crash_s = time.perf_counter() - t0
        for k in crash.kills:
            state = "consistent" if k.consistent else "; ".join(k.problems)
            torn = ", torn tail left" if k.torn_tail else ""
            print(
                f"  kill {k.kind}:{k.arg} after {k.records_before} records: killed={k.killed}{torn}, {state}"
            )
        print(
            f"kills survived: {crash.survived}/{len(crash.kills)}  ({crash_s:.0f}s, n={args.n}, seed={args.seed})"
        )
        print(f"samples lost: {crash.lost}")
        print(f"samples duplicated: {crash.duplicated}")
        print(f"results.json tasks identical: {crash.tasks_equal}; samples file byte-identical: "
              f"{crash.samples_bytes_equal} (sorted by id: {crash.samples_sorted_equal})")  # fmt: skip
        for p in crash.problems:
            print(f"  problem: {p}")
        lock = lock_check(root / "lock", args.n)
        print(f"concurrent run on the same output_dir: refused at once: {lock['refused']} ({lock['seconds']}s: "
              f"{lock['message']}); first run intact: {lock['first_intact']}; "
              f"first run's saved config untouched: {lock['hydra_intact']}")  # fmt: skip
        outcomes = run_suites(root / "malformed")
        print(summary(outcomes))
        sec = secrets_check(root / "secrets")
        print(f"secrets found in outputs: {len(sec['leaks'])} (env-key run ok: {sec['env_run_ok']}; "
              f"command-line key {sec['cli_key']}: {sec['cli_message']})")  # fmt: skip
        for w in sec["leaks"]:
            print(f"  leak: {w}")


if __name__ == "__main__":
    main()

"""evalkit against lmms-eval 0.7.3 on the same model and the same DocVQA-schema pages.

lmms-eval is not a dependency of evalkit: install it in its own virtualenv (0.7.3 breaks with
filelock 4, so pin it; its ``qwen2_vl`` model imports ``decord``, which it does not require) and
pass that interpreter::

    python -m venv /tmp/lmms && /tmp/lmms/bin/pip install "lmms-eval==0.7.3" "filelock<4" decord
    python benchmarks/vs_lmms_eval.py --lmms-python /tmp/lmms/bin/python [--n 64] [--repeats 2]

Both sides run the small random Qwen2-VL of ``benchmarks/overhead.py`` on CPU at batch size 8, with
the same pixel budget and 32 new tokens, each in a fresh process, interleaved ``--repeats`` times
(minimum reported; evalkit with an empty response cache), beside the bare ``generate`` loop of
``overhead.py`` for reference (what a harness adds over it, on this machine and day, is what the
ratios differ by). lmms-eval reads the same parquet file
through a task defined next to it (its own DocVQA ``doc_to_visual``/``doc_to_text``, imported from
``lmms_eval.tasks.docvqa.utils``), with its ``qwen2_vl`` model class. Target: evalkit <= 0.5x.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import MAX_PIXELS, MIN_PIXELS, build_data, build_model, load_note, run_child  # noqa: E402

TASK_YAML = """task: docvqa_local
dataset_path: parquet
dataset_kwargs:
  data_files:
    validation: {data}
test_split: validation
output_type: generate_until
doc_to_visual: !function local_utils.docvqa_doc_to_visual
doc_to_text: !function local_utils.docvqa_doc_to_text
doc_to_target: "answers"
generation_kwargs:
  max_new_tokens: 32
  temperature: 0
  do_sample: False
metric_list:
  - metric: anls
    aggregation: mean
    higher_is_better: true
lmms_eval_specific_kwargs:
  default:
    pre_prompt: ""
    post_prompt: "\\nAnswer the question using a single word or phrase."
"""
UTILS = "from lmms_eval.tasks.docvqa.utils import docvqa_doc_to_text, docvqa_doc_to_visual  # noqa: F401\n"


def lmms_eval_run(python: str, model_dir: Path, include: Path, n: int, out: Path, env: dict) -> float:
    args = f"pretrained={model_dir},device=cpu,device_map=cpu,max_pixels={MAX_PIXELS},min_pixels={MIN_PIXELS}"
    cmd = [python, "-m", "lmms_eval", "--model", "qwen2_vl", "--model_args", args, "--tasks", "docvqa_local",
           "--include_path", str(include), "--batch_size", "8", "--limit", str(n), "--output_path", str(out)]  # fmt: skip
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t
    # lmms-eval exits 0 when it fails (a missing import, a bad task): a run counts only when its
    # results file says every sample was evaluated
    done = [json.loads(p.read_text()) for p in out.rglob("*_results.json")]
    counts = [(d.get("n-samples") or {}).get("docvqa_local", {}).get("effective") for d in done]
    if proc.returncode != 0 or counts != [n]:
        raise SystemExit(
            f"lmms-eval failed (exit {proc.returncode}, samples evaluated: {counts or 'none'}):\n"
            f"{proc.stderr[-3000:]}"
        )
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lmms-python", required=True, help="python of a venv with lmms-eval 0.7.3")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {**os.environ, "EVALKIT_CACHE_DIR": str(root / "cache"), "TOKENIZERS_PARALLELISM": "false",
               "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}  # fmt: skip
        model_dir = build_model(root, small=True)
        data = build_data(root, args.n, real_sizes=False)
        include = root / "lmms_tasks"
        include.mkdir()
        (include / "docvqa_local.yaml").write_text(TASK_YAML.format(data=data))
        (include / "local_utils.py").write_text(UTILS)
        print(
            f"n={args.n}, batch 8, small model on CPU; {args.repeats} interleaved runs, minima; {load_note()}"
        )
        lmms, evk, bare = [], [], []
        for rep in range(args.repeats):
            lmms.append(
                lmms_eval_run(args.lmms_python, model_dir, include, args.n, root / f"lmms-{rep}", env)
            )
            evk.append(run_child("evalkit", model_dir, data, 8, args.n, root / f"evk-{rep}", env)["wall_s"])
            bare.append(run_child("bare", model_dir, data, 8, args.n, root / f"bare-{rep}", env)["wall_s"])
        print(f"lmms-eval 0.7.3: {min(lmms):.2f} s   evalkit: {min(evk):.2f} s   evalkit/lmms-eval = "
              f"{min(evk) / min(lmms):.3f}   (all runs: lmms-eval {[round(x, 1) for x in lmms]}, "
              f"evalkit {[round(x, 1) for x in evk]})")  # fmt: skip
        print(f"for reference, the bare generate loop: {min(bare):.2f} s   bare/lmms-eval = "
              f"{min(bare) / min(lmms):.3f}   (all runs: {[round(x, 1) for x in bare]})")  # fmt: skip
        print(f"after: {load_note()}")


if __name__ == "__main__":
    main()

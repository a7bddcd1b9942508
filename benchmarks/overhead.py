"""evalkit against a bare ``model.generate`` loop: wall time, harness time, peak memory, start-up.

Two sides, each in its own fresh process (imports, model load and dataset load included), run
interleaved ``--repeats`` times; the minimum of each side is compared (this machine's timings move
by tens of percent from run to run: compare minima of interleaved runs, never single runs):

* **bare**: what a researcher writes by hand — load processor and model, loop over the parquet
  rows in batches, decode the image (with Pillow, as the ``datasets`` Image feature does), chat
  template, processor, ``generate``, decode.
* **evalkit**: ``evaluate("docvqa", "hf", ...)`` — the real pipelined runner (dataset, decoding,
  fingerprints, durable records, scoring, results.json), response cache empty
  (``EVALKIT_CACHE_DIR`` in a fresh temporary folder) and off.

Modes:

* default (``--n 64``): a small random Qwen2-VL (hidden 256, 4 layers), 64 synthetic DocVQA pages
  at fixture sizes, batch sizes 1 and 8. Target: evalkit/bare <= 0.9.
* ``--n 512``: the tiny random Qwen2-VL (the test fixture's size), 512 questions on pages at real
  DocVQA sizes (600-1700 x 800-2200 pixels), batch 8; also evalkit at 64 of them for the peak-RSS
  comparison. Targets: evalkit/bare <= 0.8, harness time outside the model <= 3 ms/sample, peak
  RSS at 512 within 10% of the run at 64.

Each batch size gets two evalkit rows on a machine with more than one core: evalkit as configured
(``--evalkit-arg``; by default all defaults), and with ``runner.generate_threads=<cores - 1>``, the
generating thread on one core fewer so that the pipeline has the others from the start (not the
default: the thread count can move the logits' last bits, and generation-bound runs lose by it;
docs/architecture.md). Each row's ``pipeline:`` line says what the run used and why.

Printed per row: minimum wall seconds of each side and their ratio; the **floor**, about the lowest
ratio a harness can reach that generates the same batches with the same model in one process: the
bare loop's time on the path every such harness walks (interpreter start, torch and transformers
imports, processor and model load, the ``generate`` calls) over its wall time (the rest of the bare
loop — the ``datasets`` import, opening the data, decoding and preprocessing the inputs, decoding
the outputs — is all a harness can hide behind that path, and on 2 cores generation itself keeps
both busy); evalkit's harness time per sample (``total - model - load - build - open``:
fingerprints, cache, scoring, durable records, results; everything evalkit does per sample that the
bare loop does not; opening the evaluation — mostly the dataset load, which the bare loop pays too
— is printed apart, once); the build time per sample (decoding and resizing the images: in the main
thread when the model generates on the CPU — no workers there, see docs/architecture.md — or the
time the main thread waited for the build pool); each side's time to the first finished sample
(start-up) and peak RSS. Predictions of the two sides are checked identical.

    python benchmarks/overhead.py [--n 64|512] [--repeats 2] [--batch 8]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

PROMPT = "{question}\nAnswer the question using a single word or phrase."
MAX_NEW_TOKENS = 32
MIN_PIXELS, MAX_PIXELS = 3136, 200704
REAL_SIZES = ((600, 1700), (800, 2200))  # width range, height range of DocVQA pages


# --------------------------------------------------------------------------- fixture
def build_model(root: Path, small: bool) -> Path:
    from evalkit.models.tiny import TinySpec, build_tiny_qwen2_vl

    if small:
        spec = TinySpec(
            seed=1, hidden_size=256, intermediate_size=512, num_hidden_layers=4, num_attention_heads=8,
            num_key_value_heads=4, vision_depth=2, vision_embed_dim=64, vision_num_heads=4, initializer_range=0.1,
        )  # fmt: skip
    else:
        spec = TinySpec(seed=1)
    return build_tiny_qwen2_vl(root / "model", spec)


def build_data(root: Path, n: int, real_sizes: bool) -> Path:
    """DocVQA-schema parquet; with ``real_sizes`` every page is scaled to a seeded real page size."""
    import io

    from datasets import Dataset
    from PIL import Image

    from evalkit.testing.docvqa import docvqa_features, make_docvqa_rows

    rows = make_docvqa_rows(n, seed=21)
    if real_sizes:
        rng = random.Random(5)
        scaled: dict[bytes, bytes] = {}
        for cell in rows["image"]:
            png = cell["bytes"]
            if png not in scaled:
                size = (rng.randint(*REAL_SIZES[0]), rng.randint(*REAL_SIZES[1]))
                buf = io.BytesIO()
                Image.open(io.BytesIO(png)).convert("RGB").resize(size, Image.BICUBIC).save(buf, format="PNG")
                scaled[png] = buf.getvalue()
            cell["bytes"] = scaled[png]
    path = root / "docvqa.parquet"
    Dataset.from_dict(rows, features=docvqa_features()).to_parquet(str(path))
    return path


# --------------------------------------------------------------------------- the two sides (children)
def bare_loop(model_dir: Path, data: Path, batch_size: int, limit: int) -> dict:
    """The hand-written loop; returns wall, first-sample time and predictions."""
    t0 = float(os.environ["BENCH_T0"])
    # the loop's work that is not on any harness's critical path (the datasets import, opening the
    # data, decoding and preprocessing the inputs, decoding the outputs); the rest — interpreter
    # start, torch and transformers imports, processor and model load, the generate calls — is
    # about the floor a harness generating the same batches in one process cannot go below
    aside = 0.0
    t = time.time()
    import datasets

    aside += time.time() - t
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(
        model_dir, size={"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS}
    )
    processor.tokenizer.padding_side = "left"
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32).eval()
    t = time.time()
    ds = datasets.load_dataset("parquet", data_files=str(data), split="train")
    ds = ds.cast_column("image", datasets.Image(decode=False)).select(range(min(limit, len(ds))))
    aside += time.time() - t
    predictions: list[str] = []
    first = None
    for start in range(0, len(ds), batch_size):
        t = time.time()
        rows = ds[start : start + batch_size]
        # decoded as HF datasets' Image feature does (Pillow), then RGB
        images = [Image.open(io.BytesIO(v["bytes"])).convert("RGB") for v in rows["image"]]
        texts = [
            processor.apply_chat_template(
                [
                    {
                        "role": "user",
                        "content": [{"type": "image"}, {"type": "text", "text": PROMPT.format(question=q)}],
                    }
                ],
                tokenize=False,
                add_generation_prompt=True,
            )
            for q in rows["question"]
        ]
        inputs = processor(text=texts, images=images, padding=True, return_tensors="pt")
        aside += time.time() - t
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=MAX_NEW_TOKENS, do_sample=False, temperature=None,
                                 top_p=None, top_k=None, pad_token_id=processor.tokenizer.pad_token_id)  # fmt: skip
        t = time.time()
        new = out[:, inputs["input_ids"].shape[1] :]
        decoded = processor.batch_decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        predictions += [p.strip() for p in decoded]
        aside += time.time() - t
        first = first if first is not None else time.time() - t0
    wall = time.time() - t0
    return {"wall_s": wall, "first_s": first, "floor_s": wall - aside, "predictions": predictions}


def evalkit_side(
    model_dir: Path, data: Path, batch_size: int, limit: int, out: Path, extra: list[str]
) -> dict:
    """The real runner through the Python API, response cache empty and off."""
    t0 = float(os.environ["BENCH_T0"])
    from evalkit.runner import store

    first: list[float] = []
    append = store.RecordStore.append

    def timed_append(self, records):  # noqa: ANN001, ANN202 - records the first durable sample
        append(self, records)
        if not first and records:
            first.append(time.time() - t0)

    store.RecordStore.append = timed_append  # type: ignore[method-assign]
    from evalkit.api import evaluate

    results = evaluate(
        "docvqa",
        "hf",
        [
            f"model.pretrained={model_dir}", f"task.dataset.path={data}", f"batch_size={batch_size}",
            f"limit={limit}", f"output_dir={out}", "runner.cache=false", "runner.progress=false",
            f"model.min_pixels={MIN_PIXELS}", f"model.max_pixels={MAX_PIXELS}", "model.dtype=float32",
            "model.device=cpu", *extra,
        ],
    )  # fmt: skip
    wall = time.time() - t0
    timing = results["timing"]
    rows = [json.loads(line) for line in (out / "samples" / "docvqa.jsonl").read_text().splitlines()]
    by_id = {r["id"]: r["prediction"] for r in rows}
    import datasets

    ids = datasets.load_dataset("parquet", data_files=str(data), split="train")["questionId"][:limit]
    wait = float(timing.get("build_wait_s") or 0.0)  # main thread idle: the build pool is behind
    # building the requests in the main thread (a model on the CPU: no workers) is decoding and
    # resizing the images, which the bare loop does too: reported apart from the harness time
    build = float(timing.get("build_s") or 0.0)
    # opening the evaluation: mostly loading the dataset (the bare loop does too), plus the lock,
    # the identity check and run.json; reported apart (a fixed cost, not per sample)
    opened = float(timing.get("open_s") or 0.0)
    harness = (timing["total_s"] - timing["model_s"] - timing["load_s"] - wait - build - opened) / max(
        1, len(rows)
    )
    return {"wall_s": wall, "first_s": first[0] if first else None, "harness_ms": harness * 1000,
            "wait_ms": (wait + build) * 1000 / max(1, len(rows)), "pipeline": timing.get("pipeline"), "open_s": opened,
            "predictions": [by_id[i] for i in ids]}  # fmt: skip


def child_main(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model_dir, data = Path(args.model_dir), Path(args.data)
    if args.child == "bare":
        out = bare_loop(model_dir, data, args.batch, args.limit)
    else:
        out = evalkit_side(model_dir, data, args.batch, args.limit, Path(args.out), args.evalkit_arg)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("BENCH " + json.dumps(out))


def run_child(
    side: str,
    model_dir: Path,
    data: Path,
    batch: int,
    limit: int,
    out: Path,
    env: dict,
    extra: Sequence[str] = (),
) -> dict:
    cmd = [sys.executable, __file__, "--child", side, "--model-dir", str(model_dir), "--data", str(data),
           "--batch", str(batch), "--limit", str(limit), "--out", str(out)]  # fmt: skip
    cmd += [f"--evalkit-arg={a}" for a in extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**env, "BENCH_T0": repr(time.time())})
    if proc.returncode != 0:
        raise SystemExit(f"{side} run failed:\n{proc.stderr[-3000:]}")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("BENCH "))
    return json.loads(line[len("BENCH ") :])


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=64, help="questions (512: tiny model, real page sizes)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved runs per side (minimum reported)")
    parser.add_argument(
        "--batch", type=int, nargs="*", default=None, help="batch sizes (default: 1 8; 8 at --n 512)"
    )
    parser.add_argument(
        "--evalkit-arg", action="append", default=[],
        help="extra override for the evalkit side (e.g. runner.workers=2 to force the build pool on)",
    )  # fmt: skip
    parser.add_argument("--child", choices=("bare", "evalkit"), help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.batch = args.batch[0]
        child_main(args)
        return
    large = args.n >= 512
    batches = args.batch or ([8] if large else [1, 8])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        env = {**os.environ, "EVALKIT_CACHE_DIR": str(root / "cache"), "TOKENIZERS_PARALLELISM": "false"}
        model_dir = build_model(root, small=not large)
        data = build_data(root, args.n, real_sizes=large)
        kind = "tiny model, real page sizes" if large else "small model, fixture pages"
        print(
            f"n={args.n} ({kind}); {args.repeats} interleaved runs per side, minima compared; {load_note()}"
        )
        print(f"{'batch':>5} {'bare s':>8} {'evalkit s':>10} {'ratio':>6} {'floor':>6} {'harness ms/sample':>18} {'build ms/sample':>15} "
              f"{'first sample bare/evalkit s':>28} {'peak RSS bare/evalkit MB':>25}")  # fmt: skip
        last = None
        # evalkit as configured, and (CPU) with the generating thread on one core fewer, which
        # leaves a core to the pipeline from the start (runner.generate_threads; docs/architecture.md)
        variants = [("", list(args.evalkit_arg))]
        fewer = (os.cpu_count() or 1) - 1
        if not args.evalkit_arg and fewer >= 1:
            variants.append((f"generate_threads={fewer}", [f"runner.generate_threads={fewer}"]))
        for bs in batches:
            bare: list[dict] = []
            evk: dict[str, list[dict]] = {name: [] for name, _ in variants}
            for rep in range(args.repeats):
                bare.append(run_child("bare", model_dir, data, bs, args.n, root / f"b{bs}-{rep}", env, []))
                for v, (name, extra) in enumerate(variants):
                    evk[name].append(
                        run_child(
                            "evalkit", model_dir, data, bs, args.n, root / f"e{bs}-{rep}-{v}", env, extra
                        )
                    )
                    assert bare[-1]["predictions"] == evk[name][-1]["predictions"], (
                        f"batch {bs} {name}: predictions differ"
                    )
            b = min(x["wall_s"] for x in bare)
            for name, runs in evk.items():
                e = min(x["wall_s"] for x in runs)
                # no first-sample time from ranks (runner.nproc > 1): their records are written elsewhere
                firsts = [x["first_s"] for x in runs if x["first_s"] is not None]
                first = f"{min(x['first_s'] for x in bare):.2f}/" + (
                    f"{min(firsts):.2f}" if firsts else "n/a"
                )
                rss = f"{max(x['peak_rss_mb'] for x in bare):.0f}/{max(x['peak_rss_mb'] for x in runs):.0f}"
                # about the lowest ratio a harness generating in one process reaches
                floor = min(x["floor_s"] for x in bare) / b
                harness = min(x["harness_ms"] for x in runs)
                wait = min(x["wait_ms"] for x in runs)
                label = f"{bs}" + (f" {name}" if name else "")
                print(
                    f"{label:>5} {b:>8.2f} {e:>10.2f} {e / b:>6.3f} {floor:>6.3f} {harness:>18.2f} {wait:>15.2f} "
                    f"{first:>28} {rss:>25}"
                )
                print(f"      pipeline: {runs[-1].get('pipeline')}")
            last = (bs, max(x["peak_rss_mb"] for x in evk[""]))
            evk_default = evk[""]
        print(f"overrides: {args.evalkit_arg or 'none'}; opening the evaluation (dataset load, identity, "
              f"run.json) {evk_default[-1].get('open_s', 0):.2f} s")  # fmt: skip
        if large and last is not None:
            # the same pipeline as the large run used (on the CPU it is measured on the second
            # window, which a 64-sample run never reaches): memory is compared at equal settings
            used = evk_default[-1].get("pipeline") or {}
            same = [
                f"runner.workers={used.get('workers', 0)}",
                f"runner.prefetch_batches={used.get('prefetch_batches', 0)}",
            ]
            small = run_child(
                "evalkit", model_dir, data, last[0], 64, root / "e64", env, [*args.evalkit_arg, *same]
            )
            print(f"peak RSS evalkit ({' '.join(same)}): {args.n} samples {last[1]:.0f} MB vs 64 samples "
                  f"{small['peak_rss_mb']:.0f} MB -> {last[1] / small['peak_rss_mb']:.3f}")  # fmt: skip
        print(f"after: {load_note()}")


if __name__ == "__main__":
    main()

"""evalkit's hf backend against a bare ``generate`` loop on one GPU, with a Qwen2-VL-7B-sized model.

The model is Qwen2-VL-7B's architecture (28 layers, hidden 3584, vision tower 32 x 1280) with random
bf16 weights built from the config directly on the GPU: nothing is downloaded. The tokenizer and
processor are the bundled tiny model's (its token ids are valid in the 7B vocabulary). Pages:
synthetic DocVQA questions on pages at real DocVQA sizes (600-1700 x 800-2200 pixels), resized by
the processor to ``--max-pixels`` (default 1280 x 28 x 28, VLMEvalKit's budget for Qwen2-VL).

For each batch size (1, 8, 16) both sides run on the same questions, interleaved ``--repeats``
times (minimum reported): the bare loop (decode, template, processor, generate, decode — one
after another, the GPU idle while the CPU preprocesses) and evalkit's runner with the hf backend
(requests built by a thread pool ahead, the next batch's processor call overlapping the current
batch's generation). Printed: samples/s of each side, their ratio (target: evalkit >= 1.2x the bare
loop) and the GPU busy fraction (NVML utilisation sampled every 50 ms) during each side. Random
weights never emit an end token, so every answer is ``max_new_tokens`` long on both sides.

Batch 1 runs on the first ``--n-batch1`` questions only (a 7B decodes one sample at a time slowly);
the whole check is sized to stay under 8 minutes on an H100/H200.

    python benchmarks/gpu.py [--n 256] [--n-batch1 32] [--batch 1 8 16] [--repeats 1]
    python benchmarks/gpu.py --smoke          # CPU, tiny dims: checks the script itself

On a lent GPU machine (the ``device`` tool; its image lacks datasets, Hydra, rapidfuzz and
imagecodecs): ``bash benchmarks/gpu_wheels.sh`` fetches them and evalkit's own wheel into
``.whl/`` and prints the one device command to run (``carry=[".whl"]``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from overhead import MAX_NEW_TOKENS, PROMPT, build_data  # noqa: E402

SEVEN_B_TEXT = {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
                "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064}  # fmt: skip
SEVEN_B_VISION = {"depth": 32, "embed_dim": 1280, "num_heads": 16, "mlp_ratio": 4}
MIN_PIXELS = 3136


class BusySampler:
    """GPU utilisation sampled in a thread (NVML through torch, else nvidia-smi); mean fraction."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.samples, self._stop = enabled, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read(self) -> float | None:
        import torch

        try:
            return float(torch.cuda.utilization()) / 100
        except Exception:  # noqa: BLE001 - no pynvml: ask nvidia-smi
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i", "0"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            return float(out.stdout.strip().splitlines()[0]) / 100 if out.returncode == 0 else None

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            value = self._read()
            if value is not None:
                self.samples.append(value)

    def __enter__(self) -> BusySampler:
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.enabled:
            self._thread.join()

    @property
    def busy(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None


def build_models(root: Path, device: str, smoke: bool):  # noqa: ANN201 - (processor dir, big model)
    """The tiny model's folder (tokenizer, processor) and a random model of the 7B's shape."""
    import torch
    from transformers import AutoConfig, Qwen2VLForConditionalGeneration

    from evalkit.models.tiny import TinySpec, build_tiny_qwen2_vl

    folder = build_tiny_qwen2_vl(root / "tiny", TinySpec(seed=1))
    config = AutoConfig.from_pretrained(folder)
    if not smoke:
        for key, value in SEVEN_B_TEXT.items():
            setattr(config.text_config, key, value)
        config.text_config.rope_parameters = {
            **config.text_config.rope_parameters,
            "mrope_section": [16, 24, 24],
        }
        for key, value in SEVEN_B_VISION.items():
            setattr(config.vision_config, key, value)
        config.vision_config.hidden_size = SEVEN_B_TEXT["hidden_size"]
        config.text_config.initializer_range = config.vision_config.initializer_range = 0.02
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = Qwen2VLForConditionalGeneration(config).eval()
    finally:
        torch.set_default_dtype(previous)
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    return folder, model


def bare_loop(folder: Path, model, data: Path, n: int, batch: int, max_pixels: int, device: str) -> list[str]:  # noqa: ANN001
    """The hand-written loop: every step one after another."""
    import datasets
    import torch
    from transformers import AutoProcessor

    from evalkit.media.image import load_image

    processor = AutoProcessor.from_pretrained(
        folder, size={"shortest_edge": MIN_PIXELS, "longest_edge": max_pixels}
    )
    processor.tokenizer.padding_side = "left"
    ds = datasets.load_dataset("parquet", data_files=str(data), split="train")
    ds = ds.cast_column("image", datasets.Image(decode=False)).select(range(n))
    out_texts: list[str] = []
    for start in range(0, n, batch):
        rows = ds[start : start + batch]
        images = [load_image(v) for v in rows["image"]]
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
        inputs = processor(text=texts, images=images, padding=True, return_tensors="pt").to(device)
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=MAX_NEW_TOKENS, do_sample=False, temperature=None,
                                 top_p=None, top_k=None, pad_token_id=processor.tokenizer.pad_token_id)  # fmt: skip
        new = out[:, inputs["input_ids"].shape[1] :]
        out_texts += processor.batch_decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    return [t.strip() for t in out_texts]


def evalkit_side(
    folder: Path, model, data: Path, n: int, batch: int, max_pixels: int, device: str, out: Path
):  # noqa: ANN001, ANN201
    """evalkit's runner with the hf backend; the 7B-shaped weights replace the tiny ones after load."""
    from evalkit.api import compose, prepare
    from evalkit.models.base import build_model
    from evalkit.runner.runner import Runner, RunnerOptions

    task, _ = prepare(compose("docvqa", "hf", [f"task.dataset.path={data}", f"model.pretrained={folder}"]))
    task.load()
    backend = build_model({"backend": "hf", "name": "qwen2-vl-7b-random", "pretrained": str(folder),
                           "dtype": "bfloat16" if device.startswith("cuda") else "float32", "device": device,
                           "min_pixels": MIN_PIXELS, "max_pixels": max_pixels, "batch_size": batch})  # fmt: skip
    backend.load()
    backend.model = model  # the random 7B-shaped weights, already on the device
    opts = RunnerOptions(batch_size=batch, cache=False, progress=False, thumbnails=0)
    records = Runner(task, backend, out, opts).run(task.samples()[:n])
    return [r.prediction for r in records]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--n-batch1", type=int, default=32)
    parser.add_argument("--batch", type=int, nargs="*", default=[1, 8, 16])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--max-pixels", type=int, default=1280 * 28 * 28)
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny dims, 8 pages: checks the script")
    args = parser.parse_args()
    import torch

    device = "cpu" if args.smoke else "cuda"
    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit("benchmarks/gpu.py needs a CUDA GPU (or --smoke for a CPU check of the script)")
    if args.smoke:
        args.n, args.n_batch1, args.batch, args.max_pixels = 8, 4, [1, 4], 50176
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["EVALKIT_CACHE_DIR"] = str(root / "cache")
        t = time.perf_counter()
        folder, model = build_models(root, device, args.smoke)
        data = build_data(root, args.n, real_sizes=True)
        n_params = sum(p.numel() for p in model.parameters()) / 1e9
        print(
            f"model: {n_params:.2f}B parameters on {device} ({time.perf_counter() - t:.0f} s to build + data)"
        )
        import transformers

        gpu = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
        print(f"{gpu}; torch {torch.__version__}, transformers {transformers.__version__}; "
              f"load average {os.getloadavg()[0]:.2f}; max_pixels {args.max_pixels}; "
              f"max_new_tokens {MAX_NEW_TOKENS}; minima of {args.repeats} interleaved run(s)")  # fmt: skip
        bare_loop(folder, model, data, min(4, args.n), min(args.batch), args.max_pixels, device)  # warm-up
        print(f"{'batch':>5} {'n':>4} {'bare samples/s':>15} {'evalkit samples/s':>18} {'ratio':>6} "
              f"{'GPU busy bare':>14} {'GPU busy evalkit':>17} {'same answer':>11}")  # fmt: skip
        for bs in args.batch:
            n = args.n_batch1 if bs == 1 else args.n
            best = {"bare": (float("inf"), None), "evalkit": (float("inf"), None)}
            answers: dict[str, list] = {}
            for rep in range(args.repeats):
                for side in ("bare", "evalkit"):
                    with BusySampler(device == "cuda") as sampler:
                        t = time.perf_counter()
                        if side == "bare":
                            preds = bare_loop(folder, model, data, n, bs, args.max_pixels, device)
                        else:
                            preds = evalkit_side(folder, model, data, n, bs, args.max_pixels, device,
                                                 root / f"run-{bs}-{rep}")  # fmt: skip
                        if device == "cuda":
                            torch.cuda.synchronize()
                        elapsed = time.perf_counter() - t
                    assert len(preds) == n
                    answers[side] = preds
                    if elapsed < best[side][0]:
                        best[side] = (elapsed, sampler.busy)
            (tb, busy_b), (te, busy_e) = best["bare"], best["evalkit"]
            shown = [f"{x:.0%}" if x is not None else "n/a" for x in (busy_b, busy_e)]
            # bf16 answers may differ where batch mates differ (evalkit sorts a window by length)
            agree = sum(a == b for a, b in zip(answers["bare"], answers["evalkit"], strict=True)) / n
            print(f"{bs:>5} {n:>4} {n / tb:>15.2f} {n / te:>18.2f} {tb / te:>6.2f} {shown[0]:>14} {shown[1]:>17}"
                  f" {agree:>11.0%}")  # fmt: skip


if __name__ == "__main__":
    main()

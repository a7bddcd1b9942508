"""Time the bootstrap: 10,000 resamples of 5,000 per-sample scores (the issue asks for well under
a second). Run: ``python benchmarks/bootstrap.py [--repeats 5]``.

Cases: continuous scores (ANLS-like; index-matrix path), 0/1 accuracies (multinomial-counts
path), a macro mean over 9 language groups (MTVQA-like), the paired gate bootstrap, and the
cluster bootstrap (3 questions per video, Video-MME-like) for 0/1 and continuous scores and paired.
Prints the best of ``--repeats`` wall-clock times for each.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from evalkit.metrics.bootstrap import bootstrap_ci, paired_bootstrap


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """Best wall-clock seconds of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5_000, help="samples (default 5000)")
    parser.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats; the best is shown (default 5)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    continuous = rng.random(args.n)
    binary = (rng.random(args.n) < 0.7).astype(float)
    groups = [f"L{i % 9}" for i in range(args.n)]
    videos = [f"v{i // 3}" for i in range(args.n)]
    current = np.clip(continuous + rng.normal(0, 0.05, args.n), 0, 1)

    cases = {
        "mean, continuous scores": lambda: bootstrap_ci(continuous, args.resamples),
        "mean, 0/1 scores": lambda: bootstrap_ci(binary, args.resamples),
        "macro over 9 groups": lambda: bootstrap_ci(binary, args.resamples, statistic="macro", groups=groups),
        "paired (gate), continuous": lambda: paired_bootstrap(continuous, current, args.resamples),
        "clustered, 0/1 scores": lambda: bootstrap_ci(binary, args.resamples, clusters=videos),
        "clustered, continuous": lambda: bootstrap_ci(continuous, args.resamples, clusters=videos),
        "clustered paired, continuous": lambda: paired_bootstrap(
            continuous, current, args.resamples, clusters=videos
        ),
    }
    print(f"bootstrap: {args.resamples:,} resamples x {args.n:,} samples (best of {args.repeats})")
    for name, fn in cases.items():
        fn()  # warm up
        print(f"  {name:<30} {best_time(fn, args.repeats) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()

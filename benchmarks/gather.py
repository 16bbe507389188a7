"""The learner's serial work per iteration: gathering the chunks' gradient sums and adding them.

    .venv/bin/python benchmarks/gather.py                                # |theta| 1e4..1e7, 2..256 chunks
    .venv/bin/python benchmarks/gather.py --sizes 10000 1000000 --chunks 2 64

Each iteration the learner receives one ``ChunkResult`` per chunk, a gradient sum of |theta|
float64 numbers (8 |theta| bytes; more vectors with other estimators), and for each it does what
``Learner.sample`` does: ``ray.get`` it, add its dot products to the noise scale's
``ChunkSquares`` and add it into the batch's total. Everything else of an iteration runs on the
workers, in parallel; this part is serial, so it bounds how far the learner scales.

Here the chunks come from light actors that return a prepared ``ChunkResult`` of the chosen
size (no environment, no policy: only the learner's side is measured), dispatched as the Ray
backend does (``IN_FLIGHT`` calls per actor). On one machine ``ray.get`` reads each result from
the shared-memory object store without a network; a cluster adds 8 |theta| bytes per chunk
through the learner's network link, which docs/benchmarks.md models from these figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import ray

from pgdist.estimators import POLICY_SUMS
from pgdist.learner import add_chunk
from pgdist.noise import ChunkSquares
from pgdist.ray_backend import IN_FLIGHT
from pgdist.ray_startup import start_ray
from pgdist.worker import ChunkResult
from throughput import format_load


class ChunkSource:
    """An actor standing in for a rollout worker: it returns one chunk's result of |theta| numbers."""

    def __init__(self, size: int):
        rng = np.random.default_rng(size)
        self.result = ChunkResult(
            version=0, episodes=100, steps=2000, gradient_sum=rng.standard_normal(size), weight_sum=1.0,
            weight_square_sum=1.0, return_sum=1.0, return_min=0.0, return_max=1.0, discounted_return_sum=1.0,
        )

    def run(self) -> ChunkResult:
        return self.result


def gather_and_sum(refs: list) -> tuple[float, float]:
    """The learner's loop over one iteration's results as they arrive; its (wall, CPU) seconds inside."""
    squares, total, wall, cpu = ChunkSquares(len(POLICY_SUMS)), None, 0.0, 0.0
    pending = list(refs)
    while pending:
        [ready], pending = ray.wait(pending, num_returns=1)
        start, start_cpu = time.perf_counter(), time.process_time()
        total = add_chunk(total, squares, ray.get(ready))
        wall += time.perf_counter() - start
        cpu += time.process_time() - start_cpu
    return wall, cpu


def iteration(actors: list, chunks: int) -> tuple[float, float, float]:
    """One iteration of ``chunks`` chunks, IN_FLIGHT per actor at a time; (total wall, learner wall, CPU)."""
    start = time.perf_counter()
    wall = cpu = 0.0
    left = chunks
    while left:
        batch = min(left, IN_FLIGHT * len(actors))
        refs = [actors[i % len(actors)].run.remote() for i in range(batch)]
        w, c = gather_and_sum(refs)
        wall, cpu, left = wall + w, cpu + c, left - batch
    return time.perf_counter() - start, wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000, 10_000_000])
    parser.add_argument("--chunks", type=int, nargs="+", default=[2, 8, 32, 128, 256])
    parser.add_argument("--actors", type=int, default=4, help="actors returning chunks (default: 4)")
    parser.add_argument("--repeats", type=int, default=3, help="measured iterations per cell; the median is shown")
    args = parser.parse_args(argv)

    start_ray(None)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, ray {ray.__version__}, "
          f"{args.actors} actors, {IN_FLIGHT} calls in flight each, load average {format_load()}\n")
    print("| theta size | chunks | MB per iteration | iteration s | learner ms | learner CPU ms | per chunk ms | GB/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        actors = [ray.remote(ChunkSource).options(num_cpus=0).remote(size) for _ in range(args.actors)]
        iteration(actors, len(actors))  # warm-up: the actors are up and their results made once
        for chunks in args.chunks:
            runs = sorted((iteration(actors, chunks) for _ in range(args.repeats)), key=lambda run: run[1])
            total, wall, cpu = runs[len(runs) // 2]
            megabytes = chunks * size * 8 / 1e6
            print(f"| {size:,} | {chunks} | {megabytes:,.1f} | {total:.3f} | {wall * 1e3:,.1f} | {cpu * 1e3:,.1f} | "
                  f"{wall * 1e3 / chunks:.3f} | {megabytes / 1e3 / wall:.2f} |", flush=True)
        for actor in actors:
            ray.kill(actor)
    print(f"\nload average at the end: {format_load()}")
    ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The learner's serial work per iteration: gathering the chunks' gradient sums and adding them.

    .venv/bin/python benchmarks/gather.py                                # |theta| 1e4 .. 1e7, 2 .. 256 chunks
    .venv/bin/python benchmarks/gather.py --sizes 10000 1000000 --chunks 2 64

Each iteration the learner receives one ``ChunkResult`` per chunk, a gradient sum of |theta| float64
numbers (more vectors with other estimators), and for each does what ``Learner.sample`` does:
``ray.get`` it, add its dot products to the noise scale's ``ChunkSquares`` and add it into the
batch's total (``pgdist.learner.add_chunk``). The workers run in parallel; this part is serial, so
it bounds how far the learner scales.

The chunks come from light actors that return a prepared result of the chosen size (no environment,
no policy: only the learner's side is measured), ``IN_FLIGHT`` calls per actor as the Ray backend
hands them out. On one machine ``ray.get`` reads each result from shared memory; on a cluster each
chunk's 8 |theta| bytes also cross the learner's network link.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pgdist.chunks import ChunkResult
from pgdist.estimators import POLICY_SUMS
from pgdist.learner import add_chunk
from pgdist.noise import ChunkSquares

from harness import median, number, one_ray_instance, print_machine, table, timed  # beside this script


class ChunkSource:
    """An actor standing in for a rollout worker: it returns one chunk's result of |theta| numbers."""

    def __init__(self, size: int):
        self.result = ChunkResult(
            version=0, episodes=100, steps=2000, gradient_sum=np.random.default_rng(size).standard_normal(size),
            weight_sum=1.0, weight_square_sum=1.0, return_sum=1.0, return_min=0.0, return_max=1.0,
            discounted_return_sum=1.0,
        )

    def run(self) -> ChunkResult:
        return self.result


def iteration(actors: list, chunks: int) -> tuple[float, float, float]:
    """One iteration of ``chunks`` chunks, IN_FLIGHT per actor at a time: (its seconds, the learner's
    seconds in get and sum, their CPU seconds)."""
    import ray

    from pgdist.ray import IN_FLIGHT

    squares, total, wall, cpu, left = ChunkSquares(len(POLICY_SUMS)), None, 0.0, 0.0, chunks
    start = time.perf_counter()
    while left:
        pending = [actors[i % len(actors)].run.remote() for i in range(min(left, IN_FLIGHT * len(actors)))]
        left -= len(pending)
        while pending:
            [ready], pending = ray.wait(pending, num_returns=1)
            with timed() as timing:
                total = add_chunk(total, squares, ray.get(ready))
            wall, cpu = wall + timing.wall, cpu + timing.cpu
    return time.perf_counter() - start, wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000, 10_000_000])
    parser.add_argument("--chunks", type=int, nargs="+", default=[2, 8, 32, 128, 256])
    parser.add_argument("--actors", type=int, default=4, help="actors returning chunks (default: 4)")
    parser.add_argument("--repeats", type=int, default=3, help="measured iterations per cell; the median is shown")
    args = parser.parse_args(argv)
    print(f"# the learner's gather and sum: {args.actors} actors, median of {args.repeats} iterations\n")
    print_machine()
    rows = []
    with one_ray_instance():
        import ray

        for size in args.sizes:
            actors = [ray.remote(ChunkSource).options(num_cpus=0).remote(size) for _ in range(args.actors)]
            iteration(actors, len(actors))  # the actors up and their results made
            for chunks in args.chunks:
                runs = [iteration(actors, chunks) for _ in range(args.repeats)]
                total, wall, cpu = (median(run[i] for run in runs) for i in range(3))
                megabytes = chunks * size * 8 / 1e6
                rows.append([number(size), chunks, number(megabytes, 1), number(total, 3), number(1e3 * wall, 1),
                             number(1e3 * cpu, 1), number(1e3 * wall / chunks, 3), number(megabytes / 1e3 / wall, 2)])
            for actor in actors:
                ray.kill(actor)
    table(["theta size", "chunks", "MB per iteration", "iteration s", "learner ms", "learner CPU ms", "per chunk ms",
           "GB/s"], rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

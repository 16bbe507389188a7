"""The sweep behind pgdist.layout's rule: 2 workers, each N, the rule's layout against hand-picked ones.

    .venv/bin/python benchmarks/layout_sweep.py                       # N = 1000 ... 1,000,000
    .venv/bin/python benchmarks/layout_sweep.py --episodes 32000 --rounds 3

For each N: chunks of N/1, N/2, N/4, N/8, 4096, 8192, 16384, 32768 episodes (those between
250 and 32768, then the powers of two not within 5% of those), each on the rule's copies for that chunk; the rule's chunk on twice its copies and
on a quarter of its episodes; and the old default (2000 on 512), every one a `Learner.step()` with the Ray backend and 2 actors on one
local instance started for the sweep. Rounds
interleave the layouts so that a layout's figure and the rule's come from the same minutes;
the table gives each layout's median and its ratio to the best.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import ray

from pgdist import Config
from pgdist.layout import layout, rule_envs_per_chunk
from pgdist.ray_startup import start_ray
from throughput import ENV, HIDDEN, format_load, measure, table


def candidates(episodes: int) -> list[tuple[int, int]]:
    chunks = [e for e in (-(-episodes // c) for c in (1, 2, 4, 8)) if 250 <= e <= 32768]
    chunks += [e for e in (4096, 8192, 16384, 32768) if e <= episodes and all(abs(e - c) > 0.05 * e for c in chunks)]
    chunks = chunks or [episodes]
    rule = layout(Config(env=ENV, episodes=episodes))
    wider = min(rule.chunk_episodes, 2 * rule.envs_per_chunk)
    narrower = max(1, rule.chunk_episodes // 4)
    pairs = {(e, rule_envs_per_chunk(e)) for e in chunks} | {(rule.chunk_episodes, w) for w in (wider, narrower)}
    return sorted(pairs | {(rule.chunk_episodes, rule.envs_per_chunk), (2000, 512)})


def sweep(episodes: int, rounds: int, min_seconds: float) -> None:
    rule = layout(Config(env=ENV, episodes=episodes))
    pairs = candidates(episodes)
    speeds = {pair: [] for pair in pairs}
    for _ in range(rounds):
        for chunk_episodes, envs in pairs:
            config = Config(env=ENV, episodes=episodes, chunk_episodes=chunk_episodes, envs_per_chunk=envs,
                            workers=2, seed=0, hidden=HIDDEN)
            row = measure(config, 1, min_seconds, f"{chunk_episodes}/{envs}")
            speeds[chunk_episodes, envs].append(row.steps_per_second)
    medians = {pair: float(np.median(s)) for pair, s in speeds.items()}
    best = max(medians.values())
    print(f"## N = {episodes:,}: the rule's layout {rule.chunk_episodes} on {rule.envs_per_chunk} copies "
          f"({rule.chunks(episodes)} chunks); load average {format_load()}")
    print()
    table(
        ["chunk_episodes", "envs_per_chunk", "chunks", "steps/s (median)", "of the best", "runs", ""],
        [
            [e, w, -(-episodes // e), f"{medians[e, w]:,.0f}", f"{medians[e, w] / best:.2f}",
             " ".join(f"{s:,.0f}" for s in speeds[e, w]),
             "rule" if (e, w) == (rule.chunk_episodes, rule.envs_per_chunk) else ("old default" if (e, w) == (2000, 512) else "")]
            for e, w in pairs
        ],
    )
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, nargs="+", default=[1000, 4000, 32000, 128000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--min-seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    print(f"# pgdist.layout's rule against hand-picked layouts, {ENV}, 2 workers; load average {format_load()}")
    print()
    started = start_ray(None)  # one local instance for every layout; each Learner joins it (all workers actors)
    try:
        for episodes in args.episodes:
            sweep(episodes, args.rounds, args.min_seconds)
    finally:
        if started:
            ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

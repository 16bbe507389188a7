"""The sweep behind pgdist.layout's rule: for each N, the rule's layout against hand-picked ones.

    .venv/bin/python benchmarks/layout_sweep.py                       # N = 1000 ... 1,000,000
    .venv/bin/python benchmarks/layout_sweep.py --episodes 32000 --ray --rounds 3

For each N: chunks of N/1, N/2, N/4, N/8 episodes (those between 250 and 32768) and the powers
of two 4096 ... 32768 not within 5% of those, each on the rule's copies for that chunk; the
rule's chunk on twice its copies and on a quarter of its episodes; and the old default (2000
on 512).

By default each layout's chunk runs in this process (a RolloutWorker, as one worker runs it) and
is timed in CPU seconds, which other work on a shared machine inflates far less than wall time;
2 workers are then modelled: an iteration of c equal chunks takes ceil(c/2) chunk times. With
``--ray`` every layout is a `Learner.step()` on 2 Ray actors (wall time, the real thing, but only
as steady as the machine). Rounds interleave the layouts so that a layout's figure and the
rule's come from the same minutes; the tables give medians and each layout's ratio to the best.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from pgdist import Config
from pgdist.envs import env_spaces
from pgdist.estimators import Estimator
from pgdist.layout import layout, rule_envs_per_chunk
from pgdist.policy import make_policy, parameters_to_vector
from pgdist.worker import RolloutWorker, make_chunks
from throughput import ENV, HIDDEN, format_load, measure, table

WORKERS = 2


def candidates(episodes: int) -> list[tuple[int, int]]:
    chunks = [e for e in (-(-episodes // c) for c in (1, 2, 4, 8)) if 250 <= e <= 32768]
    chunks += [e for e in (4096, 8192, 16384, 32768) if e <= episodes and all(abs(e - c) > 0.05 * e for c in chunks)]
    chunks = chunks or [episodes]
    rule = layout(Config(env=ENV, episodes=episodes))
    wider = min(rule.chunk_episodes, 2 * rule.envs_per_chunk)
    narrower = max(1, rule.chunk_episodes // 4)
    pairs = {(e, rule_envs_per_chunk(e)) for e in chunks} | {(rule.chunk_episodes, w) for w in (wider, narrower)}
    return sorted(pairs | {(rule.chunk_episodes, rule.envs_per_chunk), (2000, 512)})


class ChunkTimer:
    """Kept steps per CPU second of one worker running chunks of (episodes, copies), one RolloutWorker each."""

    def __init__(self):
        torch.set_num_threads(1)
        spaces = env_spaces(ENV)
        self.policy = make_policy(spaces.observation_size, spaces.action_space, HIDDEN, 0)
        self.theta = parameters_to_vector(self.policy).numpy()
        self.workers = {}
        self.draws = 0

    def speed(self, chunk_episodes: int, envs: int) -> float:
        if (chunk_episodes, envs) not in self.workers:
            worker = RolloutWorker(ENV, self.policy, Estimator.of(Config()), envs)
            worker.run(self.theta, 0, make_chunks(chunk_episodes, chunk_episodes, 0, 0)[0])  # builds its vector env
            self.workers[chunk_episodes, envs] = worker
        self.draws += 1
        chunk = make_chunks(chunk_episodes, chunk_episodes, 0, self.draws)[0]
        start = time.process_time()
        result = self.workers[chunk_episodes, envs].run(self.theta, 0, chunk)
        return result.steps / (time.process_time() - start)


def modelled(speed: float, episodes: int, chunk_episodes: int) -> float:
    """Steps/s of WORKERS workers: an iteration of c equal chunks takes ceil(c / WORKERS) chunk times."""
    chunks = -(-episodes // chunk_episodes)
    return speed * chunks / -(-chunks // WORKERS)


def sweep(episodes: int, rounds: int, min_seconds: float, timer: ChunkTimer | None) -> None:
    rule = layout(Config(env=ENV, episodes=episodes))
    pairs = candidates(episodes)
    speeds = {pair: [] for pair in pairs}
    for _ in range(rounds):
        for chunk_episodes, envs in pairs:
            if timer:
                speed = timer.speed(min(chunk_episodes, episodes), envs)
                speeds[chunk_episodes, envs].append(modelled(speed, episodes, chunk_episodes))
            else:
                config = Config(env=ENV, episodes=episodes, chunk_episodes=chunk_episodes, envs_per_chunk=envs,
                                workers=WORKERS, seed=0, hidden=HIDDEN)
                speeds[chunk_episodes, envs].append(measure(config, 1, min_seconds, f"{chunk_episodes}/{envs}").steps_per_second)
    medians = {pair: float(np.median(s)) for pair, s in speeds.items()}
    best = max(medians.values())
    what = "modelled from one worker's CPU time" if timer else "2 Ray actors, wall time"
    print(f"## N = {episodes:,} ({what}): the rule's layout {rule.chunk_episodes} on {rule.envs_per_chunk} copies "
          f"({rule.chunks(episodes)} chunks); load average {format_load()}")
    print()
    table(
        ["chunk_episodes", "envs_per_chunk", "chunks", f"{WORKERS} workers' steps/s (median)", "of the best", "rounds", ""],
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
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ray", action="store_true", help="time 2 Ray actors' Learner.step() instead (wall time)")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="with --ray: seconds per layout and round")
    args = parser.parse_args(argv)
    print(f"# pgdist.layout's rule against hand-picked layouts, {ENV}, {WORKERS} workers; load average {format_load()}")
    print()
    if not args.ray:
        timer = ChunkTimer()
        for episodes in args.episodes:
            sweep(episodes, args.rounds, args.min_seconds, timer)
        return 0
    from pgdist.ray_startup import start_ray

    import ray

    started = start_ray(None)  # one local instance for every layout; each Learner joins it (all workers actors)
    try:
        for episodes in args.episodes:
            sweep(episodes, args.rounds, args.min_seconds, None)
    finally:
        if started:
            ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

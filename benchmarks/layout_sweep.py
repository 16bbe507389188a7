"""The sweep behind pgdist.layout's rule: at each N, the rule's layout against hand-picked ones, 2 workers.

    .venv/bin/python benchmarks/layout_sweep.py                        # N = 1000 ... 1,000,000
    .venv/bin/python benchmarks/layout_sweep.py --episodes 32000 --ray --rounds 3

At each N: chunks of N/1, N/2, N/4 and N/8 episodes (those of 250 to 32768) and the powers of two
4096 ... 32768 not within 5% of those, each on the rule's copies for its size; the rule's chunk on
twice and on a quarter of its copies; and the old default, 2000 episodes on 512 copies.

By default one chunk of each layout runs in this process (a ``RolloutWorker``, as one worker runs
it), timed in CPU seconds, which other work on the machine inflates far less than wall time; two
workers are modelled: an iteration of c equal chunks takes ceil(c / 2) chunk times. With ``--ray``
each layout is a ``Learner.step()`` on 2 Ray actors, in wall time. The layouts run in turn in each
round; the tables give medians and each layout's figure over the best's.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from pgdist import Config
from pgdist.chunks import make_chunks
from pgdist.envs import env_spaces
from pgdist.estimators import Estimator
from pgdist.layout import layout, rule_envs_per_chunk
from pgdist.policy import make_policy
from pgdist.theta import parameters_to_vector
from pgdist.worker import RolloutWorker

from harness import in_turn, median, number, one_ray_instance, print_machine, table  # beside this script
from throughput import ENV, HIDDEN, measure

WORKERS = 2
OLD_DEFAULT = (2000, 512)


def candidates(episodes: int) -> list[tuple[int, int]]:
    """(chunk_episodes, envs_per_chunk) pairs to try at N = ``episodes``."""
    chunks = [e for e in (-(-episodes // c) for c in (1, 2, 4, 8)) if 250 <= e <= 32768]
    chunks += [e for e in (4096, 8192, 16384, 32768) if e <= episodes and all(abs(e - c) > 0.05 * e for c in chunks)]
    rule = layout(Config(env=ENV, episodes=episodes))
    pairs = {(e, rule_envs_per_chunk(e)) for e in chunks or [episodes]}
    pairs |= {(rule.chunk_episodes, min(rule.chunk_episodes, 2 * rule.envs_per_chunk)),
              (rule.chunk_episodes, max(1, rule.chunk_episodes // 4)), (rule.chunk_episodes, rule.envs_per_chunk)}
    return sorted(pairs | {OLD_DEFAULT})


class ChunkTimer:
    """Kept steps per CPU second of one chunk of (episodes, copies), a RolloutWorker for each layout."""

    def __init__(self):
        spaces = env_spaces(ENV)
        self.policy = make_policy(spaces.observation_size, spaces.action_space, HIDDEN, 0)
        self.theta = parameters_to_vector(self.policy).numpy()
        self.workers, self.draws = {}, 0

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


def sweep(episodes: int, rounds: int, min_seconds: float, timer: ChunkTimer | None) -> None:
    rule = layout(Config(env=ENV, episodes=episodes))
    pairs = candidates(episodes)

    def run(chunk_episodes: int, envs: int) -> float:
        if timer:  # WORKERS workers: an iteration of c equal chunks takes ceil(c / WORKERS) chunk times
            chunks = -(-episodes // chunk_episodes)
            return timer.speed(min(chunk_episodes, episodes), envs) * chunks / -(-chunks // WORKERS)
        config = Config(env=ENV, episodes=episodes, chunk_episodes=chunk_episodes, envs_per_chunk=envs,
                        workers=WORKERS, seed=0, hidden=HIDDEN)
        return measure(config, 1, min_seconds).steps_per_second

    speeds = in_turn({pair: (lambda pair=pair: run(*pair)) for pair in pairs}, rounds)
    medians = {pair: median(s) for pair, s in speeds.items()}
    best = max(medians.values())
    what = "modelled from one worker's CPU time" if timer else f"{WORKERS} Ray actors, wall time"
    print(f"## N = {episodes:,} ({what}): the rule's layout is {rule.chunk_episodes} episodes on "
          f"{rule.envs_per_chunk} copies ({rule.chunks(episodes)} chunks)\n")
    names = {(rule.chunk_episodes, rule.envs_per_chunk): "the rule's", OLD_DEFAULT: "the old default"}
    table(["chunk_episodes", "envs_per_chunk", "chunks", f"{WORKERS} workers' steps/s (median)", "/ the best",
           "the rounds'", ""],
          [[e, w, -(-episodes // e), number(medians[e, w]), f"{medians[e, w] / best:.2f}",
            " ".join(number(s) for s in speeds[e, w]), names.get((e, w), "")] for e, w in pairs])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, nargs="+", default=[1000, 4000, 32000, 128000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ray", action="store_true", help="time 2 Ray actors' Learner.step() instead (wall time)")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="with --ray: seconds per layout and round")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"# pgdist.layout's rule against hand-picked layouts, {ENV}, {WORKERS} workers\n")
    print_machine()
    if not args.ray:
        timer = ChunkTimer()
        for episodes in args.episodes:
            sweep(episodes, args.rounds, args.min_seconds, timer)
        return 0
    with one_ray_instance():  # every Learner joins it: all workers actors
        for episodes in args.episodes:
            sweep(episodes, args.rounds, args.min_seconds, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())

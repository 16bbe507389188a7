"""Steps per second with Discrete and Tuple observations: the raw vector env, its flattening, pgdist's worker.

    .venv/bin/python benchmarks/spaces_throughput.py                 # FrozenLake-v1, Taxi-v4, Blackjack-v1
    .venv/bin/python benchmarks/spaces_throughput.py --envs Taxi-v4 --width 128

For each env, one process, the same vector width, medians of a few repeats:

- raw: ``gymnasium.make_vec`` stepped with random actions, nothing else: the ceiling;
- raw + flat_batch: the same, each lockstep's observations flattened by ``pgdist.envs.flat_batch``;
- raw + per-copy flatten: flattened instead by gymnasium's ``spaces.flatten`` one copy at a time
  (what a loop over the copies would cost);
- pgdist worker: ``RolloutWorker.run`` on one chunk (the default policy's sampling, the
  bookkeeping, the gradient pass), kept steps per second.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector.utils import batch_space, iterate

from pgdist.config import Config
from pgdist.envs import env_spaces, flat_batch
from pgdist.estimators import Estimator
from pgdist.policy import make_policy, parameters_to_vector
from pgdist.worker import Chunk, RolloutWorker


def raw_steps_per_second(env_id: str, width: int, locksteps: int, flatten) -> float:
    env = gymnasium.make_vec(env_id, num_envs=width)
    env.reset(seed=0)
    actions = env.action_space
    actions.seed(0)
    start = time.perf_counter()
    for _ in range(locksteps):
        states, *_ = env.step(actions.sample())
        flatten(states)
    seconds = time.perf_counter() - start
    env.close()
    return width * locksteps / seconds


def worker_steps_per_second(env_id: str, width: int, episodes: int) -> float:
    config = Config(env=env_id, envs_per_chunk=width, returns="reward_to_go", gamma=0.99)
    found = env_spaces(env_id)
    policy = make_policy(found.observation_size, found.action_space, (32, 32), 0)
    worker = RolloutWorker(env_id, policy, Estimator.of(config), width)
    theta = parameters_to_vector(policy).numpy()
    worker.run(theta, 0, Chunk(0, 0, width, seed=0, draw=0))  # builds the vector env
    start = time.perf_counter()
    steps = worker.run(theta, 0, Chunk(0, 0, episodes, seed=1, draw=1)).steps
    return steps / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=["FrozenLake-v1", "Taxi-v4", "Blackjack-v1"])
    parser.add_argument("--width", type=int, default=64, help="copies stepped in lockstep (default: 64)")
    parser.add_argument("--locksteps", type=int, default=400, help="locksteps per raw measurement (default: 400)")
    parser.add_argument("--episodes", type=int, default=512, help="episodes of the worker's chunk (default: 512)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"# steps/s, {args.width} copies, one process, median of {args.repeats}; "
          f"load average {os.getloadavg()[0]:.1f} at the start")
    print()
    print("| env | observation | raw | raw + flat_batch | raw + per-copy flatten | pgdist worker |")
    print("|---|---|---:|---:|---:|---:|")
    for env_id in args.envs:
        space = gymnasium.make(env_id).observation_space
        batched = batch_space(space, args.width)
        per_copy = lambda states: np.stack([spaces.flatten(space, s) for s in iterate(batched, states)])
        columns = [
            lambda: raw_steps_per_second(env_id, args.width, args.locksteps, lambda states: states),
            lambda: raw_steps_per_second(env_id, args.width, args.locksteps, flat_batch(space)),
            lambda: raw_steps_per_second(env_id, args.width, args.locksteps, per_copy),
            lambda: worker_steps_per_second(env_id, args.width, args.episodes),
        ]
        medians = [statistics.median(measure() for _ in range(args.repeats)) for measure in columns]
        print(f"| {env_id} | {space} | " + " | ".join(f"{m:,.0f}" for m in medians) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

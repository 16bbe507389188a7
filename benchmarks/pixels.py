"""Throughput and memory of the image path: one worker against its raw vector env, and a chunk's bytes.

    .venv/bin/python benchmarks/pixels.py --env MinAtar/Breakout-v1      # pip install "pgdist[minatar]"
    .venv/bin/python benchmarks/pixels.py --env ALE/Breakout-v5 --max-episode-steps 2000  # "pgdist[atari]"

In this one process with one torch thread, as a Ray worker runs (AtariVectorEnv with its one thread):
(a) the raw vector env stepped with uniformly random actions; (b) the same with pgdist's default
policy choosing the actions (the rollout's ceiling); (c) RolloutWorker.run, chunk after chunk
(rollout, then the gradient's forward and backward passes). Each is timed by the wall clock and by
this process's CPU time: on a shared machine steps per CPU second is what one free core would give.
Frames are agent steps times the env's frameskip (4 for ALE ids, 1 for MinAtar). Then (d) a
chunk's memory: bytes per stored step, the steps it stores and keeps, and the peak that
tracemalloc sees while it runs.
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc

import numpy as np
import torch

from pgdist.config import Config
from pgdist.envs import env_spaces, gymnasium_spec, is_atari
from pgdist.vector_envs import make_vector_env
from pgdist.estimators import Estimator
from pgdist.policy import actor, make_policy, parameters_to_vector, policy_input
from pgdist.worker import RolloutWorker, make_chunks


def timed(function) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def raw(config: Config, policy, locksteps: int, with_policy: bool) -> tuple[float, float, int]:
    env = make_vector_env(config.env, config.envs_per_chunk, config.max_episode_steps)
    states = env.reset(seed=0)
    generator = torch.Generator().manual_seed(0)
    act = actor(policy, generator)
    rng = np.random.default_rng(0)

    def run():
        nonlocal states
        for _ in range(locksteps):
            if with_policy:
                with torch.inference_mode():
                    actions = act(policy_input(states, torch.float32)).numpy()
            else:
                actions = rng.integers(env.action_space.n, size=env.num_envs)
            states = env.step(actions)[0]
        return locksteps * env.num_envs

    return timed(run)


def worker_runs(config: Config, policy, chunks: int):
    worker = RolloutWorker(config.env, policy, Estimator.of(config), config.envs_per_chunk,
                           max_episode_steps=config.max_episode_steps)
    theta = parameters_to_vector(policy).numpy()
    results = []

    def run():
        for chunk in make_chunks(chunks * config.chunk_episodes, config.chunk_episodes, config.seed, 0):
            results.append(worker.run(theta, 0, chunk))
        return sum(result.steps for result in results)

    return timed(run)


def chunk_memory(config: Config, policy) -> dict:
    """Bytes of one chunk: per stored step, stored and kept steps, and tracemalloc's peak during run()."""
    worker = RolloutWorker(config.env, policy, Estimator.of(config), config.envs_per_chunk,
                           max_episode_steps=config.max_episode_steps)
    worker.load(parameters_to_vector(policy).numpy(), 0)
    chunk = make_chunks(config.chunk_episodes, config.chunk_episodes, config.seed + 1, 0)[0]
    stored = []
    original = worker._episodes

    def counting(steps, count, truncated):
        stored.append(sum(len(step[0]) for step in steps))
        return original(steps, count, truncated)

    worker._episodes = counting
    tracemalloc.start()
    episodes = worker.rollout(chunk)
    worker.gradient_sum(episodes)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    row = episodes.states[0].numel() * episodes.states.element_size()
    per_step = row + 8 * 4 + 1  # the state, then action, reward, timestep and episode (8 bytes each) and kept
    return {"state bytes": row, "bytes per stored step": per_step, "stored steps": stored[0],
            "kept steps": len(episodes.episode), "stored MB": stored[0] * per_step / 1e6, "peak MB": peak / 1e6,
            "state dtype": str(episodes.states.dtype)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="MinAtar/Breakout-v1")
    parser.add_argument("--envs-per-chunk", type=int, default=8)
    parser.add_argument("--chunk-episodes", type=int, default=32)
    parser.add_argument("--max-episode-steps", type=int, default=None)
    parser.add_argument("--locksteps", type=int, default=2000)
    parser.add_argument("--chunks", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = Config(env=args.env, envs_per_chunk=args.envs_per_chunk, chunk_episodes=args.chunk_episodes,
                    max_episode_steps=args.max_episode_steps, returns="reward_to_go", standardize=True)
    spaces = env_spaces(config.env)
    policy = make_policy(spaces.observation_shape, spaces.action_space, config.hidden, config.seed)
    frameskip = gymnasium_spec(config.env).kwargs.get("frameskip", 4) if is_atari(config.env) else 1
    print(f"{config.env}: observations {spaces.observation_shape} {spaces.observation.dtype}, {spaces.action_space}, "
          f"{sum(p.numel() for p in policy.parameters())} parameters; load average {os.getloadavg()}")
    print("| what | agent steps | wall s | CPU s | steps/s (wall) | frames/s (wall) | frames per CPU s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    rows = [
        (f"(a) raw vector env, {config.envs_per_chunk} copies, random actions", raw(config, policy, args.locksteps, False)),
        (f"(b) raw vector env, {config.envs_per_chunk} copies, pgdist's policy acting", raw(config, policy, args.locksteps, True)),
        (f"(c) RolloutWorker.run, {args.chunks} chunks of {config.chunk_episodes} episodes", worker_runs(config, policy, args.chunks)),
    ]
    for what, (wall, cpu, steps) in rows:
        print(f"| {what} | {steps} | {wall:.2f} | {cpu:.2f} | {steps / wall:,.0f} | {frameskip * steps / wall:,.0f} "
              f"| {frameskip * steps / cpu:,.0f} |")
    print("(d) one chunk's memory:", chunk_memory(config, policy))


if __name__ == "__main__":
    main()

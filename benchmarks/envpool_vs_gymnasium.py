"""EnvPool against gymnasium: raw env steps per second at the same width and CPUs, and pgdist's worker on each.

    .venv/bin/pip install -c constraints.txt -e ".[envpool,mujoco]"        # EnvPool 1.2.5 here
    .venv/bin/python benchmarks/envpool_vs_gymnasium.py --rounds 3         # Hopper-v5 x16, HalfCheetah-v5 x4

No policy and no learning: the env alone, actions drawn beforehand (uniform in the action box), every
copy stepped at every lockstep with next-step autoreset on both sides (an autoreset step counted as a
step on both). Per env, in turn each round: gymnasium's vector env in one process; EnvPool on one thread
in one process; then, at the machine's CPUs, that many processes of each at once (one thread per
worker), and one process whose EnvPool has that many threads and that many times the copies (one worker
using every thread of a node). Whether EnvPool's episodes match gymnasium's (its reimplementation of the
MuJoCo tasks, its seeding at construction) is not measured here.

Then pgdist's worker: the recipe (configs/hopper.yaml, configs/halfcheetah.yaml) on ``--backend local``,
``Learner.step()`` with ``vector_env`` gymnasium and envpool in turn, kept steps per second (learning
included; EnvPool's pool made anew at each chunk with the chunk's seed, only the copies of kept
episodes stepped, as pgdist steps gymnasium's).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time

import gymnasium
import numpy as np

from harness import ROOT, in_turn, median, number, pair_ratios, print_machine, ratios, table, timed

from pgdist import Config, Learner
from pgdist.config import read_yaml

TASKS = {"Hopper-v5": 16, "HalfCheetah-v5": 4}  # the recipes' widths (configs/hopper.yaml, halfcheetah.yaml)
RECIPES = {"Hopper-v5": "configs/hopper.yaml", "HalfCheetah-v5": "configs/halfcheetah.yaml"}


def steps_per_second(kind: str, name: str, width: int, seconds: float, threads: int = 1) -> float:
    if kind == "gymnasium":
        env = gymnasium.make_vec(name, num_envs=width)
        env.reset(seed=0)
        space = env.single_action_space
    else:
        import envpool

        env = envpool.make_gymnasium(name, num_envs=width, num_threads=threads, seed=0)
        env.reset()
        space = env.action_space
    actions = np.random.default_rng(0).uniform(space.low, space.high, size=(64, width, *space.shape))
    locksteps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.step(actions[locksteps % 64])
        locksteps += 1
    return locksteps * width / (time.perf_counter() - start)


def together(kind: str, name: str, width: int, seconds: float, processes: int) -> float:
    """``processes`` processes at once, one thread each: their steps per second added up."""
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        return sum(pool.starmap(steps_per_second, [(kind, name, width, seconds)] * processes))


def worker_steps_per_second(name: str, vector_env: str, iterations: int) -> float:
    """The recipe's ``Learner.step()`` on the local backend, after one iteration not counted."""
    values = {**read_yaml(ROOT / RECIPES[name]), "backend": "local", "vector_env": vector_env}
    with Learner(Config(**values)) as learner:
        learner.step()
        with timed() as timing:
            steps = sum(learner.step()["steps"] for _ in range(iterations))
    return steps / timing.wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="each measurement's length")
    parser.add_argument("--iterations", type=int, default=6, help="the worker's iterations a round")
    args = parser.parse_args()
    cpus = len(os.sched_getaffinity(0))
    print(f"# EnvPool against gymnasium: raw env steps/s, {args.rounds} rounds in turn, {cpus} CPUs\n")
    print_machine()
    for name, width in TASKS.items():
        runs = {
            "gymnasium, 1 process": lambda: steps_per_second("gymnasium", name, width, args.seconds),
            "EnvPool, 1 process, 1 thread": lambda: steps_per_second("envpool", name, width, args.seconds),
            f"gymnasium, {cpus} processes": lambda: together("gymnasium", name, width, args.seconds, cpus),
            f"EnvPool, {cpus} processes of 1 thread": lambda: together("envpool", name, width, args.seconds, cpus),
            f"EnvPool, 1 process of {cpus} threads, {cpus * width} copies":
                lambda: steps_per_second("envpool", name, cpus * width, args.seconds, cpus),
        }
        results = in_turn(runs, args.rounds)
        one, many = results["gymnasium, 1 process"], results[f"gymnasium, {cpus} processes"]
        rows = []
        for label, values in results.items():
            base = one if "1 process, 1" in label or label.startswith("gymnasium, 1") else many
            rows.append([label, number(median(values)), f"{median(pair_ratios(values, base)):.2f}",
                         ratios(pair_ratios(values, base))])
        print(f"## {name}, {width} copies per process\n")
        table(["", "steps/s (median)", "/ gymnasium at the same CPUs", "the rounds'"], rows)
    print("## pgdist's worker: the recipe, Learner.step() on the local backend, kept steps/s\n")
    rows = []
    for name in TASKS:
        runs = {kind: (lambda kind=kind: worker_steps_per_second(name, kind, args.iterations))
                for kind in ("gymnasium", "envpool")}
        results = in_turn(runs, args.rounds)
        envpool = pair_ratios(results["envpool"], results["gymnasium"])
        rows.append([RECIPES[name], number(median(results["gymnasium"])), number(median(results["envpool"])),
                     f"{median(envpool):.2f}", ratios(envpool)])
    table(["recipe", "vector_env: gymnasium", "vector_env: envpool", "envpool / gymnasium (median)", "the rounds'"], rows)


if __name__ == "__main__":
    main()

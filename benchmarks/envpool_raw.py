"""EnvPool against gymnasium: raw env steps per second at the same width and the same CPUs.

    .venv/bin/pip install envpool                                   # 1.2.5 here
    .venv/bin/python benchmarks/envpool_raw.py --rounds 3           # Hopper-v5 x16, HalfCheetah-v5 x4

No policy and no learning: the env alone, actions drawn beforehand (uniform in the action box), every
copy stepped at every lockstep with next-step autoreset on both sides (an autoreset step counted as a
step on both). Per env, in turn each round: gymnasium's vector env in one process; EnvPool on one thread
in one process; then, at the machine's CPUs, that many processes of each at once (one thread per
worker), and one process whose EnvPool has that many threads and that many times the copies (one worker
using every thread of a node). Whether EnvPool's episodes match gymnasium's (its reimplementation of the
MuJoCo tasks, its seeding at construction) is not measured here.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time

import gymnasium
import numpy as np

from harness import in_turn, median, number, pair_ratios, print_machine, ratios, table

TASKS = {"Hopper-v5": 16, "HalfCheetah-v5": 4}  # the recipes' widths (configs/hopper.yaml, halfcheetah.yaml)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="each measurement's length")
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


if __name__ == "__main__":
    main()

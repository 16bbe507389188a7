"""Whether adaptive N pays: wall time to a threshold, adaptive N against fixed N around the noise scale.

    .venv/bin/python benchmarks/noise_scale.py                                   # 3 tasks, seeds 0-4
    .venv/bin/python benchmarks/noise_scale.py --tasks CartPole-v1 --seeds 0 1   # a quick look
    .venv/bin/python benchmarks/noise_scale.py --tasks Hopper-v5 --seeds 0 1 2 --budget 600
    .venv/bin/python benchmarks/noise_scale.py --workers 16                       # on a 16-core machine

Per task, on one local Ray instance whose --workers actors (2 by default) every run borrows (so no run waits for its
actors to start), each kind of run trains the task's recipe (configs/*.yaml) with the run's N:

1. the recipe's N, every seed: the median of its measured noise scale B (metrics' noise_scale,
   every iteration of every seed) sets the fixed N of the next runs;
2. fixed N of about B/2, B, 2B and 4B (N in whole chunks of 8 from 16 up, 4 at least), cut into one
   chunk per worker (2 at least, 8 episodes at least each);
3. adaptive N from the least N (``--least``, chunks of 8) planned for the ``--workers`` and every other
   setting the default (``episodes_max`` 64 times the least: a run that reaches it is flagged);
4. the same with ``iteration_cost`` set to the fixed cost fitted on this machine (below), to show
   what a fixed cost does to N, with each ``lr_scaling`` where N moved (where it did not, every
   scaling gives the same run).

A run stops at the first iteration whose batch mean return reaches the threshold (gymnasium's
reward_threshold, else ``THRESHOLDS``), or when its training seconds pass the task's budget
(unsolved: slower than every run that solved it). Its time is the sum of the iterations' own
seconds (``Learner.step``: sampling and update; start-up excluded). Printed and written to OUT
(runs/noise_scale by default): per task and kind, the seeds that reached the threshold, the
median (min-max) seconds, the ratio of the median to the best fixed N's, N's range and the
policy lr's range; OUT/runs.csv (a row per run) and OUT/iterations.csv (a row per iteration).
The fixed cost of an iteration on this machine is fitted from the recipe runs' iterations
(seconds = a + b env steps per worker) and printed in env steps (a / b): the scale of
``iteration_cost``.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from pgdist.training import Callback

from harness import ROOT, markdown, one_ray_instance, print_machine  # beside this script

RECIPES = {"CartPole-v1": "configs/cartpole.yaml", "Acrobot-v1": "configs/acrobot.yaml",
           "Pendulum-v1": "configs/pendulum.yaml", "Hopper-v5": "configs/hopper.yaml"}
# Pendulum-v1 has no reward_threshold: -250 is the one Tianshou's Pendulum tests train to. Hopper-v5's
# 3,800 stands for "solved"; its 1,000 is reached by standing still, so Hopper is judged at 2,000.
THRESHOLDS = {"Pendulum-v1": -250.0, "Hopper-v5": 2000.0}
BUDGETS = {"CartPole-v1": 30.0, "Acrobot-v1": 60.0, "Pendulum-v1": 120.0, "Hopper-v5": 600.0}  # training seconds
CHUNK = 8
SCALINGS = ("none", "sqrt", "adascale")


def threshold(env: str) -> float:
    from pgdist.envs import gymnasium_spec

    own = gymnasium_spec(env).reward_threshold
    return THRESHOLDS.get(env, own)


def fixed_episodes(n: float) -> int:
    """N in 2 chunks or more: whole chunks of CHUNK from 2 CHUNK up, an even number (2 chunks) below that, 4 at least."""
    return CHUNK * round(n / CHUNK) if n >= 2 * CHUNK else max(4, 2 * round(n / 2))


def fixed_layout(n: int, workers: int, envs_per_chunk: int | None) -> dict:
    """Fixed N in as many chunks as workers (2 at least, CHUNK episodes at least each): every worker busy."""
    chunks = max(2, min(workers, n // CHUNK))
    chunk_episodes = -(-n // chunks)
    return {"episodes": n, "chunk_episodes": chunk_episodes, "envs_per_chunk": min(chunk_episodes, envs_per_chunk or n)}


class Clock(Callback):
    """A training callback: stop after the iteration whose batch mean reaches the threshold, or past the budget."""

    def __init__(self, goal: float, budget: float, rows: list, labels: dict):
        self.goal, self.budget, self.rows, self.labels = goal, budget, rows, labels
        self.seconds, self.reached = 0.0, False

    def on_iteration(self, learner, metrics):
        self.seconds += metrics["seconds"]
        self.reached = metrics["return_mean"] >= self.goal
        self.rows.append({**self.labels, **{k: metrics[k] for k in ("iteration", "episodes", "env_steps", "seconds",
                                                                     "return_mean", "noise_scale", "lr")},
                          "clock": round(self.seconds, 3)})
        return not self.reached and self.seconds < self.budget

def run(task: str, kind: str, overrides: dict, seed: int, budget: float, lender, iterations: list) -> dict:
    from pgdist import Config, Learner, train

    config = Config.from_yaml(ROOT / RECIPES[task], **{"seed": seed, "iterations": 10**6, "backend": "ray",
                                                         "workers": lender.size, "stop_return": None, **overrides})
    clock = Clock(threshold(task), budget, iterations, {"task": task, "kind": kind, "seed": seed})
    with Learner(config, backend=lender) as learner:
        train(learner, [clock])
        summary = learner.goodput.summary() if learner.goodput else ""
    rows = [row for row in iterations if row["task"] == task and row["kind"] == kind and row["seed"] == seed]
    ns, lrs = [row["episodes"] for row in rows], [row["lr"] for row in rows]
    result = {"task": task, "kind": kind, "seed": seed, "reached": clock.reached, "seconds": round(clock.seconds, 2),
              "iterations": len(rows), "env_steps": sum(row["env_steps"] for row in rows),
              "n_min": min(ns), "n_max": max(ns), "lr_min": min(lrs), "lr_max": max(lrs),
              "hit_max": config.episodes_max is not None and max(ns) >= config.episodes_max, "why": summary}
    print(f"  {task} {kind} seed {seed}: {'reached' if clock.reached else 'NOT reached'} in {clock.seconds:.1f} s, "
          f"{len(rows)} iterations, N {min(ns)}-{max(ns)} {summary}", file=sys.stderr, flush=True)
    return result


def fixed_cost(rows: list[dict], workers: int) -> float | None:
    """a / b of seconds = a + b (env steps per worker), fitted over the iterations' rows: the fixed cost in env steps."""
    x = np.array([row["env_steps"] / workers for row in rows], dtype=float)
    y = np.array([row["seconds"] for row in rows], dtype=float)
    if len(rows) < 3 or np.ptp(x) == 0:
        return None
    b, a = np.polyfit(x, y, 1)
    return float(a / b) if b > 0 else None


def in_seed_order(task: str, kinds: dict, seeds: list[int], budget: float, lender, iterations: list) -> list[dict]:
    """Every kind for a seed, then the next seed: the machine's drift falls on every kind alike."""
    return [run(task, kind, overrides, seed, budget, lender, iterations) for seed in seeds
            for kind, overrides in kinds.items()]


def task_runs(task: str, seeds: list[int], least: int, budget: float, lender, iterations: list) -> list[dict]:
    from pgdist import Config

    recipe = Config.from_yaml(ROOT / RECIPES[task])
    results = [run(task, f"recipe N={recipe.episodes}", {}, seed, budget, lender, iterations) for seed in seeds]
    noise = [row["noise_scale"] for row in iterations if row["task"] == task and row["noise_scale"] is not None]
    b = statistics.median(noise) if noise else float(recipe.episodes)
    print(f"  {task}: median noise scale at the recipe's N {b:,.0f} episodes", file=sys.stderr, flush=True)
    named = {}
    for factor, name in ((0.5, "B/2"), (1, "B"), (2, "2B"), (4, "4B")):
        n = fixed_episodes(factor * b)
        named[n] = named.get(n, ()) + (name,)
    fixed = {f"fixed N={n} ({', '.join(names)})": fixed_layout(n, lender.size, recipe.envs_per_chunk)
             for n, names in named.items()}
    adaptive = {"episodes": least, "episodes_max": 64 * least, "chunk_episodes": CHUNK, "envs_per_chunk": CHUNK}
    results += in_seed_order(task, {**fixed, f"adaptive from {least}": adaptive}, seeds, budget, lender, iterations)
    cost = fixed_cost([row for row in iterations if row["task"] == task], lender.size)
    print(f"  {task}: fixed cost of an iteration ≈ {'–' if cost is None else f'{cost:,.0f}'} env steps of a worker",
          file=sys.stderr, flush=True)
    if cost is not None and cost > 0:  # what a fixed cost does to N (the one fitted here), and each lr_scaling
        costly = {**adaptive, "iteration_cost": round(cost)}
        first = in_seed_order(task, {f"adaptive from {least}, iteration_cost {cost:,.0f}, lr none": costly},
                              seeds, budget, lender, iterations)
        results += first
        if any(r["n_max"] > least for r in first):  # else every lr_scaling gives the same run, N = least throughout
            results += in_seed_order(task, {f"adaptive from {least}, iteration_cost {cost:,.0f}, lr {scaling}":
                                            {**costly, "lr_scaling": scaling} for scaling in SCALINGS[1:]},
                                     seeds, budget, lender, iterations)
    for result in results:
        result["noise_scale"], result["fixed_cost"] = round(b), cost
    return results


def report(results: list[dict]) -> str:
    rows = []
    for task in dict.fromkeys(r["task"] for r in results):
        mine = [r for r in results if r["task"] == task]
        kinds = list(dict.fromkeys(r["kind"] for r in mine))

        def seconds(kind):  # unsolved counts as slower than every solved run
            return [r["seconds"] if r["reached"] else float("inf") for r in mine if r["kind"] == kind]

        best = min((statistics.median(seconds(k)) for k in kinds if not k.startswith("adaptive")), default=None)
        for kind in kinds:
            runs = [r for r in mine if r["kind"] == kind]
            values = seconds(kind)
            median = statistics.median(values)
            low, high = min(values), max(values)
            text = "–" if median == float("inf") else f"{median:.1f} ({low:.1f}-{'∞' if high == float('inf') else f'{high:.1f}'})"
            ratio = "–" if median == float("inf") or not best or best == float("inf") else f"{median / best:.2f}"
            rows.append([f"{task} ({threshold(task):g}; B ≈ {runs[0]['noise_scale']:,})", kind,
                         f"{sum(r['reached'] for r in runs)}/{len(runs)}", text, ratio,
                         f"{min(r['n_min'] for r in runs)}-{max(r['n_max'] for r in runs)}",
                         f"{min(r['lr_min'] for r in runs):.3g}-{max(r['lr_max'] for r in runs):.3g}",
                         sum(r["hit_max"] for r in runs)])
    return markdown(["task (threshold; noise scale at the recipe's N)", "run", "reached", "seconds, median (range)",
                     "÷ best fixed", "N", "policy lr", "hit episodes_max"], rows, left=2)


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["CartPole-v1", "Acrobot-v1", "Pendulum-v1"], choices=RECIPES)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--least", type=int, default=16, help="adaptive N's least N (episodes)")
    parser.add_argument("--workers", type=int, default=2, help="Ray actors every run borrows (16 on the device)")
    parser.add_argument("--budget", type=float, help="training seconds a run may take (default: per task)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "noise_scale")
    args = parser.parse_args()
    print_machine()
    args.out.mkdir(parents=True, exist_ok=True)
    results, iterations = [], []
    with one_ray_instance():
        from pgdist.ray import RayWorkers

        lender = RayWorkers(args.workers)
        for task in args.tasks:
            started = time.perf_counter()
            results += task_runs(task, args.seeds, args.least, args.budget or BUDGETS[task], lender, iterations)
            print(f"  {task}: {time.perf_counter() - started:.0f} s in all", file=sys.stderr, flush=True)
            write_csv(args.out / "runs.csv", results)
            write_csv(args.out / "iterations.csv", iterations)
        lender.close()
    text = report(results)
    (args.out / "noise_scale.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

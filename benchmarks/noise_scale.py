"""The gradient noise scale over training, and fixed N against adaptive N (``episodes_max``).

    .venv/bin/python benchmarks/noise_scale.py                                  # 3 tasks, seeds 0-4, 4 kinds of run
    .venv/bin/python benchmarks/noise_scale.py --envs CartPole-v1 --seeds 0     # one run of each kind
    .venv/bin/python benchmarks/noise_scale.py --envs Acrobot-v1 --seeds 0 --runs "fixed N=64" adaptive
    .venv/bin/python benchmarks/noise_scale.py --report OUT_A OUT_B --out OUT   # one table and figure from several

For each task, its recipe (configs/*.yaml) is run with the recipe's N, with two other fixed N
(half and twice it), and with adaptive N starting from half the recipe's N (``kinds``), in
this process on the local backend (no Ray: the comparison is of N, not of the backend). A run stops when an
iteration's mean return reaches the task's threshold (``THRESHOLDS``; that batch takes no
step), after --iterations, or once its environment steps reach the task's budget
(``STEP_BUDGETS``, --steps), so that a large fixed N cannot take the whole machine; a run
stopped so has not reached the threshold and counts as slower than every run that did.
Per run it records every iteration's N, noise scale, environment steps and seconds
(``Learner.step``'s own timing, start-up excluded), and writes:

    OUT/noise_scale.csv     a row per iteration of every run
    OUT/runs.csv            a row per run: reached or not, iterations, env steps, seconds, load average
    OUT/noise_scale.md      per task and kind: min / median / max over seeds of each
    OUT/noise_scale.png     the noise scale (solid) and N (dashed) over training, per task

Times are those of whatever else runs on the machine: compare environment steps first.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import time
from pathlib import Path

from time_to_solve import format_load, spread  # beside this script

from pgdist import Callback, Config, Learner, train
from pgdist.envs import gymnasium_spec

ROOT = Path(__file__).resolve().parent.parent
RECIPES = {
    "CartPole-v1": "configs/cartpole.yaml",
    "Acrobot-v1": "configs/acrobot.yaml",
    "Pendulum-v1": "configs/pendulum.yaml",
}
# The mean return at which a task counts as solved: gymnasium's reward_threshold (CartPole-v1
# 475, Acrobot-v1 -100) where the task has one. Pendulum-v1 has none; -250 is the threshold
# Tianshou's tests train it to (thu-ml/tianshou test/continuous/test_ppo.py and the other
# Pendulum tests there: default_reward_threshold = {"Pendulum-v1": -250}).
THRESHOLDS = {"Pendulum-v1": -250.0}
# Environment steps after which a run gives up, a bound on the machine time a large N takes:
# about 5x what the recipe needs for CartPole-v1 and Acrobot-v1 (0.2M, 0.2-0.4M), and about
# what configs/pendulum.yaml's comment measured for Pendulum-v1 (1.7-2.4M steps to -200, not -250).
STEP_BUDGETS = {"CartPole-v1": 1_000_000, "Acrobot-v1": 1_000_000, "Pendulum-v1": 2_500_000}


def threshold(env: str) -> float:
    own = gymnasium_spec(env).reward_threshold
    return THRESHOLDS[env] if own is None else float(own)


def kinds(recipe: Config) -> dict[str, dict]:
    """The runs to compare, as Config overrides: fixed N at half, one and twice the recipe's, and adaptive N.

    Half and twice bracket the recipe's N by the same factor on both sides, so that the measured noise scale
    can be checked against what a smaller and a larger N do. N/2 comes in chunks of N/4, to
    keep two chunks and a noise scale (the chunk layout does not change the gradient). Adaptive
    N starts from the smallest fixed N, in the same chunks, and may grow to 64 times the recipe's.
    """
    n = recipe.episodes
    small = {"episodes": n // 2, "chunk_episodes": n // 4}
    return {
        f"fixed N={n // 2}": small,
        f"fixed N={n} (recipe)": {},
        f"fixed N={2 * n}": {"episodes": 2 * n},
        f"adaptive N from {n // 2}": {**small, "episodes_max": 64 * n},
    }


def chosen(runs: dict[str, dict], prefixes: list[str]) -> list[tuple[str, dict]]:
    """The runs whose names start with one of ``prefixes``, in the prefixes' order (the cheap, telling ones first)."""
    picked = {name: runs[name] for prefix in prefixes for name in runs if name.startswith(prefix)}
    return list(picked.items())


class StepBudget(Callback):
    """Stop once the run's environment steps reach ``budget``."""

    def __init__(self, budget: int):
        self.budget = budget
        self.steps = 0

    def on_iteration(self, learner, metrics: dict) -> bool:
        self.steps += metrics["steps"]
        return self.steps < self.budget


def run(config: Config, budget: int) -> list[dict]:
    with Learner(config) as learner:
        return train(learner, callbacks=[StepBudget(budget)])


def summary(env: str, seed: int, name: str, rows: list[dict]) -> dict:
    return {
        "env": env,
        "seed": seed,
        "run": name,
        "reached": rows[-1]["stopped"],
        "iterations": len(rows),
        "env_steps": sum(row["steps"] for row in rows),
        "seconds": round(sum(row["seconds"] for row in rows), 2),
        "last_noise_scale": next((row["noise_scale"] for row in reversed(rows) if row["noise_scale"] is not None), None),
        "last_episodes": rows[-1]["episodes"],
        "load_1min_at_end": round(os.getloadavg()[0], 2),
        "finished_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }


def table(runs: list[dict]) -> str:
    """Per task and kind: how many seeds reached the threshold, and min / median / max of each figure.

    A run that stopped short of the threshold counts as slower than every one that reached it
    ('unsolved' in ``spread``), so a median is a figure only when most seeds reached it.
    """
    columns = ["task (threshold)", "run", "reached", "iterations", "env steps (thousands)", "seconds",
               "last noise scale", "last N"]
    lines = ["| " + " | ".join(columns) + " |", "|---|---|" + "---:|" * (len(columns) - 2)]
    envs = list(dict.fromkeys(row["env"] for row in runs))
    for (env, name), group in sorted(grouped(runs).items(), key=lambda item: (envs.index(item[0][0]), order(item[0][1]))):
        def to_threshold(key: str, scale: float = 1.0) -> list[float]:
            return [float(r[key]) / scale if truthy(r["reached"]) else math.inf for r in group]

        noise = [float(r["last_noise_scale"]) for r in group if r["last_noise_scale"] not in (None, "")]
        lines.append("| " + " | ".join([
            f"{env} ({threshold(env):g})",
            name,
            f"{sum(truthy(r['reached']) for r in group)}/{len(group)}",
            spread(to_threshold("iterations"), 0),
            spread(to_threshold("env_steps", 1000), 0),
            spread(to_threshold("seconds"), 1),
            spread(noise, 0),
            spread([float(r["last_episodes"]) for r in group], 0),
        ]) + " |")
    return "\n".join(lines) + "\n"


def order(name: str) -> tuple[bool, int]:
    """Fixed N by N, then adaptive N."""
    return name.startswith("adaptive"), int(name.split("N=")[-1].split()[0]) if "N=" in name else 0


def grouped(runs: list[dict]) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in runs:
        groups.setdefault((row["env"], row["run"]), []).append(row)
    return groups


def truthy(value) -> bool:
    return value is True or value == "True"


def plot(curves: list[dict], out: Path) -> None:
    """Per task, every run's noise scale (solid) and N (dashed) against environment steps so far."""
    from matplotlib.figure import Figure

    envs = list(dict.fromkeys(row["env"] for row in curves))
    figure = Figure(figsize=(6 * len(envs), 4.5))
    axes = figure.subplots(1, len(envs), squeeze=False)[0]
    for axis, env in zip(axes, envs):
        runs: dict[tuple[str, str], list[dict]] = {}
        for row in curves:
            if row["env"] == env:
                runs.setdefault((row["run"], row["seed"]), []).append(row)
        names = list(dict.fromkeys(name for name, _ in runs))
        labelled = set()
        for (name, _), rows in runs.items():
            colour = f"C{names.index(name)}"
            steps = [sum(float(r["steps"]) for r in rows[: i + 1]) for i in range(len(rows))]
            noise = [number_or_nan(r["noise_scale"]) for r in rows]
            axis.plot(steps, noise, color=colour, linewidth=1, alpha=0.8,
                      label=None if name in labelled else name)
            axis.plot(steps, [float(r["episodes"]) for r in rows], color=colour, linestyle="--", linewidth=1, alpha=0.5)
            labelled.add(name)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_title(f"{env}: noise scale B (solid), N (dashed)", fontsize="medium")
        axis.set_xlabel("environment steps so far")
        axis.set_ylabel("episodes")
        axis.legend(fontsize="small")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out, dpi=100)


def number_or_nan(value) -> float:
    return math.nan if value in (None, "") else float(value)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def report(runs: list[dict], curves: list[dict], out: Path) -> None:
    (out / "noise_scale.md").write_text(table(runs))
    plot(curves, out / "noise_scale.png")
    print(table(runs))
    print(f"wrote {out / 'noise_scale.md'} and {out / 'noise_scale.png'}")


def benchmark(args) -> tuple[list[dict], list[dict]]:
    runs, curves = [], []
    for env in args.envs:
        recipe = Config.from_yaml(RECIPES[env], backend="local", iterations=args.iterations,
                                  stop_return=threshold(env))
        budget = args.steps or STEP_BUDGETS[env]
        for seed in args.seeds:
            for name, overrides in chosen(kinds(recipe), args.runs):
                rows = run(recipe.replace(seed=seed, **overrides), budget)
                runs.append(summary(env, seed, name, rows))
                curves += [{"env": env, "seed": seed, "run": name, **row} for row in rows]
                print(runs[-1], flush=True)
                write_csv(args.out / "runs.csv", runs)  # as it goes, so an interrupted run keeps what finished
                write_csv(args.out / "noise_scale.csv", curves)
    return runs, curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--iterations", type=int, default=1000, help="at most, per run")
    parser.add_argument("--steps", type=int, default=None,
                        help="environment steps at most, per run (default: the task's STEP_BUDGETS)")
    parser.add_argument("--runs", nargs="+", default=["fixed", "adaptive"],
                        help="which runs, in this order: names starting with these words, e.g. 'fixed N=64' or 'adaptive'")
    parser.add_argument("--report", nargs="+", type=Path, default=None, metavar="DIR",
                        help="run nothing: one table and figure from these earlier OUT folders")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    os.chdir(ROOT)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"load average (1 / 5 / 15 min) at the start: {format_load()}", flush=True)
    if args.report:
        runs = [row for folder in args.report for row in read_csv(folder / "runs.csv")]
        curves = [row for folder in args.report for row in read_csv(folder / "noise_scale.csv")]
    else:
        runs, curves = benchmark(args)
        runs, curves = read_csv(args.out / "runs.csv"), read_csv(args.out / "noise_scale.csv")
    report(runs, curves, args.out)
    print(f"load average (1 / 5 / 15 min) at the end: {format_load()}")


if __name__ == "__main__":
    main()

"""The gradient noise scale over training, and fixed N against adaptive N (``episodes_max``).

    .venv/bin/python benchmarks/noise_scale.py                                  # 3 tasks, seeds 0-4, 4 kinds of run
    .venv/bin/python benchmarks/noise_scale.py --envs CartPole-v1 --seeds 0     # one run of each kind
    .venv/bin/python benchmarks/noise_scale.py --envs Acrobot-v1 --seeds 0 --runs "fixed N=64" adaptive
    .venv/bin/python benchmarks/noise_scale.py --report OUT_A OUT_B --out OUT   # one table and figure from several

For each task, its recipe (configs/*.yaml) is run with the recipe's N, with two other fixed N
(half and twice it), and with adaptive N starting from half the recipe's N (``kinds``), in
this process on the local backend (no Ray: the comparison is of N, not of the backend). A run
stops when an iteration's mean return reaches the task's threshold (gymnasium's
reward_threshold, else ``THRESHOLDS``; that batch takes no step), after --iterations, or once its environment steps reach the task's budget
(``STEP_BUDGETS``, --steps), so that a large fixed N cannot take the whole machine; a run
stopped so has not reached the threshold and counts as slower than every run that did.
Per run it records every iteration's N, noise scale, environment steps, wall seconds
(``Learner.step``'s own timing, start-up excluded) and CPU seconds so far (``time.process_time``
of this process from just before the Learner is built: the whole run's compute, start-up included,
and what other load on the machine leaves unchanged), and writes:

    OUT/noise_scale.csv     a row per iteration of every run, written as the iteration ends
    OUT/runs.csv            a row per run that ended (threshold or budget)
    OUT/noise_scale.md      per task and kind: min / median / max over seeds of each
    OUT/noise_scale.png     per task, the noise scale (solid), N (dashed) and the return over training

Wall times are those of whatever else runs on the machine: compare environment steps and CPU seconds.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import math
import os
import time
from pathlib import Path

from pgdist import Callback, Config, Learner, train
from pgdist.envs import gymnasium_spec

from harness import markdown, print_machine, spread  # beside this script

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
# At most about this many points per run in the figure (every k-th iteration), to keep it small.
POINTS = 60


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


class CurveWriter(Callback):
    """Every iteration's metrics as a row of OUT/noise_scale.csv, written as it ends: a run cut off keeps its curve.

    Made just before the run's Learner, so that its ``cpu_seconds`` (this process's CPU time so far in
    the run, every thread) counts the run's start-up too.
    """

    def __init__(self, path: Path, **labels):
        self.path, self.labels = path, labels
        self.cpu_start = time.process_time()

    def on_iteration(self, learner, metrics: dict) -> None:
        append_csv(self.path, {**self.labels, **metrics, "cpu_seconds": round(time.process_time() - self.cpu_start, 3)})


def run(config: Config, budget: int, writer: CurveWriter) -> None:
    with Learner(config) as learner:
        train(learner, callbacks=[StepBudget(budget), writer])


def summary(rows: list[dict], finished: bool) -> dict:
    """A run from its curve's rows (as read back from the CSV); ``finished``: it ran to the threshold or its budget."""
    reached = truthy(rows[-1]["stopped"])
    noise = [row["noise_scale"] for row in rows if row["noise_scale"] not in (None, "")]
    return {
        "env": rows[0]["env"],
        "run": rows[0]["run"],
        "ended": "threshold" if reached else "budget" if finished else "cut off",
        "iterations": len(rows),
        "env_steps": sum(float(row["steps"]) for row in rows),
        "seconds": sum(float(row["seconds"]) for row in rows),
        "cpu_seconds": float(rows[-1]["cpu_seconds"]),
        "last_noise_scale": float(noise[-1]) if noise else None,
        "last_episodes": float(rows[-1]["episodes"]),
    }


def summaries(curves: list[dict], finished: list[dict]) -> list[dict]:
    """Every run in ``curves``; those without a row in OUT/runs.csv were cut off before their end."""
    done = {(row["env"], str(row["seed"]), row["run"]) for row in finished}
    runs: dict[tuple[str, str, str], list[dict]] = {}
    for row in curves:
        runs.setdefault((row["env"], str(row["seed"]), row["run"]), []).append(row)
    return [summary(rows, key in done) for key, rows in runs.items()]


def table(curves: list[dict], finished: list[dict]) -> str:
    """Per task and kind: how many seeds reached the threshold, and min / median / max of each figure.

    A run that spent its step budget without reaching the threshold counts as slower than every
    one that reached it ('unsolved' in ``spread``). A run cut off before its end (the deadline)
    is left out of these figures: its steps so far are shown apart.
    """
    rows = []
    runs = summaries(curves, finished)
    envs = list(dict.fromkeys(row["env"] for row in runs))
    for (env, name), group in sorted(grouped(runs).items(), key=lambda item: (envs.index(item[0][0]), order(item[0][1]))):
        ended = [r for r in group if r["ended"] != "cut off"]
        cut = [r for r in group if r["ended"] == "cut off"]

        def to_threshold(key: str, scale: float = 1.0, digits: int = 0) -> str:
            if ended and not any(r["ended"] == "threshold" for r in ended):
                return "not reached"
            return spread([r[key] / scale if r["ended"] == "threshold" else math.inf for r in ended], digits)

        rows.append([
            f"{env} ({threshold(env):g})",
            name,
            f"{sum(r['ended'] == 'threshold' for r in ended)}/{len(ended)}",
            to_threshold("iterations"),
            to_threshold("env_steps", 1000),
            to_threshold("cpu_seconds", digits=1),
            to_threshold("seconds", digits=1),
            ", ".join(f"{r['env_steps'] / 1000:.0f}" for r in cut) or "–",
            spread([r["last_noise_scale"] for r in group if r["last_noise_scale"] is not None], 0),
            spread([r["last_episodes"] for r in group], 0),
        ])
    return markdown(["task (threshold)", "run", "reached", "iterations", "env steps (thousands)", "CPU seconds",
                     "wall seconds", "cut off at (thousand steps)", "last noise scale", "last N"], rows, left=2)


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
    """Per task, against environment steps so far: every run's noise scale (solid) and N (dashed), and its return."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    envs = list(dict.fromkeys(row["env"] for row in curves))
    names = sorted(dict.fromkeys(row["run"] for row in curves), key=order)  # one colour per kind in every panel
    figure = Figure(figsize=(4.5 * len(envs), 6.5))
    axes = figure.subplots(2, len(envs), squeeze=False, sharex="col")
    for column, env in enumerate(envs):
        noise_axis, return_axis = axes[0][column], axes[1][column]
        runs: dict[tuple[str, str], list[dict]] = {}
        for row in curves:
            if row["env"] == env:
                runs.setdefault((row["run"], row["seed"]), []).append(row)
        labelled = set()
        for (name, _), rows in sorted(runs.items(), key=lambda item: order(item[0][0])):
            colour = f"C{names.index(name)}"
            every = max(1, len(rows) // POINTS)
            steps = list(itertools.accumulate(float(r["steps"]) for r in rows))[::every]
            rows = rows[::every]
            label = None if name in labelled else name
            noise_axis.plot(steps, [number_or_nan(r["noise_scale"]) for r in rows], color=colour, linewidth=1,
                            alpha=0.8, label=label)
            noise_axis.plot(steps, [float(r["episodes"]) for r in rows], color=colour, linestyle="--", linewidth=1,
                            alpha=0.5)
            return_axis.plot(steps, [float(r["return_mean"]) for r in rows], color=colour, linewidth=1, alpha=0.8,
                             label=label)
            labelled.add(name)
        return_axis.axhline(threshold(env), color="black", linewidth=0.8, linestyle=":")
        noise_axis.set_yscale("log")
        noise_axis.set_title(f"{env}: noise scale B (solid), N (dashed)", fontsize="medium")
        noise_axis.set_ylabel("episodes")
        return_axis.set_title(f"{env}: batch mean return (threshold dotted)", fontsize="medium")
        return_axis.set_ylabel("return")
        return_axis.set_xlabel("environment steps so far")
        for axis in (noise_axis, return_axis):
            axis.set_xscale("log")
            axis.xaxis.set_minor_formatter(NullFormatter())  # no crowded labels between the powers of 10
            axis.legend(fontsize="small")
            axis.grid(alpha=0.3)
    figure.tight_layout()
    save_small(figure, out)


def save_small(figure, out: Path) -> None:
    """The figure as a PNG of 64 colours: about a third of the bytes of matplotlib's, for docs/."""
    from PIL import Image

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    Image.open(buffer).convert("RGB").quantize(colors=64).save(out, optimize=True)


def number_or_nan(value) -> float:
    return math.nan if value in (None, "") else float(value)


def read_csv(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def append_csv(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def report(curves: list[dict], finished: list[dict], out: Path) -> None:
    text = table(curves, finished)
    (out / "noise_scale.md").write_text(text)
    plot(curves, out / "noise_scale.png")
    print(text)
    print(f"wrote {out / 'noise_scale.md'} and {out / 'noise_scale.png'}")


def benchmark(args) -> None:
    """Every chosen run, its curve to OUT/noise_scale.csv as it goes and a line in OUT/runs.csv at its end."""
    for env in args.envs:
        recipe = Config.from_yaml(RECIPES[env], backend="local", iterations=args.iterations,
                                  stop_return=threshold(env))
        for seed in args.seeds:
            for name, overrides in chosen(kinds(recipe), args.runs):
                writer = CurveWriter(args.out / "noise_scale.csv", env=env, seed=seed, run=name)
                run(recipe.replace(seed=seed, **overrides), args.steps or STEP_BUDGETS[env], writer)
                append_csv(args.out / "runs.csv", {
                    "env": env, "seed": seed, "run": name, "finished_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                })
                print(f"{env}, seed {seed}, {name}: done", flush=True)


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
    print_machine()
    if not args.report:
        if (args.out / "noise_scale.csv").exists():
            parser.error(f"{args.out} holds an earlier benchmark's noise_scale.csv: choose another --out")
        benchmark(args)
    folders = args.report or [args.out]
    curves = [row for folder in folders for row in read_csv(folder / "noise_scale.csv")]
    finished = [row for folder in folders for row in read_csv(folder / "runs.csv")]
    report(curves, finished, args.out)


if __name__ == "__main__":
    main()

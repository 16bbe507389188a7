"""The MuJoCo recipes at a step budget, against the anchors: Spinning Up's VPG and Tianshou's REINFORCE.

    .venv/bin/python benchmarks/recipes.py                                  # the four recipes, seed 0, 3M steps
    .venv/bin/python benchmarks/recipes.py --tasks hopper --seeds 0 1 2 --steps 3000000
    .venv/bin/python benchmarks/recipes.py --figure docs/recipes.png         # the run folders' curves, drawn
    .venv/bin/python benchmarks/recipes.py --report --seeds 0 1 2            # their table, final policies evaluated

Each run trains configs/<task>.yaml on the Ray backend (every worker of one local Ray instance) into a
run folder (runs/recipes/<task>-<seed>: metrics.csv, curve.png, checkpoint.pt) until its env steps
reach --steps, then evaluates the final policy with pgdist's evaluator (20 episodes with the mode, 20
sampled, seed 12345). Printed per task: the mean training-batch return of the last 10 iterations at
every 0.5M steps and at the end (the anchors' metric), the evaluations, the wall time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from pgdist.training import Callback

from harness import ROOT, number, one_ray_instance, print_machine, table  # beside this script

TASKS = {"hopper": "configs/hopper.yaml", "halfcheetah": "configs/halfcheetah.yaml",
         "walker2d": "configs/walker2d.yaml", "ant": "configs/ant.yaml"}
# at 3M steps, -v3 tasks, as thu-ml/tianshou examples/mujoco/README.md gives them: its REINFORCE (10 seeds)
# and Spinning Up's VPG (PyTorch, read off Spinning Up's graphs, "~")
ANCHORS = {"hopper": "VPG ~800, Tianshou 396 ± 65", "halfcheetah": "VPG ~600, Tianshou 884 ± 41",
           "walker2d": "VPG ~460, Tianshou 412 ± 52", "ant": "VPG ~5, Tianshou 475 ± 134"}
EVAL_EPISODES, EVAL_SEED, LAST = 20, 12345, 10
MARKS = (500_000, 1_000_000, 1_500_000, 2_000_000, 2_500_000, 3_000_000)


class StopAtSteps(Callback):
    """A training callback: stop once the iterations' env steps reach ``steps``; keeps the rows."""

    def __init__(self, steps: int):
        self.steps, self.rows, self.taken = steps, [], 0

    def on_iteration(self, learner, metrics):
        self.rows.append(metrics)
        self.taken += metrics["steps"]
        return self.taken < self.steps

def last_mean_at(rows: list[dict], steps: int) -> float | None:
    """The mean return of the LAST iterations up to the one that reached ``steps``."""
    taken = 0
    for i, row in enumerate(rows):
        taken += row["steps"]
        if taken >= steps:
            return statistics.fmean(r["return_mean"] for r in rows[max(0, i + 1 - LAST) : i + 1])
    return None


def run(task: str, seed: int, steps: int, out: Path) -> list:
    from pgdist import Config, Learner
    from pgdist.runs import Run
    from pgdist.training import train

    config = Config.from_yaml(ROOT / TASKS[task], seed=seed, iterations=10**6, backend="ray")
    stop = StopAtSteps(steps)
    start = time.perf_counter()
    with Learner(config) as learner:
        folder = Run.create(out / f"{task}-{seed}", config)
        try:
            train(learner, [folder, stop])
        finally:
            folder.close()
        seconds = time.perf_counter() - start
        return result_row(task, seed, stop.rows, steps, learner.policy, seconds)


def result_row(task: str, seed: int, rows: list[dict], steps: int, policy, seconds: float) -> list:
    """A run's row: the last-10 means at the marks and at the end, the final policy evaluated (mode and sampled)."""
    from pgdist import Config
    from pgdist.evaluate import evaluate

    plain = Config(env=Config.from_yaml(ROOT / TASKS[task]).env)
    mode = evaluate(plain, policy, EVAL_EPISODES, greedy=True, seed=EVAL_SEED)
    sampled = evaluate(plain, policy, EVAL_EPISODES, seed=EVAL_SEED)
    taken = sum(row["steps"] for row in rows)
    marks = [number(last_mean_at(rows, mark)) for mark in MARKS if mark <= steps]
    print(f"  {task} seed {seed}: {marks[-1] if marks else '–'} at {taken:,} steps in {seconds:.0f} s",
          file=sys.stderr, flush=True)
    return [f"{task} seed {seed}", *marks, number(last_mean_at(rows, taken)),
            f"{mode.mean():,.0f} ± {mode.std():,.0f}", f"{sampled.mean():,.0f} ± {sampled.std():,.0f}",
            number(seconds), ANCHORS[task]]


def reported(task: str, seed: int, steps: int, out: Path) -> list | None:
    """The row of a run folder already there (its metrics and its last checkpoint); None if there is none."""
    from pgdist.metrics import read_metrics
    from pgdist.runs import load_run

    folder = out / f"{task}-{seed}"
    if not (folder / "checkpoint.pt").exists():
        return None
    rows = [{"steps": int(row["steps"]), "return_mean": float(row["return_mean"])} for row in read_metrics(folder)]
    seconds = sum(float(row["seconds"]) for row in read_metrics(folder))
    return result_row(task, seed, rows, steps, load_run(folder)[1], seconds)


# the anchors at 3M steps as numbers, for the figure: (Spinning Up's VPG, Tianshou's REINFORCE)
ANCHOR_LINES = {"hopper": (800, 396), "halfcheetah": (600, 884), "walker2d": (460, 412), "ant": (5, 475)}


def figure(runs: Path, tasks: list[str], out: Path) -> None:
    """Per task, every seed's last-10 mean return against env steps, the anchors' 3M values as dashes."""
    from matplotlib.figure import Figure

    from pgdist.metrics import read_metrics

    drawing = Figure(figsize=(10, 7))
    for axes, task in zip(drawing.subplots(2, 2).flat, tasks):
        for folder in sorted(runs.glob(f"{task}-*")):
            rows = read_metrics(folder)
            steps, returns = [], []
            for i, row in enumerate(rows):
                steps.append((steps[-1] if steps else 0) + int(row["steps"]))
                returns.append(statistics.fmean(float(r["return_mean"]) for r in rows[max(0, i + 1 - LAST) : i + 1]))
            axes.plot([x / 1e6 for x in steps], returns, label=f"pgdist seed {folder.name.split('-')[-1]}")
        vpg, tianshou = ANCHOR_LINES[task]
        axes.axhline(vpg, color="grey", linestyle="--", label="Spinning Up VPG at 3M (~)")
        axes.axhline(tianshou, color="black", linestyle=":", label="Tianshou REINFORCE at 3M")
        axes.set_title(f"{task} (configs/{task}.yaml)")
        axes.set_xlabel("env steps (millions)")
        axes.set_ylabel(f"mean return, last {LAST} iterations")
        axes.legend(fontsize="x-small")
    drawing.tight_layout()
    drawing.savefig(out, dpi=80)
    print(f"  figure: {out}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--steps", type=int, default=3_000_000)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "recipes")
    parser.add_argument("--figure", type=Path, help="only draw the run folders in --out into this PNG (docs/recipes.png)")
    parser.add_argument("--report", action="store_true", help="only the table of the run folders in --out (wall s: "
                        "the iterations' own seconds), their final policies evaluated")
    args = parser.parse_args()
    if args.figure:
        figure(args.out, args.tasks, args.figure)
        return 0
    print_machine()
    rows = []
    if args.report:
        rows = [row for task in args.tasks for seed in args.seeds
                if (row := reported(task, seed, args.steps, args.out)) is not None]
    else:
        with one_ray_instance():
            for task in args.tasks:
                for seed in args.seeds:
                    rows.append(run(task, seed, args.steps, args.out))
    marks = [f"{mark / 1e6:g}M" for mark in MARKS if mark <= args.steps]
    table(["run (last-10 mean return at)", *marks, "at the end", f"eval, mode ({EVAL_EPISODES})",
           f"eval, sampled ({EVAL_EPISODES})", "wall s", "anchors at 3M"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

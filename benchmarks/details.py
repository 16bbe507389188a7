"""The details that matter on MuJoCo, each an option measured on and off against the recipe.

    .venv/bin/python benchmarks/details.py                                    # Hopper-v5 and HalfCheetah-v5, 1M steps
    .venv/bin/python benchmarks/details.py --tasks halfcheetah --steps 500000 --seeds 0 1
    .venv/bin/python benchmarks/details.py --variants recipe normalised --set episodes=16

Each variant is the task's recipe (configs/<task>.yaml) with one option changed, or all of them
("all"), trained for the same number of env steps on the Ray backend (every worker of one local
Ray instance), seed by seed, the variants in turn. The score is the mean training-batch return
of the last 10 iterations, so that no evaluation is charged to any side; the time is the training
loop's wall time. Also printed: the value baseline's explained variance over those iterations, and
the learner's update (its step, and V's further rounds with value_epochs) as a share of that time,
and with value_epochs > 1 the median iteration's update time per round.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from harness import ROOT, config_overrides, median, number, one_ray_instance, print_machine, table  # beside this script

TASKS = {"hopper": "configs/hopper.yaml", "halfcheetah": "configs/halfcheetah.yaml", "walker2d": "configs/walker2d.yaml",
         "ant": "configs/ant.yaml"}
# one option each, against the recipe; "all" turns on every one. Not here: lr_schedule linear, whose
# decay runs over the iterations, which a run of a step budget leaves open (see configs/halfcheetah.yaml)
VARIANTS = {
    "recipe": {},
    "normalised": {"normalize_observations": True},
    "gae": {"returns": "gae", "gae_lambda": 0.95},
    "log_std_-1": {"log_std_init": -1.0},
    "orthogonal": {"init": "orthogonal"},
    "tanh": {"bound_actions": "tanh"},
    "all": {"normalize_observations": True, "returns": "gae", "gae_lambda": 0.95, "log_std_init": -1.0,
            "init": "orthogonal"},
    # V's further rounds per iteration (value_epochs), at the recipe's value_lr and at Spinning Up's (80 at 1e-3)
    "value_epochs_10": {"value_epochs": 10},
    "value_epochs_80": {"value_epochs": 80, "value_lr": 1e-3},
}
LAST = 10  # iterations averaged for the score


def train(config, steps: int) -> dict:
    """Train until ``steps`` env steps; the last iterations' mean return and explained variance, the wall time."""
    from pgdist import Learner

    rows = []
    with Learner(config) as learner:
        start = time.perf_counter()
        taken = 0
        while taken < steps:
            row = learner.step()
            rows.append(row)
            taken += row["steps"]
        seconds = time.perf_counter() - start
    last = rows[-LAST:]
    explained = [row["explained_variance"] for row in last if row["explained_variance"] is not None]
    return {"score": statistics.fmean(row["return_mean"] for row in last), "seconds": seconds,
            "explained": median(explained), "iterations": len(rows), "steps": taken,
            "update_share": sum(row["update_seconds"] for row in rows) / seconds,
            # the update's time per V round (its Adam step counted in), with value_epochs > 1
            "round_ms": (1e3 * statistics.median(row["update_seconds"] for row in rows) / (config.value_epochs - 1)
                         if config.value_epochs > 1 else None)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["hopper", "halfcheetah"], choices=TASKS)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--steps", type=int, default=1_000_000, help="env steps per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="changes to every variant")
    args = parser.parse_args()
    from pgdist.config import Config

    common = config_overrides(parser, args.set)
    print_machine()
    with one_ray_instance():
        for task in args.tasks:
            recipe = ROOT / TASKS[task]
            if not recipe.exists():
                print(f"{task}: no recipe at {recipe.relative_to(ROOT)}; skipped", file=sys.stderr)
                continue
            results = {name: [] for name in args.variants}
            for seed in args.seeds:
                for name in args.variants:
                    config = Config.from_yaml(recipe, **{**VARIANTS[name], **common, "seed": seed, "iterations": 10**6})
                    results[name].append(train(config, args.steps))
                    result = results[name][-1]
                    print(f"  {task} {name} seed {seed}: {result['score']:,.0f} in {result['seconds']:.0f} s "
                          f"({result['steps']:,} steps)", file=sys.stderr, flush=True)
            print(f"\n{task}: mean training-batch return of the last {LAST} iterations at {args.steps:,} env steps, "
                  f"seeds {' '.join(map(str, args.seeds))}\n")
            base = median([r["score"] for r in results.get("recipe", [])])
            rows = []
            for name, runs in results.items():
                score = median([r["score"] for r in runs])
                rows.append([name, " ".join(number(r["score"]) for r in runs), number(score),
                             number(score - base) if name != "recipe" and base == base else "–",
                             number(median([r["explained"] for r in runs]), 2),
                             number(median([r["seconds"] for r in runs])),
                             f"{median([r['update_share'] for r in runs]):.0%}",
                             number(median([r["round_ms"] for r in runs]), 1)])
            table(["variant", "per seed", "median", "against the recipe", "explained variance", "seconds",
                   "update's share", "ms per V round"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

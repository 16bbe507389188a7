"""The gradient noise scale over training, and fixed N against adaptive N (``episodes_max``).

    .venv/bin/python benchmarks/noise_scale.py                                  # CartPole-v1 and Acrobot-v1, seeds 0-4
    .venv/bin/python benchmarks/noise_scale.py --envs CartPole-v1 --seeds 0     # one run of each kind
    .venv/bin/python benchmarks/noise_scale.py --envs Acrobot-v1 --seeds 0 --runs "fixed N=64" adaptive

For each environment, its recipe (configs/*.yaml: reward-to-go, standardised returns) is run
with the recipe's N, with two other fixed N, and with adaptive N starting from the recipe's
N, in this process on the local backend (no Ray: the comparison is of N, not of the backend).
Each run stops when an iteration's mean return reaches the recipe's stop_return, or after
--iterations. Per run it records every iteration's N, noise scale, environment steps and
seconds (``Learner.step``'s own timing, start-up excluded), and writes:

    OUT/noise_scale.csv     a row per iteration of every run
    OUT/noise_scale.md      per run: iterations, environment steps and seconds to the threshold
    OUT/noise_scale.png     the noise scale (solid) and N (dashed) over training, per environment

Times are those of whatever else runs on the machine: compare environment steps first.
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

from pgdist import Config, Learner, train

ROOT = Path(__file__).resolve().parent.parent
RECIPES = {"CartPole-v1": "configs/cartpole.yaml", "Acrobot-v1": "configs/acrobot.yaml"}


def kinds(recipe: Config) -> dict[str, dict]:
    """The runs to compare, as Config overrides: the recipe's N, 4 and 16 times it, and adaptive N from it up to 64 times it."""
    n = recipe.episodes
    return {
        f"fixed N={n}": {},
        f"fixed N={4 * n}": {"episodes": 4 * n},
        f"fixed N={16 * n}": {"episodes": 16 * n},
        f"adaptive N from {n}": {"episodes_max": 64 * n},
    }


def run(config: Config) -> list[dict]:
    with Learner(config) as learner:
        return train(learner)  # until stop_return or config.iterations


def summary(name: str, rows: list[dict]) -> dict:
    solved = rows[-1]["stopped"]
    noise = [row["noise_scale"] for row in rows if row["noise_scale"] is not None]
    return {
        "run": name,
        "solved": solved,
        "iterations": len(rows),
        "env steps": sum(row["steps"] for row in rows),
        "seconds": round(sum(row["seconds"] for row in rows), 1),
        "noise scale first / last": f"{noise[0]:.0f} / {noise[-1]:.0f}" if noise else "-",
        "N first / last": f"{rows[0]['episodes']} / {rows[-1]['episodes']}",
    }


def plot(results: dict[str, dict[tuple[str, int], list[dict]]], out: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6 * len(results), 4))
    axes = figure.subplots(1, len(results), squeeze=False)[0]
    for axis, (env, runs) in zip(axes, results.items()):
        for index, (name, seed) in enumerate(sorted(runs)):
            rows = runs[(name, seed)]
            colour = f"C{sorted({n for n, _ in runs}).index(name)}"
            iterations = [row["iteration"] for row in rows]
            noise = [row["noise_scale"] if row["noise_scale"] is not None else float("nan") for row in rows]
            axis.plot(iterations, noise, color=colour, label=name if seed == min(s for _, s in runs) else None)
            axis.plot(iterations, [row["episodes"] for row in rows], color=colour, linestyle="--", alpha=0.6)
        axis.set_yscale("log")
        axis.set_title(f"{env}: noise scale (solid) and N (dashed)")
        axis.set_xlabel("iteration")
        axis.set_ylabel("episodes")
        axis.legend(fontsize="small")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--iterations", type=int, default=100, help="at most, per run")
    parser.add_argument("--runs", nargs="+", default=["fixed", "adaptive"],
                        help="which runs: names starting with these words, e.g. 'fixed N=64' or 'adaptive'")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    os.chdir(ROOT)
    args.out.mkdir(parents=True, exist_ok=True)
    results, table = {}, []
    with open(args.out / "noise_scale.csv", "w", newline="") as file:
        writer = None
        for env in args.envs:
            recipe = Config.from_yaml(RECIPES[env], backend="local", iterations=args.iterations)
            results[env] = {}
            for seed in args.seeds:
                for name, overrides in kinds(recipe).items():
                    if not any(name.startswith(prefix) for prefix in args.runs):
                        continue
                    rows = run(recipe.replace(seed=seed, **overrides))
                    results[env][(name, seed)] = rows
                    table.append({"env": env, "seed": seed, **summary(name, rows)})
                    print(table[-1], flush=True)
                    for row in rows:
                        if writer is None:
                            writer = csv.DictWriter(file, fieldnames=["env", "seed", "run", *row])
                            writer.writeheader()
                        writer.writerow({"env": env, "seed": seed, "run": name, **row})
    columns = list(table[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in table]
    (args.out / "noise_scale.md").write_text("\n".join(lines) + "\n")
    plot(results, args.out / "noise_scale.png")
    print(f"wrote {args.out / 'noise_scale.md'}, .csv, .png")


if __name__ == "__main__":
    main()

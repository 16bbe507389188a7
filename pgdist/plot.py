"""Learning curves: return per iteration of one or several runs, in one PNG."""

from __future__ import annotations

from pathlib import Path

from pgdist.runs import read_metrics


def plot_runs(folders: list[Path], out: Path) -> Path:
    from matplotlib.figure import Figure  # no pyplot: no global state, so runs may draw from any thread

    figure = Figure(figsize=(7, 4))
    axis = figure.subplots()
    for folder in folders:
        rows = read_metrics(folder)
        iterations = [int(row["iteration"]) for row in rows]
        axis.plot(iterations, [float(row["return_mean"]) for row in rows], label=Path(folder).name)
        axis.fill_between(
            iterations,
            [float(row["return_min"]) for row in rows],
            [float(row["return_max"]) for row in rows],
            alpha=0.15,
        )
    axis.set_xlabel("iteration (one Adam step on N episodes)")
    axis.set_ylabel("episode return (mean, min to max)")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    return out

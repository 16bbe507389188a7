"""Learning curves of one or several runs in one PNG: the return per iteration, and beneath it the
measured gradient noise scale with N on the same axis, so that N far below or far above it shows."""

from __future__ import annotations

from pathlib import Path

from pgdist.metrics import read_metrics


def plot_runs(folders: list[Path], out: Path) -> Path:
    from matplotlib.figure import Figure  # no pyplot: no global state, so runs may draw from any thread
    from matplotlib.ticker import FuncFormatter

    figure = Figure(figsize=(7, 6))
    returns, noise = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    for index, folder in enumerate(folders):
        rows = read_metrics(folder)
        iterations = [int(row["iteration"]) for row in rows]
        colour = f"C{index % 10}"
        returns.plot(iterations, [float(row["return_mean"]) for row in rows], color=colour, label=Path(folder).name)
        returns.fill_between(
            iterations,
            [float(row["return_min"]) for row in rows],
            [float(row["return_max"]) for row in rows],
            color=colour,
            alpha=0.15,
        )
        noise.plot(iterations, [_number(row.get("noise_scale")) for row in rows], color=colour)
        noise.plot(iterations, [int(row["episodes"]) for row in rows], color=colour, linestyle="--")
    returns.set_ylabel("episode return (mean, min to max)")
    returns.legend()
    noise.set_yscale("log")
    for ticks in (noise.yaxis.set_major_formatter, noise.yaxis.set_minor_formatter):
        ticks(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    noise.set_ylabel("episodes")
    noise.set_xlabel("iteration (one Adam step on N episodes)")
    noise.plot([], [], color="grey", label="noise scale tr(Σ)/|G|²")
    noise.plot([], [], color="grey", linestyle="--", label="N")
    noise.legend(fontsize="small")
    for axis in (returns, noise):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    out = Path(out)
    partial = out.with_name(out.name + ".tmp")  # a reader (or a full disk) never meets half a picture
    try:
        figure.savefig(partial, dpi=100, format=out.suffix.lstrip(".") or "png")
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return out


def _number(text: str | None) -> float:
    """A CSV cell as a float; an empty one (no estimate that iteration, or an older run) as NaN, a gap."""
    return float(text) if text else float("nan")

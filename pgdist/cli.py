"""The command line: ``pgdist train``, ``pgdist plot``."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

from pgdist.config import Config, ConfigError, fields


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, os.getcwd())  # 'module:Class' envs import from here, as with python -m
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.command(args)
    except ConfigError as error:
        print(f"pgdist: error: {error}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pgdist", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    train_parser = commands.add_parser(
        "train", help="train a policy", description="Train a policy with REINFORCE (Eq. 23) over Ray workers."
    )
    add_config_flags(train_parser)
    train_parser.add_argument("--out", type=Path, default=None, help="run folder (default: runs/<time>)")
    train_parser.set_defaults(command=train)
    plot_parser = commands.add_parser(
        "plot", help="plot learning curves", description="Plot the return per iteration of one or more runs."
    )
    plot_parser.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="run folders (with metrics.csv)")
    plot_parser.add_argument("--out", type=Path, default=None, help="PNG to write (default: RUN/curve.png)")
    plot_parser.set_defaults(command=plot)
    return parser


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per Config field, with the field's own help and default."""
    for name, field in fields().items():
        flag = "--" + name.replace("_", "-")
        help_text = f"{field.metadata['help']} (default: {field.default})"
        if name == "hidden":
            parser.add_argument(flag, type=int, nargs="+", default=field.default, help=help_text)
        else:
            kind = {int: int, float: float}.get(type(field.default), str)
            if name == "workers":
                kind = int
            parser.add_argument(flag, type=kind, default=field.default, help=help_text)


def config_from_args(args: argparse.Namespace) -> Config:
    return Config(**{name: getattr(args, name) for name in fields()})


def train(args: argparse.Namespace) -> int:
    from pgdist.learner import Learner
    from pgdist.runs import MetricsFile, save_checkpoint

    config = config_from_args(args)
    out = args.out or Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    metrics_file = MetricsFile(out)
    try:
        with Learner(config) as learner:
            print(f"pgdist: {config.env}, N={config.episodes}, {learner.backend.workers} worker(s), run folder {out}")
            for _ in range(config.iterations):
                metrics = learner.step()
                metrics_file.write(metrics)
                print(progress_line(metrics), flush=True)
            path = save_checkpoint(learner, out)
    finally:
        metrics_file.close()
    print(f"pgdist: saved {path}")
    return 0


def plot(args: argparse.Namespace) -> int:
    from pgdist.plot import plot_runs

    out = args.out or args.runs[0] / "curve.png"
    print(f"pgdist: wrote {plot_runs(args.runs, out)}")
    return 0


def progress_line(metrics: dict) -> str:
    return (
        f"iteration {metrics['iteration']:>5}  return {metrics['return_mean']:9.2f}  "
        f"steps {metrics['steps']:>8}  {metrics['steps'] / metrics['seconds']:>10.0f} steps/s"
    )


if __name__ == "__main__":
    sys.exit(main())

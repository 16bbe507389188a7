"""The command line: ``pgdist train``, ``pgdist eval``, ``pgdist plot``."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

from pgdist.config import Config, ConfigError, coerce, fields, read_yaml


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
    eval_parser = commands.add_parser(
        "eval", help="evaluate a trained policy", description="Run a run's policy for some episodes, report its return."
    )
    eval_parser.add_argument("run", type=Path, metavar="RUN", help="run folder (with checkpoint.pt)")
    eval_parser.add_argument("--episodes", type=int, default=100, help="episodes to run (default: 100)")
    eval_parser.add_argument("--greedy", action="store_true",
                             help="take the most probable action (the mean, for continuous actions) instead of sampling")
    eval_parser.add_argument("--seed", type=int, default=12345, help="seed of the evaluation episodes (default: 12345)")
    eval_parser.set_defaults(command=evaluate_run)
    return parser


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per Config field, with the field's own help and default; they override --config."""
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="YAML file of Config fields (e.g. configs/cartpole.yaml); flags override it")
    for name, field in fields().items():
        flag = "--" + name.replace("_", "-")
        help_text = f"{field.metadata['help']} (default: {field.default})"
        if field.type == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            nargs = "+" if name == "hidden" else None
            parser.add_argument(flag, nargs=nargs, default=None, metavar=name.upper(), help=help_text)


def config_from_args(args: argparse.Namespace) -> Config:
    """The --config file's values, then the flags given on the command line over them."""
    values = read_yaml(args.config) if args.config else {}
    for name in fields():
        value = getattr(args, name)
        if value is not None:
            values[name] = coerce(name, value, where=f"--{name.replace('_', '-')}: ")
    return Config(**values)


def train(args: argparse.Namespace) -> int:
    from pgdist.learner import Learner
    from pgdist.runs import MetricsFile, save_checkpoint

    config = config_from_args(args)
    out = args.out or Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(config.to_yaml())
    metrics_file = MetricsFile(out)
    try:
        with Learner(config) as learner:
            print(f"pgdist: {config.env}, N={config.episodes}, {learner.backend.workers} worker(s), run folder {out}")
            for _ in range(config.iterations):
                metrics = learner.step()
                metrics_file.write(metrics)
                print(progress_line(metrics), flush=True)
                if config.stop_return is not None and metrics["return_mean"] >= config.stop_return:
                    print(f"pgdist: mean return {metrics['return_mean']:.2f} >= stop_return {config.stop_return}")
                    break
            path = save_checkpoint(learner, out)
    finally:
        metrics_file.close()
    print(f"pgdist: saved {path}")
    return 0


def evaluate_run(args: argparse.Namespace) -> int:
    from pgdist.evaluate import evaluate
    from pgdist.runs import load_run

    config, policy = load_run(args.run)
    returns = evaluate(config, policy, args.episodes, greedy=args.greedy, seed=args.seed)
    actions = "greedy" if args.greedy else "sampled"
    print(f"mean return {returns.mean():.2f} ± {returns.std():.2f} over {len(returns)} episodes ({actions} actions)")
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

"""The command line: its parser and the commands ``pgdist train``, ``resume``, ``eval``, ``export``, ``plot``, ``info``.

A run's signals are interrupts.py's, its display progress.py's."""

from __future__ import annotations

import argparse
import atexit
import os
import signal
import sys
import time
import traceback
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pgdist.backends import ClusterError, WorkerError
from pgdist.config import Config, ConfigError, coerce, fields, read_yaml
from pgdist.envs import EnvError, EnvSpaces, env_spaces
from pgdist.export import ExportError
from pgdist.interrupts import Interrupts
from pgdist.policy import PolicyError
from pgdist.progress import Progress, WarningLines
from pgdist.runs import RunError
from pgdist.training import ExtraMissing
from pgdist.vector_envs import check_vector_env
from pgdist.video import VideoError

# errors a user can act on: one line, exit code 2 (a traceback only with --debug)
USER_ERRORS = (ConfigError, RunError, ClusterError, WorkerError, EnvError, PolicyError, ExportError, VideoError,
               ExtraMissing)


def run() -> None:
    """The ``pgdist`` command: main(), then exit without tearing the interpreter down.

    By the time main() returns, pgdist has closed every file it wrote and stopped what it
    started; unloading torch and the rest module by module would add 0.5-1 s to every
    command here. The exit handlers still run.
    """
    code = main()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, os.getcwd())  # 'module:Class' envs import from here, as with python -m
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.debug:
        warnings.showwarning = WarningLines().show
    try:
        return args.command(args)
    except USER_ERRORS as error:
        if args.debug:
            raise
        print(f"pgdist: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # outside a run's iterations (which end in their own words): eval, plot, a start
        if args.debug:
            raise
        print("pgdist: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pgdist", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    train_parser = commands.add_parser(
        "train", help="train a policy", description="Train a policy with REINFORCE (Eq. 23) over Ray workers."
    )
    add_config_flags(train_parser)
    train_parser.add_argument("--out", type=Path, default=None, help="run folder (default: runs/<date>-<time>)")
    train_parser.add_argument("--wandb", default=None, metavar="PROJECT",
                              help="also log every iteration to this Weights & Biases project (the wandb extra; "
                              "WANDB_MODE=offline logs without a network)")
    add_checkpoint_flag(train_parser)
    train_parser.set_defaults(command=train)
    resume_parser = commands.add_parser(
        "resume", help="continue a run from its latest checkpoint",
        description="Continue a run from its latest checkpoint: theta, Adam state, iteration and the "
        "sampling counter, so that the result is the same as an uninterrupted run.",
    )
    resume_parser.add_argument("run", type=Path, metavar="RUN", help="run folder")
    resume_parser.add_argument("--from", dest="checkpoint", type=Path, default=None, metavar="FILE",
                               help="continue from this checkpoint of the run (e.g. RUN/checkpoint-000010.pt) "
                               "instead of RUN/checkpoint.pt; later metrics rows are dropped")
    add_checkpoint_flag(resume_parser)
    resume_parser.set_defaults(command=resume)
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
    eval_parser.add_argument("--video", type=Path, default=None, metavar="FILE",
                             help="record 3 of the episodes (or --episodes, if fewer) into FILE (.mp4 or .gif; "
                             "the video extra)")
    eval_parser.set_defaults(command=evaluate_run)
    export_parser = commands.add_parser(
        "export", help="the trained policy as a standalone ONNX or TorchScript file",
        description="Write the run's policy as a file that maps a batch of observations to each action's "
        "probability (discrete actions) or the mean action (continuous): no pgdist needed to run it.",
    )
    export_parser.add_argument("run", type=Path, metavar="RUN", help="run folder (with checkpoint.pt)")
    export_parser.add_argument("--format", choices=["onnx", "torchscript"], default="onnx",
                               help="onnx (the onnx extra) or torchscript (default: onnx)")
    export_parser.add_argument("--out", type=Path, default=None, help="file to write (default: RUN/policy.onnx or .pt)")
    export_parser.set_defaults(command=export_run)
    info_parser = commands.add_parser(
        "info", help="versions, environments, and a cluster's nodes",
        description="Print versions, the environments pgdist can find, and (with --address) a Ray cluster's nodes.",
    )
    info_parser.add_argument("--address", default=None, help="a Ray cluster (HOST:PORT) to list the nodes and CPUs of")
    info_parser.set_defaults(command=info)
    return parser


def add_checkpoint_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint-every", type=int, default=10, metavar="K",
                        help="keep a checkpoint-NNNNNN.pt every K iterations; checkpoint.pt is always the latest "
                        "(default: 10)")


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
    from pgdist.runs import Run

    config = config_from_args(args)
    spaces = env_spaces(config.env)  # an env that does not exist or that pgdist cannot use: before the run folder is made
    check_vector_env(config.env, config.vector_env)
    with Interrupts() as interrupts:
        run = Run.create(args.out or Path("runs") / time.strftime("%Y%m%d-%H%M%S"), config, args.checkpoint_every)
        return run_iterations(run, None, interrupts, args.debug, args.wandb, spaces)


def resume(args: argparse.Namespace) -> int:
    from pgdist.runs import Run

    with Interrupts() as interrupts:
        run, state = Run.resume(args.run, args.checkpoint_every, args.checkpoint)
        return run_iterations(run, state, interrupts, args.debug)


def run_iterations(run, state: dict | None, interrupts: Interrupts, debug: bool, wandb: str | None = None,
                   spaces: EnvSpaces | None = None) -> int:
    """Train until ``config.iterations``, ``stop_return`` or a signal, recording every iteration in the run folder."""
    from pgdist.learner import Learner

    with ThreadPoolExecutor(1) as background:
        closed = None
        try:
            with Learner(run.config, spaces=spaces) as learner:
                interrupts.install()  # again: ray.init sets a SIGTERM handler of its own
                finished = iterate(learner, run, state, interrupts, wandb)
                interrupts.ending()
                closed = background.submit(run.close)  # the last curve is drawn while the workers stop
        except KeyboardInterrupt:  # Interrupted, or what Ray makes of it when it comes in ray.wait
            finished = False
            if debug:
                traceback.print_exc()
        except SystemExit as error:  # Ray's SIGTERM handler, in place while ray.init runs
            if error.code != signal.SIGTERM:
                raise
            interrupts.signals.append(signal.SIGTERM)
            finished = False
        finally:
            if closed is None:  # training failed or was stopped at once: close the run's files
                run.close()
        if closed is not None:
            closed.result()
    if interrupts.signals and not finished:
        print(interrupts.summary(run), file=sys.stderr)
        return 128 + interrupts.signals[-1]
    print(f"pgdist: saved {run.folder / 'checkpoint.pt'}")
    return 0


def iterate(learner, run, state: dict | None, interrupts: Interrupts, wandb: str | None = None) -> bool:
    """Iterations until the run is finished (True) or a signal came (False): pgdist.training.train,
    with the run folder, the progress display and the signals (and W&B) as its callbacks."""
    from pgdist.training import WandbLogger, train

    config = run.config
    if state is not None:
        learner.load_state_dict(state)
    episodes = (f"N={config.episodes}" if config.episodes_max is None
                else f"N from {config.episodes}, adaptive up to {config.episodes_max}")
    print(f"pgdist: {config.env}, {episodes}, {learner.backend.workers} worker(s), run folder {run.folder}")
    callbacks = [run, Progress(config.iterations, learner.version), interrupts]
    if wandb:
        callbacks.append(WandbLogger(wandb, folder=run.folder, name=run.folder.name))
    history = train(learner, callbacks)
    print(f"pgdist: {learner.noise_summary()}")
    if learner.goodput is not None:
        print(f"pgdist: {learner.goodput.summary()}")
    stopped = bool(history) and history[-1]["stopped"]
    if stopped:
        print(f"pgdist: mean return {history[-1]['return_mean']:.2f} >= stop_return {config.stop_return}; "
              f"kept the policy that reached it (theta version {learner.version})")
    return stopped or learner.version >= config.iterations


def evaluate_run(args: argparse.Namespace) -> int:
    from pgdist.evaluate import evaluate
    from pgdist.runs import load_run

    config, policy = load_run(args.run)
    actions = "greedy" if args.greedy else "sampled"
    if args.video:
        from pgdist.video import record_video

        path, returns = record_video(config.env, policy, args.video, min(3, args.episodes), args.greedy, args.seed)
        print(f"pgdist: wrote {path}: {len(returns)} episodes, returns {', '.join(f'{r:.1f}' for r in returns)} "
              f"({actions} actions)")
        return 0
    returns = evaluate(config, policy, args.episodes, greedy=args.greedy, seed=args.seed)
    print(f"mean return {returns.mean():.2f} ± {returns.std():.2f} over {len(returns)} episodes ({actions} actions)")
    if set(returns.tolist()) <= {0.0, 1.0}:  # FrozenLake's kind: reward 1 for reaching the goal, else 0
        print(f"success rate {returns.mean():.2f}: every return is 0 or 1, so the mean return is the share of "
              "episodes that reached the goal")
    return 0


def export_run(args: argparse.Namespace) -> int:
    import torch

    from pgdist.export import FORMATS, export
    from pgdist.sampling import policy_input
    from pgdist.runs import load_run_and_spaces

    config, policy, spaces = load_run_and_spaces(args.run)
    observation = policy_input(spaces.observation[None], torch.float32)  # an image in its own dtype
    out = args.out or args.run / f"policy{FORMATS[args.format]}"
    print(f"pgdist: wrote {export(policy, observation, args.format, out)} "
          f"(observations [batch, {', '.join(map(str, observation.shape[1:]))}] -> actions)")
    return 0


def plot(args: argparse.Namespace) -> int:
    from pgdist.plot import plot_runs

    out = args.out or args.runs[0] / "curve.png"
    print(f"pgdist: wrote {plot_runs(args.runs, out)}")
    return 0


def info(args: argparse.Namespace) -> int:
    import importlib.metadata
    import platform

    import gymnasium

    for package in ("pgdist", "torch", "ray", "gymnasium", "numpy"):
        print(f"{package:<10} {importlib.metadata.version(package)}")
    print(f"{'python':<10} {platform.python_version()}")
    classic = [name for name in gymnasium.registry if "/" not in name and ":" not in name]
    print(f"gymnasium environments: {len(gymnasium.registry)} registered, e.g. {', '.join(sorted(classic)[:6])}")
    local = sorted(_protocol_envs(Path("envs")))
    print(f"tutorial-protocol environments in ./envs: {', '.join(local) if local else 'none'}")
    if args.address:
        from pgdist.ray import cluster_nodes

        nodes = cluster_nodes(args.address)
        print(f"Ray cluster at {args.address}: {len(nodes)} node(s), {sum(cpus for _, cpus in nodes):g} CPUs")
        for address, cpus in nodes:
            print(f"  {address}  {cpus:g} CPUs")
    return 0


def _protocol_envs(folder: Path):
    """``module:Class`` names of the classes in a folder's modules that declare their actions."""
    import importlib
    import inspect

    for path in sorted(folder.glob("*.py")):
        if path.stem.startswith("_"):
            continue
        module = importlib.import_module(f"{folder.name}.{path.stem}")
        for name, value in vars(module).items():
            if inspect.isclass(value) and value.__module__ == module.__name__ and (
                hasattr(value, "n_actions") or hasattr(value, "action_space")
            ):
                yield f"{module.__name__}:{name}"


if __name__ == "__main__":
    sys.exit(main())

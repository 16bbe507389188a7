"""Steps per second: the tutorial's loop, an env's raw ceiling, pgdist's Learner, and a whole command.

    .venv/bin/python benchmarks/throughput.py                    # CartPole-v1, N = 1000 4000 32000, 1 .. CPUs workers
    .venv/bin/python benchmarks/throughput.py --quick            # a short run
    .venv/bin/python benchmarks/throughput.py --episodes 32000 --workers 1 2 --no-local   # the 2-core targets
    .venv/bin/python benchmarks/throughput.py --worker-ratio 5   # one worker against its raw ceiling, per estimator
    .venv/bin/python benchmarks/throughput.py --config configs/hopper.yaml --worker-ratio 3 --episodes 64
    .venv/bin/python benchmarks/throughput.py --weak 16000 --layouts rule 2000/512 8000/2048
    .venv/bin/python benchmarks/throughput.py --workers 0 --no-local --train-episodes 4000 --train-workers 2 \
        --train-iterations 6                                     # a short run's command against the tutorial's loop

CartPole-v1 with the tutorial's 8-8 policy and lr 1e-3, or ``--config``'s recipe (its env, policy,
estimator and layout), either with ``--set`` overrides of Config fields:

(a) the tutorial's loop (``pgdist.reference.train``, CartPole-v1, N = 10): per-step autograd, Eq. 23, Adam;
(b) raw ceilings: the env's own vector env (gymnasium's; ale-py's for ALE ids) in one process, alone
    (actions drawn beforehand) and with the workers' batched draw (``pgdist.policy.actor``), no
    learning; the best of 4 repeats at each width;
(c) ``Learner.step()`` (gradient and optimizer step included) on the local backend and on Ray workers
    (all actors of one Ray instance) at each N: steps/s, per worker over the raw ceiling at its
    width, over one worker; the first iteration (with Ray, the actors' start-up) apart; the learner's
    own time (``step()`` less the time inside the backend's ``sample``);
(d) ``pgdist train --episodes N --workers W --iterations I`` as a user runs it (its own Ray instance):
    the median iteration after the first, and once every worker took part (metrics' ``workers``);
and a summary of the ratios issue 10 set targets for.

``--worker-ratio R``: one worker (local backend) against its raw ceiling at its width, per estimator
(or the recipe's), R rounds in turn, in wall and CPU time; and what separates them: the share of the
copy-steps a chunk keeps (dropped episodes' and autoreset steps are not) and its gradient passes' CPU.
``--weak K``: weak scaling alone, N = K episodes per worker at each ``--workers`` count, ``--layouts`` in turn.

Steps are those of the episodes the gradient uses: autoreset steps and dropped episodes' are not counted.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import gymnasium
import numpy as np
import torch

from pgdist import Config, Learner, Policy
from pgdist.envs import atari_vector_env, env_actions, env_spaces, is_atari, make_env, observation_rows
from pgdist.layout import layout
from pgdist.learner import make_backend
from pgdist.policy import actor, make_policy
from pgdist.sampling import policy_input
from pgdist.reference import train as reference_train
from pgdist.worker import RolloutWorker

from harness import (Meter, config_overrides, in_turn, median, number, one_ray_instance, pair_ratios,  # beside this
                     print_machine, ratios, run_command, table, timed, vector_env_steps)

ENV = "CartPole-v1"
HIDDEN = (8, 8)  # the tutorial's
ESTIMATORS = {"Eq. 23 (total return)": {}, "reward_to_go": {"returns": "reward_to_go"},
              "value baseline": {"baseline": "value"}, "standardize": {"standardize": True}}


def base_config(args) -> Config:
    config = Config.from_yaml(args.config) if args.config else Config(env=args.env, lr=1e-3, hidden=HIDDEN)
    return config.replace(seed=0, **args.set)


# --- (a) the tutorial's loop ------------------------------------------------------------------


def run_reference(iterations: int) -> float:
    """Steps/s of the tutorial's own loop on CartPole-v1, N = 10, after one warm-up iteration."""
    torch.manual_seed(0)
    policy, env, steps = Policy(4, 2, HIDDEN), make_env(ENV), Meter()
    env.reset(seed=0)
    reference_train(env, policy, n_episodes=1, N=10)
    with steps.on(env, "step"), timed() as timing:
        reference_train(env, policy, n_episodes=iterations, N=10)
    print("## (a) the tutorial's loop (pgdist.reference.train, CartPole-v1, N = 10, Adam lr 1e-3)\n")
    table(["iterations", "env steps", "mean episode length", "s / iteration", "steps/s"],
          [[iterations, steps.calls, number(steps.calls / (10 * iterations), 1), number(timing.wall / iterations, 4),
            number(steps.calls / timing.wall)]])
    return steps.calls / timing.wall


# --- (b) raw ceilings --------------------------------------------------------------------------


@dataclass
class Raw:
    steps: int  # autoreset steps not counted
    copy_steps: int  # locksteps times the width
    seconds: float
    cpu_seconds: float

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds

    @property
    def steps_per_cpu_second(self) -> float:
        return self.steps / self.cpu_seconds


def raw_env(name: str, width: int):
    """The env's own vector env, nothing of pgdist's around it."""
    return atari_vector_env(name, width, None) if is_atari(name) else gymnasium.make_vec(name, num_envs=width)


def run_raw(config: Config, width: int, seconds: float, policy: bool = True, repeats: int = 4) -> Raw:
    """The best of ``repeats`` runs of ``seconds / repeats`` each (after one not counted), so that a burst
    of other work on the machine does not set the ceiling."""
    spaces = env_spaces(config.env)
    net = make_policy(spaces.observation_shape, spaces.action_space, config.hidden, 0)
    act, dtype = actor(net, torch.Generator().manual_seed(0)), next(net.parameters()).dtype
    env = raw_env(config.env, width)
    rows, action_space = observation_rows(env.single_observation_space), env.single_action_space
    env.action_space.seed(0)
    drawn = [env.action_space.sample() for _ in range(64)]
    states, _ = env.reset(seed=0)
    resetting = np.zeros(width, dtype=bool)
    best = None
    with torch.inference_mode():
        for repeat in range(repeats + 1):
            steps = locksteps = 0
            with timed() as timing:
                start = time.perf_counter()
                while time.perf_counter() - start < seconds / repeats:
                    for _ in range(20):
                        if policy:
                            actions = env_actions(action_space, act(policy_input(rows(states), dtype)).numpy())
                        else:
                            actions = drawn[locksteps % 64]
                        states, _, terminated, truncated, _ = env.step(actions)
                        steps += width - int(np.count_nonzero(resetting))  # an autoreset step is no env step
                        resetting = terminated | truncated
                        locksteps += 1
            result = Raw(steps, locksteps * width, timing.wall, timing.cpu)
            if repeat and (best is None or result.steps_per_second > best.steps_per_second):
                best = result
    env.close()
    return best


def raw_scaling(config: Config, width: int, seconds: float, processes: int) -> float:
    """The raw ceiling in ``processes`` processes at once over it in one: what the machine gives a second
    process (shared caches, memory bandwidth, a VM's cores). No number of workers scales better."""
    alone = run_raw(config, width, seconds, repeats=1).steps_per_second
    with multiprocessing.get_context("spawn").Pool(processes, torch.set_num_threads, (1,)) as pool:
        together = pool.starmap(run_raw, [(config, width, seconds, True, 1)] * processes)
    return sum(result.steps_per_second for result in together) / alone


def print_raw(config: Config, raw: dict[int, tuple[Raw, Raw]]) -> None:
    print(f"## (b) raw ceilings: {config.env}'s own vector env in one process, alone and with the policy's draw\n")
    table(["width", "env alone steps/s", "env + policy steps/s", "policy's share of a lockstep"],
          [[width, number(alone.steps_per_second), number(acting.steps_per_second),
            f"{1 - acting.steps_per_second / alone.steps_per_second:.0%}"] for width, (alone, acting) in raw.items()])


# --- (c) pgdist's Learner ------------------------------------------------------------------------


@dataclass
class Iteration:
    seconds: float  # Learner.step()
    steps: int
    backend_seconds: float  # inside backend.sample: running chunks, or waiting for them

    @property
    def learner_seconds(self) -> float:
        return self.seconds - self.backend_seconds


@dataclass
class Row:
    backend: str
    workers: int
    config: Config
    first: Iteration
    measured: list[Iteration]

    def total(self, name: str) -> float:
        return sum(getattr(iteration, name) for iteration in self.measured)

    def mean(self, name: str) -> float:
        return self.total(name) / len(self.measured)

    @property
    def steps_per_second(self) -> float:
        return self.total("steps") / self.total("seconds")


class TimedBackend:
    """A backend whose ``sample`` is timed: the part of an iteration that runs chunks or waits for them."""

    def __init__(self, backend):
        self.backend, self.seconds = backend, 0.0

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def sample(self, theta, version, chunks):
        results = self.backend.sample(theta, version, chunks)
        while True:
            start = time.perf_counter()
            result = next(results, None)
            self.seconds += time.perf_counter() - start
            if result is None:
                return
            yield result


def measure(config: Config, iterations: int, min_seconds: float) -> Row:
    """``Learner.step()`` once (its start-up), then at least ``iterations`` times and ``min_seconds``."""
    backends = []

    def backend(*args):
        backends.append(TimedBackend(make_backend(*args)))
        return backends[-1]

    with Learner(config, backend=backend) as learner:
        def step() -> Iteration:
            backends[0].seconds = 0.0
            metrics = learner.step()
            return Iteration(metrics["seconds"], metrics["steps"], backends[0].seconds)

        first = step()
        if hasattr(learner.backend, "nodes"):
            learner.backend.nodes()  # every actor up: measure the steady state
        measured, start = [], time.perf_counter()
        while len(measured) < iterations or time.perf_counter() - start < min_seconds:
            measured.append(step())
        row = Row(config.backend, learner.backend.workers, config, first, measured)
    print(f"  measured {config.backend}, {row.workers} worker(s), N={config.episodes}: {len(measured)} iterations, "
          f"{row.steps_per_second:,.0f} steps/s", file=sys.stderr, flush=True)
    return row


def run_pgdist(args, base: Config) -> list[Row]:
    rows = []
    if not args.no_local:
        rows += [measure(base.replace(episodes=n, backend="local", workers=1), args.iterations, args.min_seconds)
                 for n in args.episodes]
    if args.workers:
        with one_ray_instance():
            rows += [measure(base.replace(episodes=n, backend="ray", workers=w), args.iterations, args.min_seconds)
                     for w in args.workers for n in args.episodes]
    return rows


def find(rows: list[Row], backend: str, workers: int, episodes: int) -> Row | None:
    return next((r for r in rows if (r.backend, r.workers, r.config.episodes) == (backend, workers, episodes)), None)


def ratio(value: float, base: float | None) -> str:
    return "" if not base else f"{value / base:.2f}"


def print_pgdist(rows: list[Row], raw: dict[int, tuple[Raw, Raw]]) -> None:
    print("## (c) pgdist: Learner.step(), gradient and optimizer step included\n")
    print("per worker / raw: steps/s per worker over the raw ceiling (env + policy) at the row's width; "
          "/ 1 worker: over the same backend's 1-worker row at the same N; learner: step() less the time "
          "inside backend.sample (theta out, the chunks' sums added, the optimizer step)\n")
    body = []
    for row in rows:
        cut = layout(row.config)
        ceiling = raw.get(cut.envs_per_chunk, (None, None))[1]
        one = find(rows, row.backend, 1, row.config.episodes)
        body.append([row.backend, row.workers, row.config.episodes,
                     f"{cut.chunks(row.config.episodes)} × {cut.chunk_episodes} on {cut.envs_per_chunk}",
                     len(row.measured), number(row.mean("seconds"), 3), number(row.steps_per_second),
                     ratio(row.steps_per_second / row.workers, ceiling and ceiling.steps_per_second),
                     ratio(row.steps_per_second, one and one.steps_per_second), number(row.first.seconds, 2),
                     f"{1e3 * row.mean('learner_seconds'):.2f} ({row.total('learner_seconds') / row.total('seconds'):.1%})"])
    table(["backend", "workers", "N", "chunks × episodes on copies", "iterations", "s / iteration", "steps/s",
           "per worker / raw", "/ 1 worker", "first iteration s", "learner ms (share)"], body)


# --- (d) a whole command -------------------------------------------------------------------------


def train_command(args, episodes: int, workers: int, reference: float) -> float:
    """``pgdist train`` with the env (or recipe) and every setting but N, workers and iterations its default;
    its median iteration after the first, over the tutorial's loop."""
    words = ["--config", str(args.config)] if args.config else ["--env", args.env]
    words += ["--episodes", str(episodes), "--workers", str(workers), "--iterations", str(args.train_iterations)]
    with tempfile.TemporaryDirectory() as folder:
        result = run_command([sys.executable, "-m", "pgdist.cli", "train", *words, "--out", f"{folder}/run"])
        if result.returncode != 0:
            raise SystemExit(f"pgdist train {' '.join(words)} exited {result.returncode}:\n{result.tail()}")
        with open(f"{folder}/run/metrics.csv", newline="") as file:
            metrics = list(csv.DictReader(file))
    speeds = [float(m["steps"]) / float(m["seconds"]) for m in metrics]
    after_first = median(speeds[1:])
    steady = median([speed for speed, m in zip(speeds, metrics) if int(m["workers"]) == workers])
    print("## (d) a whole command: pgdist train, its own Ray instance\n")
    table(["command", "whole command s", "workers by iteration", "median iteration after the first: steps/s",
           "/ the tutorial's loop", f"median iteration with all {workers} workers: steps/s", "/ the tutorial's loop"],
          [[f"`pgdist train {' '.join(words)}`", number(result.seconds, 1), " ".join(m["workers"] for m in metrics),
            number(after_first), number(after_first / reference), number(steady), number(steady / reference)]])
    return after_first


def print_summary(args, base: Config, reference: float, raw, rows: list[Row], train: float | None) -> None:
    """The ratios issue 10 set targets for, at the largest N."""
    episodes, most = max(args.episodes), max(args.workers, default=0)
    lines = []
    if train:
        lines.append(("the whole command (d), median iteration after the first / the tutorial's loop", train / reference))
    for row in (find(rows, "ray", most, episodes), find(rows, "local", 1, episodes)):
        if row:
            lines.append((f"pgdist ({row.backend}, {row.workers} worker(s), N={episodes}) / the tutorial's loop",
                          row.steps_per_second / reference))
    many, one = find(rows, "ray", most, episodes), find(rows, "ray", 1, episodes)
    if many and one and most > 1:
        width = layout(many.config).envs_per_chunk
        lines.append((f"{most} workers / 1 worker (ray, N={episodes})", many.steps_per_second / one.steps_per_second))
        lines.append((f"the raw ceiling at width {width} in {most} processes at once / in one",
                      raw_scaling(base, width, args.raw_seconds, most)))
    local = find(rows, "local", 1, episodes)
    if local and layout(local.config).envs_per_chunk in raw:
        width = layout(local.config).envs_per_chunk
        lines.append((f"one worker (local, N={episodes}) / the raw ceiling at its width {width}",
                      local.steps_per_second / raw[width][1].steps_per_second))
    small = find(rows, "local", 1, min(args.episodes))
    if local and small and small is not local:
        lines.append((f"the learner's time N={episodes} / N={min(args.episodes)} (local)",
                      local.mean("learner_seconds") / small.mean("learner_seconds")))
    print("## summary\n")
    table(["ratio", "value"], [[text, f"{value:.3g}"] for text, value in lines])


# --- --worker-ratio: one worker against its raw ceiling ------------------------------------------------


@dataclass
class WorkerRun:
    steps: int
    seconds: float
    cpu_seconds: float
    copy_steps: int  # the copies its locksteps stepped: kept, dropped episodes' and autoreset steps
    gradient_cpu_seconds: float  # RolloutWorker.gradient_sum's


def run_worker(config: Config, iterations: int) -> WorkerRun:
    """``iterations`` of ``Learner.step()`` on the local backend after one not counted (it builds the env)."""
    copies, gradient = Meter(), Meter()
    with Learner(config) as learner:
        learner.step()
        with vector_env_steps(copies), gradient.on(RolloutWorker, "gradient_sum"), timed() as timing:
            steps = sum(learner.step()["steps"] for _ in range(iterations))
    return WorkerRun(steps, timing.wall, timing.cpu, copies.items, gradient.seconds)


def run_worker_ratio(args, base: Config) -> None:
    config = base.replace(episodes=max(args.episodes), backend="local", workers=1)
    cut = layout(config)
    estimators = {args.config.name: {}} if args.config else ESTIMATORS
    print(f"# one worker against its raw ceiling: {config.env}, N={config.episodes}, {cut.chunks(config.episodes)} "
          f"chunk(s) of {cut.chunk_episodes} episodes on {cut.envs_per_chunk} copies, {args.worker_ratio} rounds in turn\n")
    print_machine()
    runs = {"raw: env alone": lambda: run_raw(config, cut.envs_per_chunk, args.raw_seconds, policy=False),
            "raw: env + policy": lambda: run_raw(config, cut.envs_per_chunk, args.raw_seconds)}
    for name, fields in estimators.items():
        runs[name] = lambda fields=fields: run_worker(config.replace(**fields), args.iterations)
    results = in_turn(runs, args.worker_ratio)
    table([f"width {cut.envs_per_chunk}", "steps/s (median)", "steps per CPU second (median)"],
          [[name, number(median([r.steps / r.seconds for r in rs])), number(median([r.steps / r.cpu_seconds for r in rs]))]
           for name, rs in results.items()])
    del results["raw: env alone"]
    raw = results.pop("raw: env + policy")
    first = next(iter(results))
    wall = {name: pair_ratios([r.steps / r.seconds for r in rs], [r.steps_per_second for r in raw])
            for name, rs in results.items()}
    cpu = {name: pair_ratios([r.steps / r.cpu_seconds for r in rs], [r.steps_per_cpu_second for r in raw])
           for name, rs in results.items()}
    table(["estimator", "worker / raw (median)", "the rounds'", f"/ {first}'s", "in CPU time (median)", f"/ {first}'s"],
          [[name, f"{median(wall[name]):.3f}", ratios(wall[name], 3), f"{median(wall[name]) / median(wall[first]):.2f}",
            f"{median(cpu[name]):.3f}", f"{median(cpu[name]) / median(cpu[first]):.2f}"] for name in results])
    print("What separates a worker from its ceiling (CPU time, medians): the copy-steps a chunk steps but does not "
          "keep, and its gradient passes. 'At the raw loop's cost': a worker whose rollout costs what the raw loop "
          "costs per copy-step, without and then with its gradient passes as measured.\n")
    raw_kept = median([r.steps / r.copy_steps for r in raw])
    body = []
    for name, rs in results.items():
        kept = median([r.steps / r.copy_steps for r in rs])
        fastest = [r.copy_steps * c.cpu_seconds / c.copy_steps + r.gradient_cpu_seconds for r, c in zip(rs, raw)]
        bound = median([r.steps / seconds / c.steps_per_cpu_second for r, c, seconds in zip(rs, raw, fastest)])
        gradient_share = median([r.gradient_cpu_seconds / r.cpu_seconds for r in rs])
        body.append([name, f"{kept:.3f}", f"{raw_kept:.3f}", f"{gradient_share:.2f}", f"{kept / raw_kept:.3f}",
                     f"{bound:.3f}", f"{median(cpu[name]) / bound:.2f}"])
    table(["estimator", "kept steps / copy-steps", "the raw loop's", "gradient passes' share of CPU",
           "at the raw loop's cost, no gradient pass", "… with the gradient passes", "in CPU time / that"], body)


# --- --weak: weak scaling ---------------------------------------------------------------------------


def parse_layout(text: str) -> dict:
    """'rule' -> no override (pgdist.layout's choice); 'C/E' -> chunk_episodes C on E copies."""
    if text == "rule":
        return {}
    chunk, _, envs = text.partition("/")
    if not (chunk.isdigit() and envs.isdigit()):
        raise SystemExit(f"--layouts: expected 'rule' or CHUNK/ENVS such as 2000/512, got {text!r}")
    return {"chunk_episodes": int(chunk), "envs_per_chunk": int(envs)}


def run_weak_scaling(args, base: Config) -> None:
    print(f"# weak scaling on {base.env}: N = {args.weak} episodes per worker, every worker a Ray actor\n")
    print_machine()
    rows: dict[str, list[Row]] = {text: [] for text in args.layouts}
    with one_ray_instance():
        for workers in args.workers:
            for text in args.layouts:
                config = base.replace(episodes=args.weak * workers, backend="ray", workers=workers, **parse_layout(text))
                rows[text].append(measure(config, args.iterations, args.min_seconds))
    body = []
    for text, series in rows.items():
        one = next((row.steps_per_second for row in series if row.workers == 1), None)
        for row, first in zip(series, rows[args.layouts[0]]):
            cut = layout(row.config)
            body.append([text, row.workers, row.config.episodes, cut.chunks(row.config.episodes), cut.chunk_episodes,
                         cut.envs_per_chunk, number(row.steps_per_second), ratio(row.steps_per_second, one),
                         ratio(row.steps_per_second / row.workers, one), ratio(row.steps_per_second, first.steps_per_second),
                         number(row.first.seconds, 2)])
    table(["layout", "workers", "N", "chunks", "chunk_episodes", "envs_per_chunk", "steps/s", "/ 1 worker",
           "efficiency (/ workers × 1 worker)", f"/ {args.layouts[0]}", "first iteration s"], body)


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default=ENV, help=f"the env, with the tutorial's policy (default: {ENV})")
    parser.add_argument("--config", type=Path, help="a recipe instead: its env, policy, estimator and layout")
    parser.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE",
                        help="Config fields to override, e.g. chunk_episodes=256 envs_per_chunk=64")
    parser.add_argument("--quick", action="store_true", help="a short run: fewer iterations, smaller N")
    parser.add_argument("--episodes", type=int, nargs="+", help="N values (default: 1000 4000 32000)")
    parser.add_argument("--workers", type=int, nargs="+", help="Ray worker counts (default: 1 .. the CPUs; 0: none)")
    parser.add_argument("--no-local", action="store_true", help="no local backend rows")
    parser.add_argument("--iterations", type=int, help="measured iterations per row, at least (default: 3)")
    parser.add_argument("--min-seconds", type=float, help="measure a row for this long at least (default: 4)")
    parser.add_argument("--widths", type=int, nargs="+", help="raw ceiling widths (default: 64 and the rows' own)")
    parser.add_argument("--raw-seconds", type=float, help="seconds per raw ceiling, in 4 repeats (default: 2)")
    parser.add_argument("--reference-iterations", type=int, help="measured iterations of (a) (default: 40)")
    parser.add_argument("--train-episodes", type=int, default=32000, help="N of (d) (default: 32000; 0: no (d))")
    parser.add_argument("--train-workers", type=int, help="--workers of (d) (default: the most --workers, or 1)")
    parser.add_argument("--train-iterations", type=int, default=8, help="iterations of (d) (default: 8)")
    parser.add_argument("--worker-ratio", type=int, nargs="?", const=3, metavar="ROUNDS",
                        help="only one worker against its raw ceiling at the largest --episodes (default 32000), "
                             "ROUNDS rounds in turn (default 3)")
    parser.add_argument("--weak", type=int, metavar="K", help="only weak scaling: N = K episodes per worker")
    parser.add_argument("--layouts", nargs="+", default=["rule"], metavar="LAYOUT",
                        help="--weak's layouts: 'rule' (pgdist.layout's) or CHUNK/ENVS, e.g. 2000/512 (default: rule)")
    args = parser.parse_args(argv)
    args.set = config_overrides(parser, args.set)
    quick, ratio_only = args.quick, args.worker_ratio is not None
    defaults = {
        "episodes": [32000] if ratio_only else [1000, 32000] if quick else [1000, 4000, 32000],
        "workers": list(range(1, (os.cpu_count() or 1) + 1)),
        "iterations": 1 if quick or ratio_only else 3,
        "min_seconds": 0.0 if quick or ratio_only else 4.0,
        "widths": [64],
        "raw_seconds": 0.5 if quick else 2.0,
        "reference_iterations": 10 if quick else 40,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.workers = [w for w in args.workers if w > 0]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)  # as pgdist's workers run
    base = base_config(args)
    if args.worker_ratio is not None:
        run_worker_ratio(args, base)
        return 0
    if args.weak:
        run_weak_scaling(args, base)
        return 0
    print(f"# pgdist throughput on {base.env}\n")
    print_machine()
    reference = run_reference(args.reference_iterations)
    widths = sorted(set(args.widths) | {layout(base.replace(episodes=n)).envs_per_chunk for n in args.episodes
                                         if args.workers or not args.no_local})
    raw = {w: (run_raw(base, w, args.raw_seconds, policy=False), run_raw(base, w, args.raw_seconds)) for w in widths}
    print_raw(base, raw)
    rows = run_pgdist(args, base)
    if rows:
        print_pgdist(rows, raw)
    train = None
    if args.train_episodes:
        workers = args.train_workers or max(args.workers, default=1)
        train = train_command(args, args.train_episodes, workers, reference)
    print_summary(args, base, reference, raw, rows, train)
    return 0


if __name__ == "__main__":
    sys.exit(main())

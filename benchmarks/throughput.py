"""Environment steps per second on CartPole-v1: the tutorial's loop, the raw ceiling, pgdist.

    .venv/bin/python benchmarks/throughput.py            # the full run, a few minutes
    .venv/bin/python benchmarks/throughput.py --quick    # a short run
    .venv/bin/python benchmarks/throughput.py --chunk-episodes 256 --envs-per-chunk 64
    .venv/bin/python benchmarks/throughput.py --worker-ratio   # one worker / raw ceiling, per estimator
    .venv/bin/python benchmarks/throughput.py --weak 16000 --layouts rule 2000/512   # weak scaling

Sections, each printed as a markdown table:

(a) reference: the tutorial's own loop (``pgdist.reference.train``): per-step autograd,
    Eq. 23 over N=10 trajectories, ``loss.backward()`` and an Adam step.
(b) raw ceiling: one process stepping gymnasium's vector CartPole with batched policy
    sampling under ``torch.no_grad()``, no learning; the best over a few widths.
(c) pgdist: ``Learner.step()`` (gradient and Adam step included) with the local backend
    and with 1 and 2 Ray workers, for several N. One warm-up iteration (which, for Ray,
    includes the actors' start-up) is reported apart from the measured ones.
(d) the learner's own time per iteration: ``Learner.step()`` minus the time spent inside
    ``backend.sample`` (the workers' chunks, or waiting for them), split into the
    summing of the chunks' results (with theta's broadcast and the chunk list) and
    ``Learner.update()``.
(e) ``--worker-ratio``: one worker over its raw ceiling, per estimator, and what separates them:
    the share of its copy-steps a chunk keeps, and its gradient passes.
(f) ``--weak K``: weak scaling, alone: N = K episodes per worker for each ``--workers`` count,
    all workers Ray actors of one caller's instance, for each of ``--layouts`` in turn.

Steps are the steps of the episodes the gradient uses: a vector environment's
autoreset steps, and the steps of episodes a chunk drops, are not counted.
All rows use the same policy size (Linear(4,8)-Tanh-Linear(8,8)-Tanh-Linear(8,2)).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import time

import gymnasium
import numpy as np
import torch

import pgdist
from pgdist import Config, Learner
from pgdist.envs import make_env
from pgdist.layout import layout
from pgdist.policy import Policy, actor
from pgdist.reference import train as reference_train
from pgdist.worker import RolloutWorker

ENV = "CartPole-v1"
HIDDEN = (8, 8)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.torch_threads)
    chunk_episodes, envs_per_chunk = args.chunk_episodes, args.envs_per_chunk  # None: pgdist.layout's rule
    if args.worker_ratio:
        return run_worker_ratio(args, chunk_episodes, envs_per_chunk)
    if args.weak:
        return run_weak_scaling(args)

    print("# pgdist throughput on " + ENV + (" (--quick)" if args.quick else ""))
    print()
    print_machine(args)
    print()

    reference = run_reference(args.reference_iterations, args.reference_episodes)
    print_reference(reference)

    base = base_config(chunk_episodes, envs_per_chunk)
    widths = sorted(set(args.widths) | {layout(base.replace(episodes=n)).envs_per_chunk for n in args.episodes})
    raw = [run_raw(width, args.raw_seconds, policy) for width in widths for policy in (False, True)]
    print_raw(raw)

    rows = run_pgdist(args, base)
    print_pgdist(rows, raw)
    print_learner_time(rows)
    train = None
    if args.train_episodes:
        train = run_train_command(args.train_episodes, max(args.workers, default=1), args.train_iterations)
    print_summary(args, reference, raw, rows, train)
    print(f"load average at the end: {format_load()}")
    return 0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run: fewer iterations, smaller N")
    parser.add_argument("--episodes", type=int, nargs="+", help="N values for pgdist (default: 1000 4000 16000)")
    parser.add_argument("--workers", type=int, nargs="+", help="Ray worker counts (default: 1 .. the CPUs; 0: no Ray rows)")
    parser.add_argument("--no-local", action="store_true", help="skip the local backend's rows")
    parser.add_argument("--chunk-episodes", type=int, help="Config.chunk_episodes (default: pgdist.layout's rule for each N)")
    parser.add_argument("--envs-per-chunk", type=int, help="Config.envs_per_chunk (default: pgdist.layout's rule)")
    parser.add_argument("--train-episodes", type=int, default=32000,
                        help="N of a whole `pgdist train --workers W` command, W the most --workers, timed from its "
                        "metrics.csv (default: 32000; 0: none)")
    parser.add_argument("--train-iterations", type=int, default=8, help="iterations of that command (default: 8)")
    parser.add_argument("--iterations", type=int, help="measured pgdist iterations per row, at least (default: 3)")
    parser.add_argument(
        "--min-seconds", type=float, help="keep measuring a pgdist row until this much time has passed (default: 4)"
    )
    parser.add_argument("--widths", type=int, nargs="+", help="vector widths of the raw ceiling (default: 64, and the workers' own)")
    parser.add_argument("--raw-seconds", type=float, help="seconds per raw-ceiling width, in 4 repeats (default: 2)")
    parser.add_argument("--reference-iterations", type=int, help="measured iterations of the reference (default: 40)")
    parser.add_argument("--reference-episodes", type=int, default=10, help="N of the reference loop (default: 10)")
    parser.add_argument(
        "--worker-ratio",
        type=int,
        nargs="?",
        const=3,
        metavar="REPEATS",
        help="only (e): one worker (local backend) / the raw ceiling at its width, per estimator, "
        "at the largest --episodes (default 32000), the median of REPEATS (default 3) interleaved runs",
    )
    parser.add_argument("--weak", type=int, metavar="K",
                        help="only (f): weak scaling, N = K episodes per worker for each --workers count")
    parser.add_argument("--layouts", nargs="+", default=["rule"], metavar="LAYOUT",
                        help="(f)'s layouts, compared in turn at each worker count: 'rule' (pgdist.layout's) or "
                        "CHUNK/ENVS, e.g. 2000/512 (default: rule)")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch threads in this process (default: 1, as pgdist's Ray actors use)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    fill = {
        "episodes": [32000] if args.worker_ratio else [1000, 32000] if quick else [1000, 4000, 32000],
        "workers": list(range(1, (os.cpu_count() or 1) + 1)),
        "iterations": 1 if quick or args.worker_ratio else 3,
        "min_seconds": 0.0 if quick or args.worker_ratio else 4.0,
        "widths": [64],
        "raw_seconds": 0.5 if quick else 2.0,
        "reference_iterations": 10 if quick else 40,
    }
    for name, value in fill.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.workers = [w for w in args.workers if w > 0]
    return args


# --- the machine -----------------------------------------------------------------------


def print_machine(args) -> None:
    import ray

    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    print("| machine | |")
    print("|---|---|")
    print(f"| CPU | {cpu_model()} |")
    print(f"| cores | {cores} ({usable} usable by this process) |")
    print(f"| python | {platform.python_version()} |")
    print(f"| torch | {torch.__version__} ({args.torch_threads} thread(s) in the driver; Ray actors use 1) |")
    print(f"| ray | {ray.__version__} |")
    print(f"| gymnasium | {gymnasium.__version__} |")
    print(f"| numpy | {np.__version__} |")
    print(f"| pgdist | {pgdist.__version__} |")
    print(f"| load average at the start | {format_load()} |")
    load = os.getloadavg()[0]
    if load > 1.0:
        print()
        print(f"warning: the 1-minute load average is {load:.2f}: other processes may share the CPUs; timings may be low")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def format_load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def table(headers: list[str], rows: list[list]) -> None:
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---:" if i else "---" for i in range(len(headers))) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
    print()


# --- (a) the tutorial's reference loop --------------------------------------------------


class CountingEnv:
    """The tutorial's environment, counting the steps taken."""

    def __init__(self, env):
        self.env = env
        self.steps = 0

    def reset(self):
        return self.env.reset()

    def step(self, action):
        self.steps += 1
        return self.env.step(action)


@dataclasses.dataclass
class ReferenceResult:
    iterations: int
    episodes: int
    steps: int
    seconds: float

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds


def run_reference(iterations: int, episodes: int) -> ReferenceResult:
    torch.manual_seed(0)
    policy = Policy(4, 2, HIDDEN)
    env = CountingEnv(make_env(ENV))
    env.env.reset(seed=0)
    reference_train(env, policy, n_episodes=1, N=episodes)  # warm-up
    env.steps = 0
    start = time.perf_counter()
    reference_train(env, policy, n_episodes=iterations, N=episodes)
    return ReferenceResult(iterations, episodes, env.steps, time.perf_counter() - start)


def print_reference(result: ReferenceResult) -> None:
    print(f"## (a) the tutorial's reference loop (pgdist.reference.train, N={result.episodes}, Adam lr=1e-3)")
    print()
    table(
        ["loop", "iterations", "env steps", "mean episode length", "s / iteration", "steps/s"],
        [
            [
                "generate_tau + reference_loss + backward + Adam",
                result.iterations,
                result.steps,
                f"{result.steps / (result.iterations * result.episodes):.1f}",
                f"{result.seconds / result.iterations:.4f}",
                f"{result.steps_per_second:,.0f}",
            ]
        ],
    )


# --- (b) the raw ceiling ----------------------------------------------------------------


@dataclasses.dataclass
class RawResult:
    width: int
    policy: bool  # actions from the policy (env + policy), or a fixed random sequence (env alone)
    steps: int
    seconds: float
    cpu_seconds: float  # this process's CPU time over the same steps: what other work on the machine inflates less
    slots: int  # copy-steps stepped, autoreset steps included: locksteps times the width

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds


def run_raw(width: int, seconds: float, policy: bool = True, repeats: int = 4) -> RawResult:
    """Step gymnasium's CartPoleVectorEnv, with batched sampling (``policy``) or alone; no learning.

    The policy's actions come from ``pgdist.policy.actor``, the fastest draw pgdist has (the
    one its workers use), so that a faster sampler in the workers does not lower the ceiling;
    the env alone takes actions from a table drawn beforehand.

    The best of ``repeats`` runs of ``seconds / repeats`` each, so that a burst of other
    work on the machine does not set the ceiling.
    """
    torch.manual_seed(0)
    act = actor(Policy(4, 2, HIDDEN), torch.Generator().manual_seed(0))
    table_of_actions = np.random.default_rng(0).integers(0, 2, size=(64, width))
    env = gymnasium.make_vec(ENV, num_envs=width)
    states, _ = env.reset(seed=0)
    resetting = np.zeros(width, dtype=bool)
    best, step = None, 0
    with torch.inference_mode():
        for repeat in range(repeats + 1):  # the first is a warm-up
            steps, locksteps = 0, 0
            start, cpu = time.perf_counter(), time.process_time()
            while True:
                for _ in range(50):
                    actions = act(torch.as_tensor(states)).numpy() if policy else table_of_actions[step % 64]
                    states, _, terminated, truncated, _ = env.step(actions)
                    steps += width - int(np.count_nonzero(resetting))  # an autoreset step is no env step
                    resetting = terminated | truncated
                    step += 1
                    locksteps += 1
                elapsed = time.perf_counter() - start
                if elapsed >= seconds / repeats:
                    break
            result = RawResult(width, policy, steps, elapsed, time.process_time() - cpu, locksteps * width)
            if repeat and (best is None or result.steps_per_second > best.steps_per_second):
                best = result
    env.close()
    return best


def raw_scaling(width: int, seconds: float, processes: int) -> float:
    """The raw ceiling (env + policy) at ``width`` in ``processes`` processes at once, over it in one.

    What the machine itself gives a second process (shared caches, memory bandwidth, a VM's
    cores): no number of workers can scale better than this. Each process warms up for
    ``seconds`` and is then measured for ``seconds``, all started together.
    """
    alone = run_raw(width, seconds, repeats=1).steps_per_second
    with multiprocessing.get_context("spawn").Pool(processes, torch.set_num_threads, (1,)) as pool:
        together = pool.starmap(run_raw, [(width, seconds, True, 1)] * processes)
    return sum(result.steps_per_second for result in together) / alone


def raw_at(raw: list[RawResult], width: int, policy: bool = True) -> RawResult | None:
    return next((r for r in raw if r.width == width and r.policy == policy), None)


def print_raw(results: list[RawResult]) -> None:
    print(f"## (b) the raw ceilings: gymnasium.make_vec({ENV!r}), alone and with batched sampling under inference_mode, one process")
    print()
    widths = sorted({r.width for r in results})
    table(
        ["width W", "env alone steps/s", "env + policy steps/s", "policy's share of a lockstep"],
        [
            [w, f"{raw_at(results, w, False).steps_per_second:,.0f}", f"{raw_at(results, w).steps_per_second:,.0f}",
             f"{1 - raw_at(results, w).steps_per_second / raw_at(results, w, False).steps_per_second:.0%}"]
            for w in widths
        ],
    )


# --- (c) and (d) pgdist -----------------------------------------------------------------


@dataclasses.dataclass
class Iteration:
    seconds: float  # Learner.step()
    steps: int
    episodes: int
    backend_seconds: float  # inside backend.sample: running chunks, or waiting for them
    update_seconds: float  # Learner.update()
    driver_cpu_seconds: float  # this process's CPU time during step() (all its threads)

    @property
    def learner_seconds(self) -> float:
        return self.seconds - self.backend_seconds

    @property
    def summing_seconds(self) -> float:
        return self.learner_seconds - self.update_seconds


@dataclasses.dataclass
class Row:
    backend: str
    workers: int
    episodes: int
    chunks: int
    chunk_episodes: int
    envs_per_chunk: int
    start_seconds: float  # building the Learner (and, for Ray, asking for the actors)
    warmup: Iteration
    measured: list[Iteration]

    def total(self, name: str) -> float:
        return sum(getattr(iteration, name) for iteration in self.measured)

    @property
    def steps_per_second(self) -> float:
        return self.total("steps") / self.total("seconds")

    def mean(self, name: str) -> float:
        return self.total(name) / len(self.measured)


class TimedLearner:
    """A Learner's step(), its update time from its own metrics, and the time spent inside backend.sample
    (running chunks or waiting for them), which the benchmark measures by wrapping the backend's generator."""

    def __init__(self, learner: Learner):
        self.learner = learner
        self.backend_seconds = 0.0
        backend_sample = learner.backend.sample

        def timed_sample(*args, **kwargs):
            results = backend_sample(*args, **kwargs)
            while True:
                start = time.perf_counter()
                try:
                    result = next(results)
                except StopIteration:
                    self.backend_seconds += time.perf_counter() - start
                    return
                self.backend_seconds += time.perf_counter() - start
                yield result

        learner.backend.sample = timed_sample

    def step(self) -> Iteration:
        self.backend_seconds = 0.0
        cpu = time.process_time()
        metrics = self.learner.step()
        return Iteration(
            metrics["seconds"],
            metrics["steps"],
            metrics["episodes"],
            self.backend_seconds,
            metrics["update_seconds"],
            time.process_time() - cpu,
        )


def measure(config: Config, iterations: int, min_seconds: float, label: str) -> Row:
    start = time.perf_counter()
    learner = Learner(config)
    start_seconds = time.perf_counter() - start
    try:
        timed = TimedLearner(learner)
        warmup = timed.step()  # on Ray, includes the actors' start-up
        if hasattr(learner.backend, "nodes"):
            learner.backend.nodes()  # measure the steady state: every actor up
        measured = []
        began = time.perf_counter()
        while len(measured) < iterations or time.perf_counter() - began < min_seconds:
            measured.append(timed.step())
        workers = learner.backend.workers
    finally:
        learner.close()
    cut = layout(config)
    row = Row(label, workers, config.episodes, cut.chunks(config.episodes), cut.chunk_episodes, cut.envs_per_chunk,
              start_seconds, warmup, measured)
    print(
        f"  measured {label:<14} N={config.episodes:<6} {len(measured)} iterations, "
        f"{row.steps_per_second:,.0f} steps/s",
        file=sys.stderr,
        flush=True,
    )
    return row


def base_config(chunk_episodes: int | None, envs_per_chunk: int | None) -> Config:
    return Config(env=ENV, seed=0, lr=1e-3, chunk_episodes=chunk_episodes, envs_per_chunk=envs_per_chunk, hidden=HIDDEN)


def run_pgdist(args, base: Config) -> list[Row]:
    rows = []
    if not args.no_local:
        for n in args.episodes:
            config = base.replace(episodes=n, backend="local", workers=1)
            rows.append(measure(config, args.iterations, args.min_seconds, "local"))
    if args.workers:
        with one_ray_instance():
            for workers in args.workers:
                for n in args.episodes:
                    config = base.replace(episodes=n, backend="ray", workers=workers)
                    rows.append(measure(config, args.iterations, args.min_seconds, f"ray, {workers} worker(s)"))
    return rows


@contextlib.contextmanager
def one_ray_instance():
    """One Ray instance for every Ray row: each Learner joins it, so all its workers are actors."""
    from pgdist.ray_startup import start_ray

    import ray

    start = time.perf_counter()
    started = start_ray(None)
    print(f"  Ray started in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    try:
        yield
    finally:
        if started:
            ray.shutdown()


def print_pgdist(rows: list[Row], raw: list[RawResult]) -> None:
    print("## (c) pgdist Learner.step() (gradient + Adam included), lr=1e-3, the layout of pgdist.layout unless overridden")
    print()
    print("'per worker / raw' is the row's steps/s per worker over the raw ceiling (env + policy) at its own width;")
    print("'/ 1 worker' is over the same backend's 1-worker row at the same N (the ray rows: all workers actors).")
    print()
    table(
        ["backend", "workers", "N", "chunks", "chunk_episodes", "envs_per_chunk", "measured iterations",
         "mean episode length", "s / iteration", "steps/s", "per worker / raw", "/ 1 worker", "driver CPU s / iteration"],
        [
            [
                row.backend,
                row.workers,
                row.episodes,
                row.chunks,
                row.chunk_episodes,
                row.envs_per_chunk,
                len(row.measured),
                f"{row.total('steps') / row.total('episodes'):.1f}",
                f"{row.mean('seconds'):.3f}",
                f"{row.steps_per_second:,.0f}",
                ratio(row.steps_per_second / row.workers, raw_at(raw, row.envs_per_chunk)),
                ratio(row.steps_per_second, one_worker(rows, row)),
                f"{row.mean('driver_cpu_seconds'):.3f}",
            ]
            for row in rows
        ],
    )
    print("Warm-up (first) iteration, reported apart; for Ray it includes the actors' start-up:")
    print()
    table(
        ["backend", "workers", "N", "Learner() s", "first step() s", "first step() steps/s"],
        [
            [
                row.backend,
                row.workers,
                row.episodes,
                f"{row.start_seconds:.3f}",
                f"{row.warmup.seconds:.3f}",
                f"{row.warmup.steps / row.warmup.seconds:,.0f}",
            ]
            for row in rows
        ],
    )


def print_learner_time(rows: list[Row]) -> None:
    print("## (d) the learner's own time per iteration: step() minus the time inside backend.sample")
    print()
    print("'summing' is Learner.sample() outside backend.sample: theta to numpy, the chunk list, adding the")
    print("chunks' results; 'update' is Learner.update() (the Adam step).")
    print()
    table(
        ["backend", "workers", "N", "chunks", "summing ms", "update ms", "learner ms", "share of step()"],
        [
            [
                row.backend,
                row.workers,
                row.episodes,
                row.chunks,
                f"{1e3 * row.mean('summing_seconds'):.3f}",
                f"{1e3 * row.mean('update_seconds'):.3f}",
                f"{1e3 * row.mean('learner_seconds'):.3f}",
                f"{row.total('learner_seconds') / row.total('seconds'):.2%}",
            ]
            for row in rows
        ],
    )
    smallest, largest = min(r.episodes for r in rows), max(r.episodes for r in rows)
    ratios = []
    for row in rows:
        if row.episodes == largest:
            base = find(rows, row.backend, smallest)
            if base and largest != smallest:
                ratios.append(
                    [
                        row.backend,
                        f"{row.mean('learner_seconds') / base.mean('learner_seconds'):.2f}",
                        f"{row.mean('summing_seconds') / base.mean('summing_seconds'):.2f}",
                        f"{row.mean('update_seconds') / base.mean('update_seconds'):.2f}",
                        f"{largest / smallest:.0f}",
                    ]
                )
    if ratios:
        print(f"Learner time N={largest} / N={smallest}:")
        print()
        table(["backend", "learner", "summing", "update", "N ratio"], ratios)


def ratio(value: float, base) -> str:
    if base is None:
        return ""
    return f"{value / (base if isinstance(base, float) else base.steps_per_second):.2f}"


def one_worker(rows: list[Row], row: Row) -> Row | None:
    if row.backend == "local":
        return None
    return find(rows, "ray, 1 worker(s)", row.episodes)


def find(rows: list[Row], backend: str, episodes: int) -> Row | None:
    return next((row for row in rows if row.backend == backend and row.episodes == episodes), None)


@dataclasses.dataclass
class TrainCommand:
    episodes: int
    workers: int
    wall_seconds: float  # the whole command, start-up and exit included
    steps_per_second: float  # the median iteration's, from the run's metrics.csv, after the first
    steady_steps_per_second: float | None  # the median iteration's once every worker took part (metrics' workers)
    before_all_workers: int  # the iterations that ran before then: the actors' start-up


def run_train_command(episodes: int, workers: int, iterations: int = 8) -> TrainCommand:
    """``pgdist train --episodes N --workers W`` with every other setting its default, as a user runs it:
    its own Ray instance, this process one of the workers."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "pgdist.cli", "train", "--episodes", str(episodes), "--workers", str(workers),
                   "--iterations", str(iterations), "--out", f"{folder}/run"]
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        with open(f"{folder}/run/metrics.csv", newline="") as file:
            rows = list(csv.DictReader(file))
    speeds = [float(row["steps"]) / float(row["seconds"]) for row in rows]
    all_workers = [i for i, row in enumerate(rows) if int(row["workers"]) == workers]
    steady = float(np.median([speeds[i] for i in all_workers])) if all_workers else None
    print(f"  measured pgdist train N={episodes} --workers {workers}: {np.median(speeds[1:]):,.0f} steps/s "
          f"({steady or 0:,.0f} with every worker)", file=sys.stderr)
    return TrainCommand(episodes, workers, wall, float(np.median(speeds[1:])), steady,
                        all_workers[0] if all_workers else len(rows))


def print_summary(args, reference: ReferenceResult, raw: list[RawResult], rows: list[Row],
                  train: TrainCommand | None) -> None:
    """The ratios the issue sets targets for, at the largest N."""
    episodes = max(args.episodes)
    most = max(args.workers, default=0)
    lines = []
    if train:
        lines.append((f"`pgdist train --episodes {train.episodes} --workers {train.workers}` (defaults; median iteration "
                      f"after the first) / the tutorial's loop (N={reference.episodes})",
                      train.steps_per_second / reference.steps_per_second))
        lines.append((f"  its steps/s; the whole command's seconds ({args.train_iterations} iterations)", None,
                      f"{train.steps_per_second:,.0f}; {train.wall_seconds:.1f} s"))
        if train.steady_steps_per_second:
            lines.append((f"  the same command once its {train.workers} workers all took part (median iteration from "
                          f"iteration {train.before_all_workers + 1}: the steady state) / the tutorial's loop",
                          train.steady_steps_per_second / reference.steps_per_second))
    for row in (find(rows, f"ray, {most} worker(s)", episodes), find(rows, "local", episodes)):
        if row:
            lines.append((f"pgdist ({row.backend}, N={episodes}) / the tutorial's loop",
                          row.steps_per_second / reference.steps_per_second))
    many, one = find(rows, f"ray, {most} worker(s)", episodes), find(rows, "ray, 1 worker(s)", episodes)
    if many and one and most > 1:
        lines.append((f"{most} workers / 1 worker at N={episodes} (ray)", many.steps_per_second / one.steps_per_second))
        lines.append((f"  the raw ceiling at W={many.envs_per_chunk} in {most} processes at once / in one "
                      "(what this machine gives a second process)",
                      raw_scaling(many.envs_per_chunk, args.raw_seconds, most)))
    local = find(rows, "local", episodes)
    if local and raw_at(raw, local.envs_per_chunk):
        lines.append((f"one worker (local, N={episodes}) / the raw ceiling at its width W={local.envs_per_chunk}",
                      local.steps_per_second / raw_at(raw, local.envs_per_chunk).steps_per_second))
    smallest = min(args.episodes)
    small, large = find(rows, "local", smallest), find(rows, "local", episodes)
    if small and large and smallest != episodes:
        lines.append((f"learner time N={episodes} / N={smallest} (local)",
                      large.mean("learner_seconds") / small.mean("learner_seconds")))
    print("## summary")
    print()
    table(["ratio", "value"], [[line[0], line[2] if len(line) > 2 else f"{line[1]:.3g}"] for line in lines])


# --- (e) one worker against its raw ceiling ------------------------------------------------

ESTIMATORS = {
    "Eq. 23 (total return)": {},
    "reward_to_go": {"returns": "reward_to_go"},
    "value baseline": {"baseline": "value"},
    "standardize": {"standardize": True},
}


def run_worker_ratio(args, chunk_episodes: int, envs_per_chunk: int) -> int:
    """One worker's steps/s over the raw ceiling at the worker's own width, per estimator.

    Each repeat measures the raw ceiling and then every estimator, so that a ratio's two
    figures come from the same minute of a shared machine; the table gives the medians.
    """
    episodes = max(args.episodes)
    base = base_config(chunk_episodes, envs_per_chunk).replace(episodes=episodes, backend="local", workers=1)
    cut = layout(base)
    chunk_episodes, envs_per_chunk = cut.chunk_episodes, cut.envs_per_chunk
    print(f"# one worker / raw ceiling on {ENV}, N={episodes}, chunk_episodes={chunk_episodes}, "
          f"envs_per_chunk={envs_per_chunk}, {args.worker_ratio} repeats")
    print()
    print_machine(args)
    print()
    raw, ratios, speeds = [], {name: [] for name in ESTIMATORS}, {name: [] for name in ESTIMATORS}
    cpu_ratios, bounds, kept, gradient_shares = ({name: [] for name in ESTIMATORS} for _ in range(4))
    raw_kept = []
    for _ in range(args.worker_ratio):
        ceiling = run_raw(envs_per_chunk, args.raw_seconds)
        raw.append(ceiling.steps_per_second)
        raw_kept.append(ceiling.steps / ceiling.slots)
        raw_rate = ceiling.steps / ceiling.cpu_seconds  # steps per CPU second
        for name, fields in ESTIMATORS.items():
            with worker_parts() as parts:
                row = measure(base.replace(**fields), args.iterations, args.min_seconds, name)
            speeds[name].append(row.steps_per_second)
            ratios[name].append(row.steps_per_second / ceiling.steps_per_second)
            cpu_ratios[name].append(row.total("steps") / row.total("driver_cpu_seconds") / raw_rate)
            steps = row.warmup.steps + row.total("steps")  # the parts count the warm-up iteration too
            kept[name].append(steps / parts["slots"])
            fastest = parts["slots"] * ceiling.cpu_seconds / ceiling.slots + parts["gradient_cpu_seconds"]
            bounds[name].append(steps / fastest / raw_rate)
            cpu = row.warmup.driver_cpu_seconds + row.total("driver_cpu_seconds")
            gradient_shares[name].append(parts["gradient_cpu_seconds"] / cpu)
    eq23 = float(np.median(ratios["Eq. 23 (total return)"]))
    eq23_cpu = float(np.median(cpu_ratios["Eq. 23 (total return)"]))
    table(
        ["estimator", "worker steps/s (median)", f"raw ceiling W={envs_per_chunk} (median)", "ratio (median)",
         "ratios of the repeats", "/ Eq. 23's ratio", "ratio in CPU time (median)", "/ Eq. 23's (CPU time)"],
        [
            [name, f"{np.median(speeds[name]):,.0f}", f"{np.median(raw):,.0f}", f"{np.median(ratios[name]):.3f}",
             " ".join(f"{r:.3f}" for r in ratios[name]), f"{np.median(ratios[name]) / eq23:.2f}",
             f"{np.median(cpu_ratios[name]):.3f}", f"{np.median(cpu_ratios[name]) / eq23_cpu:.2f}"]
            for name in ESTIMATORS
        ],
    )
    print()
    print("What separates a worker from the ceiling (CPU time, medians): the copy-steps a chunk steps but does not "
          "keep (a dropped episode's, an autoreset's), and its gradient passes. The last two columns are a worker "
          "whose rollout costs what the raw loop costs per copy-step, then with its gradient passes as measured:")
    print()
    table(
        ["estimator", "kept steps / copy-steps", "the raw loop's", "gradient passes' share of the worker's CPU",
         "rollout at the raw loop's cost, no gradient pass", "… with the gradient passes", "ratio in CPU time / that"],
        [
            [name, f"{np.median(kept[name]):.3f}", f"{np.median(raw_kept):.3f}", f"{np.median(gradient_shares[name]):.2f}",
             f"{np.median(kept[name]) / np.median(raw_kept):.3f}", f"{np.median(bounds[name]):.3f}",
             f"{np.median(cpu_ratios[name]) / np.median(bounds[name]):.2f}"]
            for name in ESTIMATORS
        ],
    )
    print(f"load average at the end: {format_load()}")
    return 0


@contextlib.contextmanager
def worker_parts():
    """What the local backend's worker does in the block: the copy-steps its locksteps stepped
    (``slots``) and the CPU seconds of its gradient passes."""
    parts = {"slots": 0, "gradient_cpu_seconds": 0.0}
    gradient_sum, episodes = RolloutWorker.gradient_sum, RolloutWorker._episodes

    def timed_gradient_sum(worker, *args):
        start = time.thread_time()
        try:
            return gradient_sum(worker, *args)
        finally:
            parts["gradient_cpu_seconds"] += time.thread_time() - start

    def counted_episodes(worker, steps, *args):
        parts["slots"] += len(steps) * len(steps[0][1])  # locksteps times the copies' actions
        return episodes(worker, steps, *args)

    RolloutWorker.gradient_sum, RolloutWorker._episodes = timed_gradient_sum, counted_episodes
    try:
        yield parts
    finally:
        RolloutWorker.gradient_sum, RolloutWorker._episodes = gradient_sum, episodes


# --- (f) weak scaling ---------------------------------------------------------------------


def parse_layout(text: str) -> tuple[int | None, int | None]:
    """'rule' -> (None, None): pgdist.layout's choice; 'C/E' -> chunk_episodes C on E copies."""
    if text == "rule":
        return None, None
    chunk, _, envs = text.partition("/")
    if not (chunk.isdigit() and envs.isdigit()):
        raise SystemExit(f"--layouts: expected 'rule' or CHUNK/ENVS such as 2000/512, got {text!r}")
    return int(chunk), int(envs)


def run_weak_scaling(args) -> int:
    """Steps/s with N = K episodes per worker, for each worker count and layout (interleaved, so that a
    comparison's rows share the machine's minute), all workers actors of one caller's Ray instance."""
    layouts = {text: parse_layout(text) for text in args.layouts}
    print(f"# weak scaling on {ENV}: N = {args.weak} episodes per worker, all workers Ray actors")
    print()
    print_machine(args)
    print()
    rows: dict[str, list[Row]] = {text: [] for text in layouts}
    with one_ray_instance():
        for workers in args.workers:
            for text, (chunk_episodes, envs_per_chunk) in layouts.items():
                config = base_config(chunk_episodes, envs_per_chunk).replace(
                    episodes=args.weak * workers, backend="ray", workers=workers)
                rows[text].append(measure(config, args.iterations, args.min_seconds, f"ray, {workers} worker(s)"))
    header = ["layout", "workers", "N", "chunks", "chunk_episodes", "envs_per_chunk", "steps/s", "/ 1 worker",
              "efficiency (/ W x 1 worker)", f"/ {args.layouts[0]} at W", "first step() s"]
    body = []
    first = rows[args.layouts[0]]
    for text, series in rows.items():
        one = next((row for row in series if row.workers == 1), None)
        for row in series:
            body.append([text, row.workers, row.episodes, row.chunks, row.chunk_episodes, row.envs_per_chunk,
                         f"{row.steps_per_second:,.0f}", ratio(row.steps_per_second, one),
                         ratio(row.steps_per_second / row.workers, one),
                         ratio(row.steps_per_second, next(r for r in first if r.workers == row.workers)),
                         f"{row.warmup.seconds:.2f}"])
    table(header, body)
    print(f"load average at the end: {format_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

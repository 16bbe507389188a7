"""Where a rollout worker's time goes: one iteration's chunks of RolloutWorker.run on CartPole-v1.

    .venv/bin/python benchmarks/profile_worker.py                 # N=4000, the default chunking
    .venv/bin/python benchmarks/profile_worker.py --cprofile 25   # and cProfile's top 25 entries
    .venv/bin/python benchmarks/profile_worker.py --episodes 32000 --pass-steps 0 32768 8192   # gradient pass sizes
    .venv/bin/py-spy record -o worker.svg -- .venv/bin/python benchmarks/profile_worker.py

It runs the chunks one after another in this process, as the local backend does, and
times the parts of the worker with clocks wrapped around them (no profiler's overhead),
clocks of this thread's CPU time (``time.thread_time``), so that other processes on a shared
machine do not inflate the parts (their cache and memory traffic still can):
env.step, the policy's forward pass (its net), turning the net's output into actions
(pgdist's fast path, Policy.act: normalising the logits and the inverse-CDF draw), the rest of rollout() (numpy bookkeeping, tensor conversion, the
loop itself), and the gradient pass (gradient_sum: one forward and one backward).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import statistics
import sys
import time

import torch

import pgdist.policy
from pgdist.estimators import Estimator
from pgdist.config import Config
from pgdist.policy import make_policy
from pgdist.envs import env_spaces
from pgdist.layout import layout
import pgdist.worker
from pgdist.worker import RolloutWorker, make_chunks
from pgdist.policy import parameters_to_vector


class Clock:
    def __init__(self):
        self.seconds = 0.0
        self.calls = 0

    def wrap(self, function, active=lambda: True):
        def timed(*args, **kwargs):
            if not active():
                return function(*args, **kwargs)
            start = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += time.thread_time() - start
                self.calls += 1

        return timed


def build(config: Config, balancing: bool = False):
    spaces = env_spaces(config.env)
    policy = make_policy(spaces.observation_shape, spaces.action_space, config.hidden, config.seed)
    if balancing:
        balance(policy)
    worker = RolloutWorker(config.env, policy, Estimator.of(config), layout(config).envs_per_chunk)
    theta = parameters_to_vector(policy).numpy()
    return worker, theta


def balance(policy) -> None:
    """CartPole's policy pushes towards where the pole falls (angle + angular velocity), nearly always:
    its episodes last to the 500-step cap, the most steps a chunk can hold."""
    with torch.no_grad():
        for parameter in policy.parameters():
            parameter.zero_()
        first, second, last = (layer for layer in policy.net if isinstance(layer, torch.nn.Linear))
        first.weight[0, 2:4] = 20.0
        second.weight[0, 0] = 3.0
        last.weight[:, 0] = torch.tensor([-20.0, 20.0])


def run_iteration(worker, theta, config, batch):
    steps = 0
    for chunk in make_chunks(config.episodes, layout(config).chunk_episodes, config.seed, batch):
        steps += worker.run(theta, 0, chunk).steps
    return steps


def timed_breakdown(config: Config, iterations: int) -> None:
    worker, theta = build(config)
    run_iteration(worker, theta, config, 0)  # warm-up; builds the vector envs
    clocks = {name: Clock() for name in ("run", "rollout", "env.step", "net", "act", "gradient_sum")}
    in_rollout = [False]

    def rollout_active():
        return in_rollout[0]

    rollout = worker.rollout

    def flagged_rollout(chunk):
        in_rollout[0] = True
        try:
            return rollout(chunk)
        finally:
            in_rollout[0] = False

    worker.rollout = clocks["rollout"].wrap(flagged_rollout)
    worker.gradient_sum = clocks["gradient_sum"].wrap(worker.gradient_sum)
    worker.run = clocks["run"].wrap(worker.run)
    for env in worker._vector_envs.values():
        env.step = clocks["env.step"].wrap(env.step)
    worker.policy.act = clocks["act"].wrap(worker.policy.act, rollout_active)
    original_forward = pgdist.policy.mlp_forward
    pgdist.policy.mlp_forward = clocks["net"].wrap(original_forward, rollout_active)
    try:
        start = time.thread_time()
        steps = sum(run_iteration(worker, theta, config, batch) for batch in range(1, iterations + 1))
        wall = time.thread_time() - start
    finally:
        pgdist.policy.mlp_forward = original_forward
    c = {name: clock.seconds for name, clock in clocks.items()}
    loop_steps = clocks["env.step"].calls
    parts = [
        ("env.step (GymnasiumVectorEnv.step -> CartPoleVectorEnv)", c["env.step"]),
        ("policy net forward (3 Linear + 2 Tanh)", c["net"]),
        ("actions from the net's output (logsumexp + inverse-CDF draw)", c["act"] - c["net"]),
        ("rest of rollout(): numpy bookkeeping, as_tensor, loop, concat", c["rollout"] - c["env.step"] - c["act"]),
        ("gradient_sum(): batched forward + backward + sums", c["gradient_sum"]),
        ("run() outside rollout/gradient_sum (load theta)", c["run"] - c["rollout"] - c["gradient_sum"]),
    ]
    print(
        f"## worker time, N={config.episodes}, chunk_episodes={layout(config).chunk_episodes}, "
        f"envs_per_chunk={layout(config).envs_per_chunk}, {iterations} iteration(s), torch threads {torch.get_num_threads()}"
    )
    print()
    print(f"{steps} kept env steps in {wall:.3f} CPU s = {steps / wall:,.0f} steps per CPU second; "
          f"{loop_steps} lockstep iterations of the vector env ({steps / loop_steps:.1f} kept steps each)")
    print()
    print("| part | seconds | share | µs per lockstep iteration |")
    print("|---|---:|---:|---:|")
    for name, seconds in parts:
        print(f"| {name} | {seconds:.3f} | {seconds / c['run']:.1%} | {1e6 * seconds / loop_steps:.1f} |")
    print(f"| total run() | {c['run']:.3f} | 100% | {1e6 * c['run'] / loop_steps:.1f} |")
    print()


def cprofile_top(config: Config, top: int) -> None:
    worker, theta = build(config)
    run_iteration(worker, theta, config, 0)
    profile = cProfile.Profile()
    start = time.perf_counter()
    profile.enable()
    run_iteration(worker, theta, config, 1)
    profile.disable()
    print(f"## cProfile of one iteration's RolloutWorker.run calls ({time.perf_counter() - start:.3f} s under the profiler)")
    print()
    print("```")
    stats = pstats.Stats(profile, stream=sys.stdout).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    print("```")


def pass_steps(config: Config, sizes: list[int], rounds: int) -> None:
    """The gradient passes of one iteration's chunks (rolled out once) with at most each of ``sizes``
    steps a pass (0: all of a chunk's steps in one), the sizes interleaved in each round; CPU time."""
    worker, theta = build(config)
    worker.load(theta, 0)
    chunks = make_chunks(config.episodes, layout(config).chunk_episodes, config.seed, 0)
    episodes = [worker.rollout(chunk) for chunk in chunks]
    steps = sum(len(e.episode) for e in episodes)
    seconds = {size: [] for size in sizes}
    default = pgdist.worker.FORWARD_PASS_ROWS
    try:
        for _ in range(rounds):
            for size in sizes:
                pgdist.worker.FORWARD_PASS_ROWS = size or steps
                start = time.thread_time()
                for chunk_episodes in episodes:
                    worker.gradient_sum(chunk_episodes)
                seconds[size].append(time.thread_time() - start)
    finally:
        pgdist.worker.FORWARD_PASS_ROWS = default
    print(f"## gradient passes of N={config.episodes} ({len(chunks)} chunk(s), {steps:,} steps), "
          f"{rounds} rounds, CPU time, medians; pgdist's default: {default} steps a pass")
    print()
    print("| steps a pass | ms | steps per CPU second | / the first |")
    print("|---|---:|---:|---:|")
    first = statistics.median(seconds[sizes[0]])
    for size in sizes:
        median = statistics.median(seconds[size])
        print(f"| {size or 'all (one pass a chunk)'} | {1e3 * median:.0f} | {steps / median:,.0f} | {first / median:.2f} |")
    print()


def peak_memory(config: Config, balancing: bool) -> None:
    """A worker's peak RSS for one chunk of the configuration's layout (the first of N), against its RSS before.

    Run it in a fresh process per chunk size: the peak (ru_maxrss) never comes down.
    """
    worker, theta = build(config, balancing)
    cut = layout(config)
    worker.run(theta, 0, make_chunks(min(cut.envs_per_chunk, config.episodes), cut.chunk_episodes, config.seed, 0)[0])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    chunk = make_chunks(config.episodes, cut.chunk_episodes, config.seed, 1)[0]
    start = time.perf_counter()
    result = worker.run(theta, 0, chunk)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"| {config.env} | {chunk.episodes} | {cut.envs_per_chunk} | {result.steps:,} | {result.steps / chunk.episodes:.0f} "
          f"| {before:,.0f} | {peak:,.0f} | {1024**2 * (peak - before) / result.steps:,.0f} | {time.perf_counter() - start:.1f} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=4000)
    parser.add_argument("--chunk-episodes", type=int, help="default: pgdist.layout's rule for N")
    parser.add_argument("--envs-per-chunk", type=int, help="default: pgdist.layout's rule for the chunk")
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--cprofile", type=int, default=0, metavar="TOP", help="also print cProfile's top entries")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--pass-steps", type=int, nargs="+", metavar="STEPS",
                        help="only time the gradient passes with at most STEPS steps a pass (0: one pass a chunk)")
    parser.add_argument("--rounds", type=int, default=8, help="with --pass-steps: rounds of the sizes in turn")
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--balancing", action="store_true",
                        help="with --memory on CartPole-v1: a policy that balances the pole, so episodes last 500 steps")
    parser.add_argument("--memory", action="store_true",
                        help="only a worker's peak RSS for one chunk (a markdown table row: env, chunk episodes, "
                        "copies, kept steps, mean length, RSS before MiB, peak MiB, bytes per kept step, seconds)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.torch_threads)
    config = Config(
        env=args.env,
        episodes=args.episodes,
        chunk_episodes=args.chunk_episodes,
        envs_per_chunk=args.envs_per_chunk,
        seed=0,
        backend="local",
    )
    if args.memory:
        peak_memory(config, args.balancing)
        return 0
    if args.pass_steps:
        pass_steps(config, args.pass_steps, args.rounds)
        return 0
    timed_breakdown(config, args.iterations)
    if args.cprofile:
        cprofile_top(config, args.cprofile)
    return 0


if __name__ == "__main__":
    sys.exit(main())

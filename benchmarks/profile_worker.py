"""Where a rollout worker's time and memory go: one iteration's chunks of RolloutWorker.run in this process.

    .venv/bin/python benchmarks/profile_worker.py                  # CartPole-v1, N=4000, the rule's layout
    .venv/bin/python benchmarks/profile_worker.py --episodes 32000 --iterations 3
    .venv/bin/python benchmarks/profile_worker.py --episodes 32000 --pass-steps 0 131072 65536 32768 16384 --rounds 10
    .venv/bin/python benchmarks/profile_worker.py --memory --episodes 32000 [--balancing]
    .venv/bin/python benchmarks/profile_worker.py --memory --env MinAtar/Breakout-v1 --set chunk_episodes=32 envs_per_chunk=8
    .venv/bin/py-spy record -o worker.svg -- .venv/bin/python benchmarks/profile_worker.py

The chunks run one after another, as the local backend runs them. The parts are timed by clocks
wrapped around pgdist's own functions (no profiler's overhead) in this thread's CPU time, which
other processes do not inflate (their cache and memory traffic still can): the vector env's step,
the policy's network in the rollout (``pgdist.policy.mlp_forward``), turning its output into
actions (``act``: the logits normalised and the inverse-CDF draw), the rest of ``rollout()`` (numpy
bookkeeping, tensors, the loop) and ``gradient_sum()`` (forward and backward passes).

``--pass-steps``: the gradient passes of one iteration's chunks (rolled out once) with at most each
size of steps a pass (``pgdist.gradients.FORWARD_PASS_ROWS``; 0: a chunk in one pass), sizes in turn.
``--memory``: a worker's peak RSS over one chunk (run it in a fresh process each time: the peak never
comes down), the copy-steps the chunk stored and kept, and tracemalloc's peak (numpy's side).
``--balancing`` gives CartPole a policy that pushes towards where the pole falls, so that its episodes
last to the 500-step cap: the most steps a CartPole chunk can hold.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from contextlib import ExitStack

import torch

import pgdist.gradients
import pgdist.policy
from pgdist import Config
from pgdist.chunks import make_chunks
from pgdist.envs import env_spaces
from pgdist.estimators import Estimator
from pgdist.layout import layout
from pgdist.policy import make_policy
from pgdist.theta import parameters_to_vector
from pgdist.worker import RolloutWorker

from harness import Meter, config_overrides, in_turn, median, number, print_machine, table, vector_env_steps  # beside this


def build(config: Config, balancing: bool = False):
    spaces = env_spaces(config.env)
    policy = make_policy(spaces.observation_shape, spaces.action_space, config.hidden, config.seed)
    if balancing:
        balance(policy)
    worker = RolloutWorker(config.env, policy, Estimator.of(config), layout(config).envs_per_chunk,
                           max_episode_steps=config.max_episode_steps)
    return worker, parameters_to_vector(policy).numpy()


def balance(policy) -> None:
    """CartPole's policy pushes towards where the pole falls (angle + angular velocity), nearly always."""
    with torch.no_grad():
        for parameter in policy.parameters():
            parameter.zero_()
        first, second, last = (layer for layer in policy.net if isinstance(layer, torch.nn.Linear))
        first.weight[0, 2:4] = 20.0
        second.weight[0, 0] = 3.0
        last.weight[:, 0] = torch.tensor([-20.0, 20.0])


def chunks(config: Config, draw: int):
    return make_chunks(config.episodes, layout(config).chunk_episodes, config.seed, draw)


def run_iteration(worker, theta, config: Config, draw: int) -> int:
    return sum(worker.run(theta, 0, chunk).steps for chunk in chunks(config, draw))


def breakdown(config: Config, iterations: int) -> None:
    worker, theta = build(config)
    run_iteration(worker, theta, config, 0)  # builds the vector env
    meters = {name: Meter() for name in ("run", "rollout", "env.step", "net", "act", "gradient_sum")}
    with ExitStack() as stack:
        for name in ("run", "rollout", "gradient_sum"):
            stack.enter_context(meters[name].on(worker, name))
        stack.enter_context(meters["act"].on(worker.policy, "act"))
        stack.enter_context(meters["net"].on(pgdist.policy, "mlp_forward"))
        stack.enter_context(vector_env_steps(meters["env.step"]))
        start = time.thread_time()
        steps = sum(run_iteration(worker, theta, config, draw) for draw in range(1, iterations + 1))
        seconds = time.thread_time() - start
    s = {name: meter.seconds for name, meter in meters.items()}
    locksteps = meters["env.step"].calls
    cut = layout(config)
    print(f"## a worker's time: {config.env}, N={config.episodes}, {cut.chunk_episodes} episodes a chunk on "
          f"{cut.envs_per_chunk} copies, {iterations} iteration(s), CPU time of this thread\n")
    print(f"{steps:,} kept env steps in {seconds:.3f} CPU s = {steps / seconds:,.0f} steps per CPU second; {locksteps} "
          f"locksteps of the vector env ({steps / locksteps:.1f} kept steps each, of "
          f"{meters['env.step'].items / locksteps:.0f} copies stepped)\n")
    parts = [("env.step (the vector env's step)", s["env.step"]),
             ("the policy's network in the rollout (mlp_forward)", s["net"]),
             ("actions from the network's output (logits normalised, inverse-CDF draw)", s["act"] - s["net"]),
             ("the rest of rollout(): numpy bookkeeping, tensors, the loop", s["rollout"] - s["env.step"] - s["act"]),
             ("gradient_sum(): forward and backward passes, sums", s["gradient_sum"]),
             ("run() outside rollout() and gradient_sum() (theta loaded)", s["run"] - s["rollout"] - s["gradient_sum"]),
             ("total run()", s["run"])]
    table(["part", "seconds", "share", "µs per lockstep"],
          [[name, number(value, 3), f"{value / s['run']:.1%}", number(1e6 * value / locksteps, 1)] for name, value in parts])


def pass_steps(config: Config, sizes: list[int], rounds: int) -> None:
    """The gradient passes of one iteration's chunks, rolled out once, at most each of ``sizes`` steps a pass."""
    worker, theta = build(config)
    worker.load(theta, 0)
    episodes = [worker.rollout(chunk) for chunk in chunks(config, 0)]
    steps = sum(len(e.episode) for e in episodes)
    default = pgdist.gradients.FORWARD_PASS_ROWS

    def passes(size: int):
        def run() -> float:
            pgdist.gradients.FORWARD_PASS_ROWS = size or steps
            start = time.thread_time()
            for chunk_episodes in episodes:
                worker.gradient_sum(chunk_episodes)
            return time.thread_time() - start
        return run

    try:
        seconds = in_turn({size: passes(size) for size in sizes}, rounds)
    finally:
        pgdist.gradients.FORWARD_PASS_ROWS = default
    print(f"## gradient passes of N={config.episodes} ({len(episodes)} chunk(s), {steps:,} steps), {rounds} rounds "
          f"in turn, CPU time, medians; pgdist's default: {default} steps a pass\n")
    first = median(seconds[sizes[0]])
    table(["steps a pass", "ms", "steps per CPU second", "/ the first"],
          [[size or "all (one pass a chunk)", number(1e3 * median(seconds[size])), number(steps / median(seconds[size])),
            f"{first / median(seconds[size]):.2f}"] for size in sizes])


def peak_memory(config: Config, balancing: bool) -> None:
    """A worker's peak RSS over one chunk of the configuration's layout (the first of N), against its RSS before."""
    worker, theta = build(config, balancing)
    cut = layout(config)
    worker.run(theta, 0, make_chunks(min(cut.envs_per_chunk, config.episodes), cut.chunk_episodes, config.seed, 0)[0])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    chunk = chunks(config, 1)[0]
    copies = Meter()
    with vector_env_steps(copies):
        tracemalloc.start()
        result = worker.run(theta, 0, chunk)
        _, traced = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    table(["env", "chunk episodes", "copies", "copy-steps stored", "kept steps", "mean episode length",
           "RSS before MiB", "peak RSS MiB", "bytes per kept step", "tracemalloc peak MB"],
          [[config.env + (", --balancing" if balancing else ""), chunk.episodes, cut.envs_per_chunk, number(copies.items),
            number(result.steps), number(result.steps / chunk.episodes), number(before), number(peak),
            number(2**20 * (peak - before) / result.steps), number(traced / 1e6, 1)]])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--episodes", type=int, default=4000)
    parser.add_argument("--set", nargs="+", default=[], metavar="FIELD=VALUE",
                        help="Config fields to override, e.g. chunk_episodes=2000 envs_per_chunk=512")
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--pass-steps", type=int, nargs="+", metavar="STEPS",
                        help="only the gradient passes with at most STEPS steps a pass (0: one pass a chunk)")
    parser.add_argument("--rounds", type=int, default=8, help="with --pass-steps: rounds of the sizes in turn")
    parser.add_argument("--memory", action="store_true", help="only a worker's peak memory over one chunk")
    parser.add_argument("--balancing", action="store_true", help="with --memory on CartPole-v1: 500-step episodes")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = Config(env=args.env, episodes=args.episodes, seed=0, backend="local", **config_overrides(parser, args.set))
    print_machine()
    if args.memory:
        peak_memory(config, args.balancing)
    elif args.pass_steps:
        pass_steps(config, args.pass_steps, args.rounds)
    else:
        breakdown(config, args.iterations)
    return 0


if __name__ == "__main__":
    sys.exit(main())

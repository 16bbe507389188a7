"""Time to solve, measured fairly: pgdist's recipes (Ray, every core) against Stable-Baselines3 PPO.

The rule, the same for both sides:
- The clock is training wall time only. It starts at the first training step (pgdist's first
  ``learner.step()``; SB3's ``learn()`` as its training starts); start-up (Python, imports, Ray's
  start, the Learner's or the PPO model's construction) is recorded apart.
- Every EVAL_EVERY (10) s of training time the policy is evaluated twice by one evaluator code,
  ``pgdist.evaluate.evaluate``: EVAL_EPISODES (20) episodes with its mode (``greedy=True``) and 20
  sampled, seed EVAL_SEED every time; each evaluation's wall time is taken out of the clock.
- A threshold is reached at the first evaluation whose better mean (mode or sampled; the table
  says which) is at least it: HalfCheetah 1,000 and 3,000; Hopper and Walker2d 2,000; Hopper's
  1,000 is reported too, though a Hopper standing still earns it (reported, never tuned to).
- A run ends at the budget (600 s of training time) or, with --stop-at-threshold, once every
  threshold of its task is reached. Env steps: every env step taken in training (pgdist's
  ``env_steps``, SB3's ``num_timesteps``).
- pgdist: the task's recipe (configs/<task>.yaml) as a library (``Learner``, ``learner.step()`` in
  a loop) on the Ray backend with the default workers (every CPU Ray sees, no more than N's chunks);
  ``iterations`` is raised so that only the budget stops it; ``--set key=value`` (YAML values)
  overrides recipe fields. An SB3 policy goes to the evaluator as a module returning its action
  distribution, its observations normalised by VecNormalize's statistics of that moment.
- SB3 PPO: rl-baselines3-zoo's entries (hyperparams/ppo.yml at commit 22e3ff2; v4 entries, the zoo
  has no v5 ones, v5 has the same bodies, rewards and time limits), environments as the zoo makes
  them (make_vec_env, DummyVecEnv, VecNormalize with the entry's gamma), torch's default threads as
  the zoo leaves them (--sb3-threads N as the zoo's --num-threads N: on a busy 2-core machine PPO's
  small batches ran 7x slower on 2 threads than on 1). The entries' learning rates are constant, so
  their n_timesteps (1e6) says only where the zoo stops: here the budget stops both sides.

Each run is a process of its own; the sides go in turn, seed by seed, task by task. Output: per
task, tables of the times and steps to each threshold (median and per seed), the final means and
the curve; every evaluation in a CSV (task, side, seed, seconds, steps, mode, sampled).

    .venv/bin/pip install -c constraints.txt -e ".[bench,mujoco]"
    .venv/bin/python benchmarks/time_to_solve.py --tasks halfcheetah --seeds 0 --budget 15   # a smoke test
    .venv/bin/python benchmarks/time_to_solve.py --tasks hopper --sides pgdist --seeds 0 --set lr=0.001
    # the measurement on 16 cores (18 runs of 10 min + evaluations: about 4 h)
    .venv/bin/python benchmarks/time_to_solve.py --tasks hopper halfcheetah walker2d --seeds 0 1 2 \\
        --sides pgdist sb3 --budget 600 --csv runs/time_to_solve.csv
    # the curves of earlier runs, drawn (nothing runs)
    .venv/bin/python benchmarks/time_to_solve.py --figure docs/time-to-solve.png --from docs/time-to-solve-evaluations.csv
    # and SB3 on one torch thread, to see whether the default threads slow its small batches
    .venv/bin/python benchmarks/time_to_solve.py --sides sb3 --sb3-threads 1 --csv runs/time_to_solve-sb3-1.csv

The recipes cut N into 2 chunks (Hopper 32 episodes in 2 x 16, HalfCheetah 8 in 2 x 4), which keep 2
workers busy whatever the cores; ``--set chunk_episodes=2 envs_per_chunk=2`` (Hopper: 16 chunks) or
``=1`` (HalfCheetah: 8) spreads them wider: the same estimator, other chunks' random streams.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import ROOT, median, number, print_machine, run_command, table, version  # beside this script

EVAL_EVERY = 10.0  # seconds of training time between evaluations
EVAL_EPISODES = 20  # per evaluation, with the mode and again sampled
EVAL_SEED = 12345  # every evaluation's, both sides'
NEVER = 10**9  # iterations (pgdist) and total_timesteps (SB3): the budget stops a run, not these
MARK = "@@time_to_solve "  # the children's event lines
SIDES = {"pgdist": "pgdist (Ray)", "sb3": "SB3 PPO (zoo)"}


@dataclass(frozen=True)
class Task:
    """One environment: pgdist's recipe, the returns that count as solved, SB3 PPO's zoo entry."""

    env: str
    recipe: str
    thresholds: tuple[float, ...]
    zoo_entry: str
    zoo: dict  # that entry, as the zoo writes it
    note: str = ""


MUJOCO_POLICY = "dict(log_std_init=-2, ortho_init=False, activation_fn=nn.ReLU, net_arch=dict(pi=[256, 256], vf=[256, 256]))"
ZOO_PPO_HOPPER = dict(normalize=True, n_envs=1, policy="MlpPolicy", n_timesteps=1_000_000, batch_size=32, n_steps=512,
                      gamma=0.999, learning_rate=9.80828e-05, ent_coef=0.00229519, clip_range=0.2, n_epochs=5,
                      gae_lambda=0.99, max_grad_norm=0.7, vf_coef=0.835671, policy_kwargs=MUJOCO_POLICY)
ZOO_PPO_HALFCHEETAH = dict(normalize=True, n_envs=1, policy="MlpPolicy", n_timesteps=1_000_000, batch_size=64,
                           n_steps=512, gamma=0.98, learning_rate=2.0633e-05, ent_coef=0.000401762, clip_range=0.1,
                           n_epochs=20, gae_lambda=0.92, max_grad_norm=0.8, vf_coef=0.58096, policy_kwargs=MUJOCO_POLICY)
# The zoo's Walker2d-v4 entry has no policy_kwargs: SB3's default MlpPolicy (64-64 tanh, log_std_init 0).
ZOO_PPO_WALKER2D = dict(normalize=True, n_envs=1, policy="MlpPolicy", n_timesteps=1_000_000, batch_size=32,
                        n_steps=512, gamma=0.99, learning_rate=5.05041e-05, ent_coef=0.000585045, clip_range=0.1,
                        n_epochs=20, gae_lambda=0.95, max_grad_norm=1, vf_coef=0.871923)
TASKS = {
    "hopper": Task("Hopper-v5", "configs/hopper.yaml", (1000.0, 2000.0), "Hopper-v4", ZOO_PPO_HOPPER,
                   "1,000: a Hopper standing still earns it; reported, never tuned to"),
    "halfcheetah": Task("HalfCheetah-v5", "configs/halfcheetah.yaml", (1000.0, 3000.0), "HalfCheetah-v4",
                        ZOO_PPO_HALFCHEETAH),
    "walker2d": Task("Walker2d-v5", "configs/walker2d.yaml", (2000.0,), "Walker2d-v4", ZOO_PPO_WALKER2D),
}


def emit(event: str, **values) -> None:
    print(MARK + json.dumps({"event": event, **values}), flush=True)


def parse_sets(pairs: list[str]) -> dict:
    """``key=value`` words as Config fields, each value read as YAML; a ConfigError names a bad one."""
    import yaml

    from pgdist.config import coerce

    return {key: coerce(key, yaml.safe_load(value), "--set: ") for key, _, value in (p.partition("=") for p in pairs)}


# --- the children: training, timed and evaluated -------------------------------------------------


class Watch:
    """The clock of training time and the evaluations it calls for, the same for both sides.

    ``begin()`` starts the clock; ``after_training(policy, steps)``, called between training steps,
    evaluates when EVAL_EVERY more seconds of training have passed (or the budget is spent) and
    says whether to go on. An evaluation's wall time is added to ``excluded``, off the clock.
    """

    def __init__(self, task: Task, budget: float, stop_at_threshold: bool):
        from pgdist import Config

        self.task, self.budget, self.stop_at_threshold = task, budget, stop_at_threshold
        self.config = Config(env=task.env)  # both sides': the env's own time limit, a copy of it per episode
        self.start, self.excluded, self.next_at = math.nan, 0.0, EVAL_EVERY
        self.best = -math.inf

    def begin(self) -> None:
        self.start = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.start - self.excluded

    def after_training(self, policy, steps: int) -> bool:
        from pgdist.evaluate import evaluate

        seconds = self.seconds()
        if seconds < self.next_at and seconds < self.budget:
            return True
        while self.next_at <= seconds:
            self.next_at += EVAL_EVERY
        start = time.perf_counter()
        mode = float(evaluate(self.config, policy, EVAL_EPISODES, greedy=True, seed=EVAL_SEED).mean())
        sampled = float(evaluate(self.config, policy, EVAL_EPISODES, greedy=False, seed=EVAL_SEED).mean())
        took = time.perf_counter() - start
        self.excluded += took
        emit("eval", seconds=seconds, steps=steps, mode=mode, sampled=sampled, eval_seconds=took)
        self.best = max(self.best, mode, sampled)
        solved = self.stop_at_threshold and self.best >= max(self.task.thresholds)
        return seconds < self.budget and not solved


def pgdist_child(task: Task, seed: int, sets: dict, watch: Watch) -> int:
    """The recipe as a library on the Ray backend: learner.step() until the budget's end."""
    from pgdist import Config, Learner

    start = time.perf_counter()
    config = Config.from_yaml(ROOT / task.recipe, **{"backend": "ray", "iterations": NEVER, **sets, "seed": seed})
    with Learner(config) as learner:
        emit("start", setup=time.perf_counter() - start, workers=learner.backend.workers, config=config.to_dict())
        watch.begin()
        steps = 0
        while True:
            steps += learner.step()["env_steps"]
            if not watch.after_training(learner.policy, steps):
                break
    return 0


def zoo_ppo(hp: dict, env, seed: int):
    """PPO as the zoo builds it from its entry: policy_kwargs evaluated with torch.nn, as the zoo reads it."""
    from stable_baselines3 import PPO
    from torch import nn

    settings = {k: v for k, v in hp.items() if k not in ("n_envs", "n_timesteps", "policy", "normalize")}
    if "policy_kwargs" in settings:
        settings["policy_kwargs"] = eval(settings["policy_kwargs"], {"nn": nn})
    return PPO(hp["policy"], env, seed=seed, device="cpu", verbose=0, **settings)


def zoo_env(task: Task, seed: int):
    """The zoo's environments: make_vec_env (DummyVecEnv), and VecNormalize where the entry says ``normalize``."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    env = make_vec_env(task.env, n_envs=task.zoo["n_envs"], seed=seed, vec_env_cls=DummyVecEnv)
    return VecNormalize(env, gamma=task.zoo["gamma"]) if task.zoo.get("normalize") else env


def sb3_child(task: Task, seed: int, threads: int | None, watch: Watch) -> int:
    """PPO with the zoo's entry, its learn() ended by the watch at the budget's end; torch's default
    threads unless ``threads`` (the zoo's --num-threads)."""
    import torch
    from stable_baselines3.common.callbacks import BaseCallback
    from torch.distributions import Independent, Normal

    class SB3Policy(torch.nn.Module):
        """An SB3 policy as pgdist's evaluator takes one: states -> its action distribution, the states
        first normalised with the training env's VecNormalize statistics of this moment."""

        def __init__(self, model):
            super().__init__()
            self.policy, self.normalize = model.policy, model.get_vec_normalize_env()

        def forward(self, states: torch.Tensor):
            if self.normalize is not None:
                states = torch.as_tensor(self.normalize.normalize_obs(states.numpy()), dtype=states.dtype)
            distribution = self.policy.get_distribution(states).distribution
            return Independent(Normal(distribution.loc, distribution.scale, validate_args=False), 1)

    class Watched(BaseCallback):
        def _on_training_start(self) -> None:
            self.evaluated = SB3Policy(self.model)  # reads VecNormalize's statistics as they are at each call
            emit("start", setup=time.perf_counter() - start, workers=torch.get_num_threads())
            watch.begin()

        def _on_step(self) -> bool:
            return watch.after_training(self.evaluated, self.num_timesteps)

    start = time.perf_counter()
    if threads:
        torch.set_num_threads(threads)
    model = zoo_ppo(task.zoo, zoo_env(task, seed), seed)
    model.learn(total_timesteps=NEVER, callback=Watched())
    return 0


# --- running them and the report ---------------------------------------------------------------


@dataclass
class Run:
    task: str
    side: str
    seed: int
    evaluations: list[dict] = field(default_factory=list)  # the eval events, in order
    startup: float = math.nan  # launch to the first training step
    setup: float = math.nan  # of which the Learner's (Ray's start) or the PPO model's construction
    workers: int | None = None  # pgdist's Ray workers; SB3's torch threads
    notes: list[str] = field(default_factory=list)

    def reached(self, threshold: float) -> dict | None:
        """The first evaluation whose better mean reaches ``threshold``, with ``by`` saying which mean did."""
        for evaluation in self.evaluations:
            by = [name for name in ("mode", "sampled") if evaluation[name] >= threshold]
            if by:
                return {**evaluation, "by": " and ".join(by)}
        return None


def run_child(name: str, side: str, seed: int, args, folder: Path) -> Run:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", side, "--tasks", name, "--seeds", str(seed),
               "--budget", str(args.budget)] + ["--stop-at-threshold"] * args.stop_at_threshold
    command += ["--sb3-threads", str(args.sb3_threads)] if args.sb3_threads else []
    command += [word for pair in args.set for word in ("--set", pair)]
    child = run_command(command, folder / f"{name}-{side}-seed{seed}.log", args.timeout or 3 * args.budget + 600)
    run = Run(name, side, seed)
    for at, line in child.lines:
        if line.startswith(MARK):
            event = json.loads(line[len(MARK):])
            if event["event"] == "start":
                run.startup, run.setup, run.workers = at, event["setup"], event["workers"]
            elif event["event"] == "eval":
                run.evaluations.append(event)
    if child.returncode != 0:
        run.notes.append("timed out" if child.timed_out else f"exited {child.returncode}")
        print(f"  {name} {side} seed {seed} failed; its last lines:\n{child.tail()}", file=sys.stderr)
    return run


def seconds_or_not(value: float, digits: int = 1) -> str:
    return "not reached in budget" if math.isinf(value) else number(value, digits)


def report(name: str, runs: list[Run]) -> None:
    task = TASKS[name]
    by_side = {side: [r for r in runs if r.side == side] for side in SIDES if any(r.side == side for r in runs)}
    print(f"## {task.env}: training seconds and env steps to a mean return, over seeds "
          f"{' '.join(str(r.seed) for r in next(iter(by_side.values())))}\n")
    rows = []
    for side, side_runs in by_side.items():
        for threshold in task.thresholds:
            hits = [r.reached(threshold) for r in side_runs]
            times = [hit["seconds"] if hit else math.inf for hit in hits]
            steps = [hit["steps"] if hit else math.inf for hit in hits]
            per_seed = "; ".join(f"seed {r.seed}: " + (f"{hit['seconds']:.1f} s, {hit['steps']:,} steps ({hit['by']})"
                                                       if hit else "not reached in budget")
                                 for r, hit in zip(side_runs, hits))
            rows.append([SIDES[side], f"{threshold:,.0f}", f"{sum(h is not None for h in hits)}/{len(hits)}",
                         seconds_or_not(median(times)), seconds_or_not(median(steps), 0), per_seed])
    table(["side", "return ≥", "seeds reaching it", "training s (median)", "env steps (median)",
           "per seed (by the mode's or sampled mean)"], rows)
    if task.note:
        print(f"- {task.note}.\n")
    rows = []
    for side, side_runs in by_side.items():
        lasts = [r.evaluations[-1] for r in side_runs if r.evaluations]
        rows.append([SIDES[side], *(f"{number(median([e[mean] for e in lasts]), 1)} ("
                                    f"{', '.join(number(e[mean], 1) for e in lasts)})" for mean in ("mode", "sampled")),
                     number(median([e["seconds"] for e in lasts]), 1), number(median([e["steps"] for e in lasts])),
                     number(median([len(r.evaluations) for r in side_runs])),
                     number(median([sum(e["eval_seconds"] for e in r.evaluations) for r in side_runs]), 1),
                     number(median([r.startup for r in side_runs]), 1),
                     number(median([r.setup for r in side_runs]), 1),
                     ", ".join(str(r.workers) for r in side_runs),
                     "; ".join(f"seed {r.seed} {note}" for r in side_runs for note in r.notes)])
    table(["side", "final mode mean (per seed)", "final sampled mean (per seed)", "training s", "env steps",
           "evaluations", "their wall s (off the clock)", "start-up s", "of which construction s",
           "workers (SB3: torch threads)", "notes"], rows)
    print("Medians over seeds; start-up: launch to the first training step, off the clock.\n")
    curve(task, by_side)


def curve(task: Task, by_side: dict[str, list[Run]]) -> None:
    """The curve in short, at about ten points: the k-th evaluation of every seed, medians over seeds."""
    longest = max((len(r.evaluations) for runs in by_side.values() for r in runs), default=0)
    every = max(1, round(longest / 10))
    rows = []
    for k in range(every - 1, longest, every):
        row = []
        for runs in by_side.values():
            at = [r.evaluations[k] for r in runs if len(r.evaluations) > k]
            seconds, steps, mode, sampled = (median([e[key] for e in at]) for key in ("seconds", "steps", "mode", "sampled"))
            row.append(f"{seconds:.0f} s, {steps:,.0f} steps: {mode:.0f} / {sampled:.0f}" if at else "–")
        rows.append([k + 1, *row])
    print(f"### {task.env}: the curve, every {every} evaluation(s) (all of them in the CSV)\n")
    table(["evaluation", *(f"{SIDES[side]}: training s, env steps: mode / sampled" for side in by_side)], rows)


def figure(paths: list[Path], out: Path) -> Path:
    """Every evaluation of the CSVs against training seconds, a panel per task: each seed's better mean
    (mode or sampled) per side, and the task's thresholds."""
    from matplotlib.figure import Figure

    rows = []
    for path in paths:
        with open(path, newline="") as file:
            rows += csv.DictReader(file)
    tasks = [name for name in TASKS if any(row["task"] == name for row in rows)]
    fig = Figure(figsize=(5.2 * len(tasks), 3.8), layout="constrained")
    colours = {"pgdist": "tab:blue", "sb3": "tab:orange"}
    for axes, name in zip(fig.subplots(1, len(tasks), squeeze=False)[0], tasks):
        mine = [row for row in rows if row["task"] == name]
        for side in SIDES:
            for seed in sorted({row["seed"] for row in mine if row["side"] == side}):
                run = [row for row in mine if row["side"] == side and row["seed"] == seed]
                axes.plot([float(row["seconds"]) for row in run],
                          [max(float(row["mode"]), float(row["sampled"])) for row in run],
                          color=colours[side], alpha=0.85, label=f"{SIDES[side]}, seed {seed}")
        for threshold in TASKS[name].thresholds:
            axes.axhline(threshold, color="grey", linestyle=":", linewidth=1)
        axes.set_title(f"{TASKS[name].env} (evaluations every {EVAL_EVERY:g} s, off the clock)", fontsize=9)
        axes.set_xlabel("training seconds")
        axes.set_ylabel(f"mean return of {EVAL_EPISODES} episodes (mode or sampled, the better)", fontsize=8)
        axes.legend(fontsize=7)
    fig.savefig(out, dpi=110)
    return out


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", choices=list(TASKS), nargs="+", default=list(TASKS), help="default: all")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="default: 0 1 2")
    parser.add_argument("--sides", choices=list(SIDES), nargs="+", default=list(SIDES), help="default: both")
    parser.add_argument("--budget", type=float, default=600.0, help="seconds of training time per run (600)")
    parser.add_argument("--stop-at-threshold", action="store_true",
                        help="end a run once every threshold of its task is reached")
    parser.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                        help="a pgdist recipe field for every task, the value read as YAML (several allowed)")
    parser.add_argument("--csv", type=Path, help="every evaluation (default: evaluations.csv in --out)")
    parser.add_argument("--out", type=Path, help="folder for the runs' logs (default: runs/time_to_solve/<time>)")
    parser.add_argument("--timeout", type=float, help="wall seconds before a run is killed (default: 3 budgets + 600)")
    parser.add_argument("--sb3-threads", type=int, help="SB3's torch threads (default: torch's, as in the zoo)")
    parser.add_argument("--figure", type=Path, metavar="PNG",
                        help="run nothing: draw the evaluations of the --from CSVs into PNG")
    parser.add_argument("--from", dest="sources", type=Path, nargs="+", default=[], metavar="CSV",
                        help="with --figure: evaluation CSVs written by earlier runs")
    parser.add_argument("--child", choices=list(SIDES), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import yaml

    from pgdist import Config, ConfigError

    args = parse_args(argv)
    if args.figure:
        print(f"wrote {figure(args.sources, args.figure)}")
        return 0
    try:
        sets = parse_sets(args.set)
        for name in args.tasks if "pgdist" in args.sides else []:
            if (ROOT / TASKS[name].recipe).exists():
                Config.from_yaml(ROOT / TASKS[name].recipe, **sets)  # its errors before any run starts
    except (ConfigError, yaml.YAMLError) as error:
        print(f"time_to_solve.py: {error}", file=sys.stderr)
        return 2
    if args.child:
        task, seed = TASKS[args.tasks[0]], args.seeds[0]
        watch = Watch(task, args.budget, args.stop_at_threshold)
        if args.child == "pgdist":
            return pgdist_child(task, seed, sets, watch)
        return sb3_child(task, seed, args.sb3_threads, watch)
    if "sb3" in args.sides and not version("stable-baselines3"):
        print('stable-baselines3 is missing: .venv/bin/pip install -c constraints.txt -e ".[bench]"', file=sys.stderr)
        return 2
    out = args.out or ROOT / "runs" / "time_to_solve" / time.strftime("%Y%m%d-%H%M%S")
    csv_path = args.csv or out / "evaluations.csv"
    out.mkdir(parents=True, exist_ok=True)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"# Time to solve: training seconds only, {EVAL_EPISODES} episodes with the mode and {EVAL_EPISODES} "
          f"sampled every {EVAL_EVERY:g} s of it (off the clock, seed {EVAL_SEED}), budget {args.budget:g} s; "
          f"logs in {out}\n")
    print_machine()
    print(f"pgdist: the recipe, Ray backend, default workers, iterations {NEVER:,}"
          + "".join(f", {key} {value}" for key, value in sets.items()) + "\n")
    with open(csv_path, "w", newline="") as file:
        csv.writer(file).writerow(["task", "side", "seed", "seconds", "steps", "mode", "sampled"])
    for name in args.tasks:
        task = TASKS[name]
        sides = list(args.sides)
        if "pgdist" in sides and not (ROOT / task.recipe).exists():
            print(f"- {task.recipe} is missing: pgdist skipped for {task.env}.\n")
            sides.remove("pgdist")
        if "sb3" in sides:
            print(f"SB3 PPO on {task.env}: rl-baselines3-zoo {task.zoo_entry}: "
                  + ", ".join(f"{k} {v}" for k, v in task.zoo.items())
                  + f"; torch threads: {args.sb3_threads or 'torch default'}.\n", flush=True)
        runs = []
        for seed in args.seeds:
            for side in sides:
                run = run_child(name, side, seed, args, out)
                with open(csv_path, "a", newline="") as file:
                    csv.writer(file).writerows([name, side, seed, round(e["seconds"], 3), e["steps"],
                                                round(e["mode"], 2), round(e["sampled"], 2)] for e in run.evaluations)
                last = run.evaluations[-1] if run.evaluations else None
                said = (f"{len(run.evaluations)} evaluations, the last at {last['seconds']:.1f} s, {last['steps']:,} "
                        f"steps: mode {last['mode']:.1f}, sampled {last['sampled']:.1f}" if last else "no evaluation")
                print(f"  {task.env} {SIDES[side]} seed {seed}: {said}", file=sys.stderr, flush=True)
                runs.append(run)
        if runs:
            report(name, runs)
    print(f"Every evaluation: {csv_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

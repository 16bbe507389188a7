"""Wall time to solve a task: pgdist's recipe (with Ray, and without) against Stable-Baselines3 PPO.

    .venv/bin/python benchmarks/time_to_solve.py                                  # CartPole-v1, seeds 0-4
    .venv/bin/python benchmarks/time_to_solve.py --seeds 0 --runs ray local
    .venv/bin/python benchmarks/time_to_solve.py --task halfcheetah --runs ray sb3 --seeds 0

SB3 needs the bench extra, not a dependency of pgdist: ``.venv/bin/pip install -c constraints.txt -e ".[bench]"``
(Stable-Baselines3 >= 2.9, the first to accept gymnasium >= 1.3); the MuJoCo tasks the mujoco extra.

Each run is a process of its own started by this script, so that start-up (Python, imports, Ray's
start) counts; the kinds of run go in turn, seed by seed. Both sides are scored by one evaluator,
pgdist's (``pgdist.evaluate.evaluate``: 100 episodes, sampled actions, seed 12345); an SB3 policy
goes in through a module that returns its action distribution as a torch distribution, with its
observations normalised by the VecNormalize statistics of that moment where the zoo normalises.

CartPole-v1 (--task cartpole), solved = an evaluation mean >= 475:
- pgdist (``ray``; ``local``: with --backend local): ``pgdist train --config configs/cartpole.yaml
  --seed S``, which stops itself when an iteration's mean return reaches stop_return (495) and keeps
  that policy, then ``pgdist eval`` as a second process, not timed. Time to solve = the train
  command's whole wall time, if that evaluation's mean is >= 475.
- SB3 PPO with rl-baselines3-zoo's tuned CartPole-v1 entry (hyperparams/ppo.yml at commit 22e3ff2),
  its environments as the zoo makes them (make_vec_env, DummyVecEnv, seed S), evaluated every
  10,000 steps; time to solve = launch to the end of the first evaluation >= 475, its evaluations
  included. Then, not timed, SB3's own ``evaluate_policy`` checks the policy (another seed).
Hopper-v5 and HalfCheetah-v5 (--task hopper|halfcheetah), solved = an evaluation mean >= 1000: both
sides stop by SB3's rule, an evaluation every 50,000 env steps with its time counted, the first mean
>= 1000 ending the run. pgdist trains configs/hopper.yaml or configs/halfcheetah.yaml as a library
(``Learner`` and ``train`` with ``pgdist.training.Evaluate``): an iteration's batch mean of a few long
episodes is too noisy to stop on. SB3 PPO takes the zoo's Hopper-v4 / HalfCheetah-v4 entries (it has
no v5 entry; v5 has the same bodies, rewards and time limits) with their ``normalize: true``.

Start-up = launch to the first training step, timed as the child's lines arrive.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import ROOT, Command, number, print_machine, run_command, spread, table, version  # beside this script

EVAL_EPISODES = 100
EVAL_SEED = 12345  # pgdist eval's default seed; the SB3 evaluations use it too
CHECK_SEED = 777  # SB3's evaluate_policy check after solving (not timed)
MARK = "@@time_to_solve "  # the children's event lines


@dataclass(frozen=True)
class Task:
    """One environment of the benchmark: pgdist's recipe, the bar, and SB3 PPO's zoo entry for it."""

    env: str
    config: str  # pgdist's recipe
    solved: float  # the evaluation mean (100 episodes, sampled actions) that counts as solved
    zoo_entry: str  # its entry in rl-baselines3-zoo's hyperparams/ppo.yml
    zoo: dict  # that entry, as the zoo writes it
    eval_every: int  # environment steps between evaluations
    pgdist_evaluates: bool = False  # pgdist stops by SB3's rule (Evaluate), not at its recipe's stop_return


# rl-baselines3-zoo, hyperparams/ppo.yml at commit 22e3ff2 (the CartPole entry the same at 00128b5).
ZOO_PPO_CARTPOLE = dict(n_envs=8, n_timesteps=100_000, policy="MlpPolicy", n_steps=32, batch_size=256, gae_lambda=0.8,
                        gamma=0.98, n_epochs=20, ent_coef=0.0, learning_rate="lin_0.001", clip_range="lin_0.2")
MUJOCO_POLICY = "dict(log_std_init=-2, ortho_init=False, activation_fn=nn.ReLU, net_arch=dict(pi=[256, 256], vf=[256, 256]))"
ZOO_PPO_HOPPER = dict(normalize=True, n_envs=1, policy="MlpPolicy", n_timesteps=1_000_000, batch_size=32, n_steps=512,
                      gamma=0.999, learning_rate=9.80828e-05, ent_coef=0.00229519, clip_range=0.2, n_epochs=5,
                      gae_lambda=0.99, max_grad_norm=0.7, vf_coef=0.835671, policy_kwargs=MUJOCO_POLICY)
ZOO_PPO_HALFCHEETAH = dict(normalize=True, n_envs=1, policy="MlpPolicy", n_timesteps=1_000_000, batch_size=64,
                           n_steps=512, gamma=0.98, learning_rate=2.0633e-05, ent_coef=0.000401762, clip_range=0.1,
                           n_epochs=20, gae_lambda=0.92, max_grad_norm=0.8, vf_coef=0.58096, policy_kwargs=MUJOCO_POLICY)
TASKS = {
    "cartpole": Task("CartPole-v1", "configs/cartpole.yaml", 475.0, "CartPole-v1", ZOO_PPO_CARTPOLE, 10_000),
    "hopper": Task("Hopper-v5", "configs/hopper.yaml", 1000.0, "Hopper-v4", ZOO_PPO_HOPPER, 50_000, True),
    "halfcheetah": Task("HalfCheetah-v5", "configs/halfcheetah.yaml", 1000.0, "HalfCheetah-v4", ZOO_PPO_HALFCHEETAH,
                        50_000, True),
}
KINDS = {"ray": "pgdist, Ray backend", "local": "pgdist, --backend local", "sb3": "SB3 PPO (zoo hyperparameters)"}


def emit(event: str, **values) -> None:
    print(MARK + json.dumps({"event": event, **values}), flush=True)


# --- the children --------------------------------------------------------------------------------


class LinearSchedule:
    """The zoo's ``lin_X``: X * progress_remaining (1 at the start of learn(), 0 at its end)."""

    def __init__(self, initial: float):
        self.initial = initial

    def __call__(self, progress_remaining: float) -> float:
        return progress_remaining * self.initial


def zoo_ppo(hp: dict, env, seed: int):
    """PPO as the zoo builds it from its entry: ``lin_X`` schedules, policy_kwargs evaluated with torch.nn."""
    from stable_baselines3 import PPO
    from torch import nn

    settings = {k: v for k, v in hp.items() if k not in ("n_envs", "n_timesteps", "policy", "normalize")}
    for name in ("learning_rate", "clip_range"):
        if isinstance(settings.get(name), str):
            settings[name] = LinearSchedule(float(settings[name].removeprefix("lin_")))
    if "policy_kwargs" in settings:
        settings["policy_kwargs"] = eval(settings["policy_kwargs"], {"nn": nn})  # as the zoo reads it
    return PPO(hp["policy"], env, seed=seed, device="cpu", verbose=0, **settings)


def zoo_env(task: Task, n_envs: int, seed: int, training: bool = True):
    """The zoo's environments: make_vec_env (DummyVecEnv), and VecNormalize where the entry says ``normalize``."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    env = make_vec_env(task.env, n_envs=n_envs, seed=seed, vec_env_cls=DummyVecEnv)
    if task.zoo.get("normalize"):
        env = VecNormalize(env, gamma=task.zoo.get("gamma", 0.99), training=training, norm_reward=training)
    return env


def sb3_child(task: Task, seed: int, eval_every: int) -> int:
    """Train PPO with the zoo's entry until an evaluation mean reaches the task's bar."""
    import numpy as np
    import torch
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.evaluation import evaluate_policy
    from torch.distributions import Categorical, Independent, Normal

    from pgdist.config import Config
    from pgdist.evaluate import evaluate

    recipe = Config.from_yaml(ROOT / task.config)
    if task.pgdist_evaluates:  # evaluate as pgdist's Evaluate does: one copy of the env per episode
        recipe = recipe.replace(envs_per_chunk=None)

    class SB3Policy(torch.nn.Module):
        """An SB3 policy as pgdist's evaluator takes one: states -> its action distribution, the states
        first normalised with the training env's VecNormalize statistics of this moment, if it has them."""

        def __init__(self, model):
            super().__init__()
            self.policy, self.normalize = model.policy, model.get_vec_normalize_env()

        def forward(self, states: torch.Tensor):
            if self.normalize is not None:
                states = torch.as_tensor(self.normalize.normalize_obs(states.numpy()), dtype=states.dtype)
            distribution = self.policy.get_distribution(states).distribution
            if isinstance(distribution, Normal):
                return Independent(Normal(distribution.loc, distribution.scale, validate_args=False), 1)
            return Categorical(logits=distribution.logits, validate_args=False)

    class SolveCallback(BaseCallback):
        def __init__(self):
            super().__init__()
            self.next_eval = eval_every

        def _on_training_start(self) -> None:
            emit("start", steps=self.num_timesteps)

        def _on_step(self) -> bool:
            if self.num_timesteps < self.next_eval:
                return True
            self.next_eval += eval_every
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # an evaluation's small batches are fastest on one thread
            start = time.perf_counter()
            returns = evaluate(recipe, SB3Policy(self.model), EVAL_EPISODES, seed=EVAL_SEED)
            torch.set_num_threads(threads)
            mean = float(returns.mean())
            emit("eval", steps=self.num_timesteps, mean=mean, sd=float(returns.std()), seconds=time.perf_counter() - start)
            if mean >= task.solved:
                emit("solved", steps=self.num_timesteps)
                return False
            return True

    hp = task.zoo
    model = zoo_ppo(hp, zoo_env(task, hp["n_envs"], seed), seed)
    model.learn(total_timesteps=hp["n_timesteps"], callback=SolveCallback())
    emit("stopped", steps=model.num_timesteps)
    check_env = zoo_env(task, 10, CHECK_SEED, training=False)  # not timed: SB3's own evaluation, another seed
    if hp.get("normalize"):
        check_env.obs_rms = model.get_vec_normalize_env().obs_rms
    rewards, _ = evaluate_policy(model, check_env, n_eval_episodes=EVAL_EPISODES, deterministic=False,
                                 return_episode_rewards=True)
    emit("check", mean=float(np.mean(rewards)))
    return 0


def pgdist_child(task: Task, seed: int, backend: str, eval_every: int) -> int:
    """Train the task's recipe as a library until an evaluation mean reaches its bar: SB3's rule."""
    from pgdist import Callback, Config, Learner, train
    from pgdist.training import Evaluate

    class Start(Callback):
        def on_start(self, learner) -> None:
            emit("start", steps=0)

    def evaluated(result) -> None:
        emit("eval", steps=result.steps, mean=result.mean, sd=result.sd, seconds=result.seconds)
        if result.mean >= task.solved:
            emit("solved", steps=result.steps, updates=result.theta_version)

    watch = Evaluate(eval_every, EVAL_EPISODES, stop_mean=task.solved, seed=EVAL_SEED, on_evaluation=evaluated)
    with Learner(Config.from_yaml(ROOT / task.config, seed=seed, backend=backend)) as learner:
        train(learner, [Start(), watch])
        emit("stopped", steps=watch.steps, updates=learner.version)
    return 0


# --- running them ----------------------------------------------------------------------------------


@dataclass
class Result:
    kind: str
    seed: int
    solved: bool = False
    time_to_solve: float = math.nan  # the time that counts, solved or not (see ``solved``)
    startup: float = math.nan
    stop: float = math.nan  # launch to the stop: pgdist's stop_return line; else the solving evaluation's end
    after: float = math.nan  # pgdist train: its stop line to its exit (checkpoint, Ray's stop)
    updates: int | None = None  # pgdist iterations, or PPO rollouts
    env_steps: int | None = None
    eval_mean: float = math.nan
    eval_sd: float = math.nan
    eval_seconds: float = math.nan  # pgdist train: the eval process's; else its evaluations' (inside the time)
    evaluations: int | None = None
    check_mean: float = math.nan  # SB3's evaluate_policy, not timed
    notes: list[str] = field(default_factory=list)


def pgdist_command() -> list[str]:
    script = Path(sys.executable).parent / "pgdist"
    return [str(script)] if script.exists() else [sys.executable, "-m", "pgdist.cli"]


def run_recipe(task: Task, kind: str, seed: int, folder: Path, timeout: float) -> Result:
    """``pgdist train`` with the recipe (it stops at stop_return), then ``pgdist eval`` of its run, not timed."""
    result, out = Result(kind, seed), folder / "run"
    command = pgdist_command() + ["train", "--config", task.config, "--seed", str(seed), "--out", str(out)]
    train = run_command(command + (["--backend", "local"] if kind == "local" else []), folder / "train.log", timeout)
    result.time_to_solve = train.seconds
    started = train.first(r"^pgdist: \S+, N=\d+, \d+ worker")
    stopped = train.first(r"^pgdist: mean return \S+ >= stop_return")
    result.startup = started[0] if started else math.nan
    result.stop = stopped[0] if stopped else math.nan
    result.after = train.seconds - result.stop
    if not stopped:
        result.notes.append("stop_return not reached")
    if (out / "metrics.csv").exists():
        with open(out / "metrics.csv") as file:
            rows = list(csv.DictReader(file))
        result.updates, result.env_steps = len(rows), sum(int(row["steps"]) for row in rows)
    if train.returncode != 0:
        return failed(result, train, "train")
    evaluation = run_command(pgdist_command() + ["eval", str(out), "--episodes", str(EVAL_EPISODES)], folder / "eval.log",
                             timeout)
    result.eval_seconds = evaluation.seconds
    found = evaluation.first(r"^mean return (\S+) ± (\S+) over (\d+) episodes \(sampled actions\)")
    if evaluation.returncode != 0 or not found:
        return failed(result, evaluation, "eval")
    result.eval_mean, result.eval_sd = float(found[1][1]), float(found[1][2])
    result.solved = result.eval_mean >= task.solved
    return result


def failed(result: Result, child: Command, what: str) -> Result:
    result.notes.append(f"{what} timed out" if child.timed_out else f"{what} exited {child.returncode}")
    print(f"  {result.kind} seed {result.seed}: {what} failed; its last lines:\n{child.tail()}", file=sys.stderr)
    return result


def run_evaluating(task: Task, kind: str, seed: int, folder: Path, timeout: float, eval_every: int) -> Result:
    """A child of this script that evaluates as it trains (SB3's, or pgdist's with Evaluate), by its event lines."""
    child_flag = ["--sb3-child", str(seed)] if kind == "sb3" else ["--pgdist-child", str(seed), "--backend", kind]
    command = [sys.executable, str(Path(__file__).resolve()), "--task", task_name(task), "--eval-every", str(eval_every)]
    child = run_command(command + child_flag, folder / "train.log", timeout)
    result = Result(kind, seed, time_to_solve=child.seconds, eval_seconds=0.0, evaluations=0)
    events = [(at, json.loads(line[len(MARK):])) for at, line in child.lines if line.startswith(MARK)]
    for at, event in events:
        name = event["event"]
        if name == "start":
            result.startup = at
        elif name == "eval" and not result.solved:
            result.eval_mean, result.eval_sd = event["mean"], event["sd"]
            result.eval_seconds += event["seconds"]
            result.evaluations += 1
        elif name == "solved" or (name == "stopped" and not result.solved):
            result.solved = name == "solved"  # solved: when the solving evaluation ended; else the budget's end
            result.time_to_solve = result.stop = at
            result.env_steps, result.updates = event["steps"], event.get("updates")
        elif name == "check":
            result.check_mean = event["mean"]
    if kind == "sb3" and result.env_steps is not None:
        result.updates = result.env_steps // (task.zoo["n_envs"] * task.zoo["n_steps"])  # PPO rollouts by then
    if child.returncode != 0:
        failed(result, child, "the child")
    if not result.solved:
        evaluations = [event for _, event in events if event["event"] == "eval"]
        result.notes.append(f"no evaluation >= {task.solved:g}" + (
            f" ({len(evaluations)} evaluations to {evaluations[-1]['steps']} steps, the best "
            f"{max(e['mean'] for e in evaluations):.1f})" if evaluations else ""))
    return result


def task_name(task: Task) -> str:
    return next(name for name, known in TASKS.items() if known == task)


# --- the report ----------------------------------------------------------------------------------


def solve_times(results: list[Result]) -> list[float]:
    """Each seed's time to solve, an unsolved seed as infinity (slower than any solved one)."""
    return [r.time_to_solve if r.solved else math.inf for r in results]


def print_results(task: Task, results: list[Result], seeds: list[int]) -> None:
    by_kind = {kind: [r for r in results if r.kind == kind] for kind in KINDS if any(r.kind == kind for r in results)}
    print(f"## Time to solve {task.env}: seconds from launch, min / median / max over seeds {' '.join(map(str, seeds))}\n")
    rows = []
    for kind, rs in by_kind.items():
        times = solve_times(rs)
        rows.append([KINDS[kind], f"{sum(r.solved for r in rs)}/{len(rs)}", spread(times),
                     spread([r.startup for r in rs], 2), spread([t - r.startup for t, r in zip(times, rs)]),
                     spread([r.stop if r.solved else math.inf for r in rs]),
                     number(statistics.median([r.env_steps for r in rs if r.env_steps is not None] or [math.nan])),
                     spread([r.eval_mean for r in rs])])
    table(["run", "solved", "time to solve (s)", "start-up (s)", "time to solve − start-up (s)", "launch to the stop (s)",
           "env steps (median)", f"eval mean ({EVAL_EPISODES} episodes, sampled)"], rows)
    for kind in ("ray", "local"):
        if kind in by_kind and "sb3" in by_kind:
            mine, sb3 = (statistics.median(solve_times(by_kind[k])) for k in (kind, "sb3"))
            unsolved = math.isinf(mine) or math.isinf(sb3)
            value = "– (a median is unsolved)" if unsolved else f"{mine / sb3:.2f} ({mine:.1f} s / {sb3:.1f} s)"
            print(f"- {KINDS[kind]} median / SB3 median: {value}\n")
    print("### Per seed\n")
    table(["run", "seed", "solved", "eval mean ± sd", "time (s)", "start-up (s)", "exit after the stop (s)", "updates",
           "env steps", "evaluations (s)", "time less evaluations (s)", "SB3 evaluate_policy check", "notes"],
          [[KINDS[r.kind], r.seed, "yes" if r.solved else "**no**", f"{number(r.eval_mean, 1)} ± {number(r.eval_sd, 1)}",
            number(r.time_to_solve, 2), number(r.startup, 2), number(r.after, 2), number(r.updates), number(r.env_steps),
            f"{number(r.eval_seconds, 2)} ({'separate' if r.evaluations is None else f'{r.evaluations}, inside'})",
            number(r.time_to_solve - r.eval_seconds, 2) if r.evaluations else "–", number(r.check_mean, 1),
            "; ".join(r.notes)] for rs in by_kind.values() for r in rs])
    print("updates: pgdist iterations (N episodes each) or PPO rollouts of n_envs × n_steps steps; env steps: those "
          "trained on; exit after the stop: pgdist train's checkpoint, Ray's stop and exit after its stop_return line.")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=list(TASKS), default="cartpole", help="the env, recipe and zoo entry")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="seeds (default: 0 1 2 3 4)")
    parser.add_argument("--runs", choices=list(KINDS), nargs="+", default=list(KINDS), help="which runs (default: all)")
    parser.add_argument("--eval-every", type=int, default=0,
                        help="env steps between evaluations (default: the task's, 10,000 for CartPole, 50,000 MuJoCo)")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds before a run is killed (1200)")
    parser.add_argument("--out", type=Path, help="folder for the runs and logs (default: runs/time_to_solve/<time>)")
    parser.add_argument("--sb3-child", type=int, metavar="SEED", help=argparse.SUPPRESS)
    parser.add_argument("--pgdist-child", type=int, metavar="SEED", help=argparse.SUPPRESS)
    parser.add_argument("--backend", default="ray", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    task = TASKS[args.task]
    eval_every = args.eval_every or task.eval_every
    if args.sb3_child is not None:
        return sb3_child(task, args.sb3_child, eval_every)
    if args.pgdist_child is not None:
        return pgdist_child(task, args.pgdist_child, args.backend, eval_every)
    if "sb3" in args.runs and not version("stable-baselines3"):
        print("stable-baselines3 is not installed: .venv/bin/pip install -c constraints.txt -e \".[bench]\"", file=sys.stderr)
        return 2
    out = args.out or ROOT / "runs" / "time_to_solve" / time.strftime("%Y%m%d-%H%M%S")
    print(f"# Time to solve {task.env}: an evaluation mean >= {task.solved:g} over {EVAL_EPISODES} episodes, "
          f"sampled actions; runs and logs in {out}\n")
    print_machine()
    hp = ", ".join(f"{k} {v}" for k, v in task.zoo.items())
    print(f"SB3 PPO: rl-baselines3-zoo {task.zoo_entry}: {hp}; evaluated every {eval_every} env steps.\n", flush=True)
    results = []
    for seed in args.seeds:
        for kind in args.runs:
            folder = out / f"{kind}-seed{seed}"
            folder.mkdir(parents=True, exist_ok=True)
            if kind == "sb3" or task.pgdist_evaluates:
                result = run_evaluating(task, kind, seed, folder, args.timeout, eval_every)
            else:
                result = run_recipe(task, kind, seed, folder, args.timeout)
            print(f"  {KINDS[kind]}, seed {seed}: {'solved' if result.solved else 'NOT solved'} in "
                  f"{result.time_to_solve:.2f} s, eval mean {result.eval_mean:.1f}", file=sys.stderr, flush=True)
            results.append(result)
    print_results(task, results, args.seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())

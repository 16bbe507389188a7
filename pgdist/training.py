"""The training loop: sample, update, and callbacks that watch it.

    from pgdist import Config, Learner, train
    from pgdist.training import SaveBest

    with Learner(config) as learner:
        history = train(learner, callbacks=[SaveBest("best.pt")])

The loop, not the Learner, decides when to stop: after ``config.iterations`` steps, when a
batch's mean return reaches ``config.stop_return`` (that batch takes no step, so theta
stays the policy that reached it), or when a callback's ``on_iteration`` returns False.
The command line trains through this loop too; its run folder, progress bar and W&B
logging are callbacks.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from pgdist.evaluate import evaluate


class ExtraMissing(ImportError):
    """An optional extra that a feature needs is not installed; the message says what to install."""


class Callback:
    """Code run around every iteration, in the style of Stable-Baselines3's callbacks."""

    def on_start(self, learner) -> bool | None:
        """Before the first iteration; return False to run none."""

    def on_sample(self, learner, batch) -> None:
        """After the batch is sampled, before the update: theta is still the one that produced it."""

    def on_iteration(self, learner, metrics: dict) -> bool | None:
        """After the iteration (its update, if it took one); return False to stop training."""

    def on_end(self, learner, metrics: dict | None) -> None:
        """After the last iteration, or when training stops early or fails; ``metrics`` are the last ones."""


def reached_return(batch, stop_return: float | None) -> bool:
    """Whether the batch's mean episode return reaches ``stop_return`` (never, if it is None)."""
    return stop_return is not None and batch.return_mean >= stop_return


def train(learner, callbacks: Sequence[Callback] = (), iterations: int | None = None) -> list[dict]:
    """Iterate until theta's version reaches ``iterations`` (default: the config's) or a stop; return every metrics dict."""
    iterations = learner.config.iterations if iterations is None else iterations
    history: list[dict] = []
    wants_any = [callback.on_start(learner) is not False for callback in callbacks]
    try:
        while all(wants_any) and learner.version < iterations:
            batch = learner.sample()
            for callback in callbacks:
                callback.on_sample(learner, batch)
            if reached_return(batch, learner.config.stop_return):
                history.append(learner.metrics(batch, stopped=True))
            else:
                history.append(learner.update(batch))
            wants_more = [callback.on_iteration(learner, history[-1]) is not False for callback in callbacks]
            if history[-1]["stopped"] or not all(wants_more):
                break
    finally:
        for callback in callbacks:
            callback.on_end(learner, history[-1] if history else None)
    return history


class SaveBest(Callback):
    """Save the policy's state dict whenever a batch's mean return is the best so far."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.best = float("-inf")

    def on_sample(self, learner, batch) -> None:
        if batch.return_mean > self.best:
            self.best = batch.return_mean
            torch.save(learner.policy.state_dict(), self.path)


@dataclass(frozen=True)
class Evaluation:
    """One evaluation by ``Evaluate``: after ``steps`` environment steps of training, ``theta_version``'s
    policy scored ``mean`` ± ``sd`` over the evaluation's episodes, in ``seconds``."""

    steps: int
    theta_version: int
    mean: float
    sd: float
    seconds: float


class Evaluate(Callback):
    """Evaluate the policy every ``every_steps`` environment steps of training, as SB3's EvalCallback does,
    and stop training at the first evaluation whose mean reaches ``stop_mean`` (if given).

    An evaluation is ``pgdist.evaluate.evaluate`` on theta after the iteration's update: ``episodes``
    fresh episodes run in this process (sampled actions unless ``greedy``; their environments and
    actions seeded by ``seed``, so every evaluation sees the same starts) on ``envs`` copies of the
    env in lockstep (default: one per episode, up to pgdist.layout.MAX_ENVS, whatever the training
    chunks' envs_per_chunk), its time included in training's. Where an iteration's batch mean is
    too noisy to stop on (``stop_return`` over a few long episodes), this is the stop that says the
    policy itself is good. ``evaluations`` keeps every result; ``on_evaluation``, if given, is
    called with each.
    """

    def __init__(self, every_steps: int, episodes: int = 100, stop_mean: float | None = None,
                 greedy: bool = False, seed: int = 12345, envs: int | None = None, on_evaluation=None):
        if every_steps < 1 or episodes < 1:
            raise ValueError(f"Evaluate needs every_steps >= 1 and episodes >= 1, not {every_steps} and {episodes}")
        self.every_steps, self.episodes, self.stop_mean = every_steps, episodes, stop_mean
        self.greedy, self.seed, self.envs, self.on_evaluation = greedy, seed, envs, on_evaluation
        self.evaluations: list[Evaluation] = []
        self.steps = 0  # env steps trained on since on_start

    def on_start(self, learner) -> None:
        self.steps = 0

    def on_iteration(self, learner, metrics: dict) -> bool | None:
        before, self.steps = self.steps, self.steps + metrics["steps"]
        if self.steps // self.every_steps == before // self.every_steps:  # no multiple of every_steps crossed
            return None
        start = time.perf_counter()
        config = learner.config.replace(envs_per_chunk=self.envs)
        returns = evaluate(config, learner.policy, self.episodes, greedy=self.greedy, seed=self.seed)
        result = Evaluation(self.steps, learner.version, float(returns.mean()), float(returns.std()),
                            time.perf_counter() - start)
        self.evaluations.append(result)
        if self.on_evaluation is not None:
            self.on_evaluation(result)
        return False if self.stop_mean is not None and result.mean >= self.stop_mean else None


class WandbLogger(Callback):
    """Every iteration's metrics to Weights & Biases (``pgdist train --wandb PROJECT``).

    Offline, with no network or account: ``WANDB_MODE=offline``; ``wandb sync`` uploads later.
    """

    def __init__(self, project: str, folder: Path | None = None, name: str | None = None):
        self.project, self.folder, self.name = project, folder, name
        self.run = None

    def on_start(self, learner) -> None:
        try:
            import wandb
        except ImportError:
            raise ExtraMissing("--wandb needs the wandb extra: pip install 'pgdist[wandb]'") from None
        self.run = wandb.init(project=self.project, name=self.name, config=learner.config.to_dict(),
                              dir=None if self.folder is None else str(self.folder))

    def on_iteration(self, learner, metrics: dict) -> None:
        self.run.log({name: value for name, value in metrics.items() if value is not None}, step=metrics["iteration"])

    def on_end(self, learner, metrics: dict | None) -> None:
        if self.run is not None:
            self.run.finish()

"""The learner: theta and its optimizer. One iteration is broadcast, sample, update.

    with Learner(Config(env="CartPole-v1", episodes=1000)) as learner:
        for _ in range(100):
            metrics = learner.step()  # learner.update(learner.sample())

``sample()`` broadcasts theta and gathers the sums of N fresh episodes (a ``Batch``);
``update(batch)`` takes one optimizer step on L (Eq. 23) from those sums and returns the
iteration's metrics (``pgdist.metrics``). When to stop is the decision of the loop around
them: ``pgdist.training.train`` (with callbacks), the command line's, or the caller's own.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from pgdist.backends import LocalBackend, one_torch_thread
from pgdist.chunks import Chunk, ChunkResult, make_chunks
from pgdist.config import Config, ConfigError
from pgdist.envs import EnvError, EnvSpaces, env_spaces, time_limit
from pgdist.estimators import POLICY_SUMS, Estimator, explained_variance, loss
from pgdist.goodput import Goodput, learning_rate_gain
from pgdist.layout import MIN_CHUNK, layout
from pgdist.metrics import METRICS
from pgdist.noise import ChunkSquares, NoiseEstimate, NoiseScale, estimate
from pgdist.normalization import ObservationStatistics, check_normalizable, normalized, normalizers
from pgdist.optim import Adam, learning_rate_factor, set_learning_rates
from pgdist.policy import check_policy, make_policy, make_value_function
from pgdist.theta import parameters_to_vector, set_gradients, state_to_vector
from pgdist.vector_envs import check_vector_env

log = logging.getLogger(__name__)

OptimizerFactory = Callable[[list[dict]], "torch.optim.Optimizer"]
# a backend class or function of (config, policy, value function or None): LocalBackend, RayBackend, your own
BackendFactory = Callable[[Config, torch.nn.Module, "torch.nn.Module | None"], object]


class StaleResultError(RuntimeError):
    """A worker's result was computed with another theta than the learner's current one."""


@dataclass
class Batch:
    """What one sampling call gathered: the sums of its N episodes (every chunk's added) and measured."""

    sums: ChunkResult
    noise: NoiseEstimate | None  # this batch's tr(Sigma)^ and |G|^2^ (noise.py); None with one chunk
    workers: int  # live workers at its end
    seconds: float  # the sampling call's wall time
    theta: np.ndarray | None = None  # what was broadcast: its chunks' workers hold their steps at it (value_epochs)
    chunks: list[Chunk] | None = None

    @property
    def episodes(self) -> int:
        return self.sums.episodes

    @property
    def return_mean(self) -> float:
        """The mean undiscounted episode return, the score users read."""
        return self.sums.return_sum / self.sums.episodes


class Learner:
    """Trains ``policy`` with REINFORCE; its N episodes per iteration come from the backend's workers.

    ``optimizer`` builds the optimizer from the parameter groups: the policy's, and the value
    baseline's (with ``lr=config.value_lr``) where there is one; any ``torch.optim`` optimizer
    fits (``lambda groups: torch.optim.SGD(groups, lr=0.1)``). The default is the tutorial's
    Adam(lr) (``pgdist.optim.Adam``). ``backend`` builds what hands chunks to workers, from
    (config, policy, value function): ``pgdist.backends.LocalBackend``,
    ``pgdist.ray.RayBackend`` or one of your own with the same verbs; by default the one
    ``config.backend`` names. ``spaces``: the env's spaces (``pgdist.envs.env_spaces``) where the
    caller has them already, so that a MuJoCo or Atari env is not built once more. A context
    manager: entering starts the workers (and a local Ray instance if it started one), leaving
    stops exactly what it started.
    """

    def __init__(self, config: Config, policy: torch.nn.Module | None = None,
                 optimizer: OptimizerFactory | None = None, backend: BackendFactory | None = None,
                 spaces: EnvSpaces | None = None):
        self.config = config
        self.estimator = Estimator.of(config)
        if spaces is None:
            spaces = env_spaces(config.env)
        check_vector_env(config.env, config.vector_env)
        check_normalizable(config, spaces.observation_shape)
        if policy is None:
            policy = make_policy(spaces.observation_shape, spaces.action_space, config.hidden, config.seed,
                                 config.log_std_init, config.init, config.bound_actions)
        check_bounds(config, policy)
        policy = normalized(policy, config, spaces.observation_size)
        check_policy(policy, spaces.observation, spaces.action_space, config.env)
        self.policy = policy
        self.value = None  # the learned baseline V(s), with baseline="value"
        if config.baseline == "value":
            value = make_value_function(spaces.observation_shape, config.hidden, config.seed, config.init)
            self.value = normalized(value.to(next(policy.parameters()).dtype), config, spaces.observation_size)
        # normalize_observations: the observations of the iterations so far, whose mu and sigma the normalisers hold
        self.observations = ObservationStatistics(spaces.observation_size) if config.normalize_observations else None
        self.optimizer = (optimizer or (lambda groups: Adam(groups, lr=config.lr)))(self.parameter_groups())
        self.version = 0  # theta's version: the number of optimizer steps taken
        self.draws = 0  # sampling calls made; with the seed, it names every chunk's randomness
        self.told_truncated = False  # said once that max_episode_steps cuts episodes
        self.noise_scale = NoiseScale()  # B_simple, smoothed over sampling calls (noise.py)
        self.episodes = config.episodes  # the next iteration's N; with episodes_max, the one of most goodput
        self.layout = layout(config)  # chunk_episodes and envs_per_chunk: the overrides, else the rule's
        self.backend = (backend or make_backend)(config, policy, self.value)
        self.goodput = None  # adaptive N's controller, with episodes_max (goodput.py)
        if config.episodes_max is not None:
            self.goodput = Goodput(config.episodes, config.episodes_max, self.layout.chunk_episodes,
                                   self.planned_workers(), config.iteration_cost)
        if config.value_epochs > 1 and not hasattr(self.backend, "value_round"):
            self.backend.close()
            raise ConfigError(f"value_epochs={config.value_epochs} needs a backend with value_round (the rounds of "
                              f"V's fit); {type(self.backend).__name__} has none")
        self.tell_idle_workers()

    def available_workers(self) -> int:
        """The workers that run chunks at once here: the backend's, or with ``workers`` unset the CPUs Ray sees
        (the Ray backend starts no more actors than chunks); 1 on the local backend."""
        if self.config.workers is None:
            return max(self.backend.workers, getattr(self.backend, "cpus", 0))
        return self.backend.workers

    def planned_workers(self) -> int:
        """The workers adaptive N plans for: ``workers`` where set (on any backend, so that N's schedule and
        theta are the same everywhere), else the available ones."""
        return self.config.workers or self.available_workers()

    def tell_idle_workers(self) -> None:
        """Say, in pgdist's words, when N makes fewer chunks than there are workers (or, with the default
        workers, CPUs) and smaller chunks would keep them busy (N / workers >= MIN_CHUNK); for smaller N,
        idle workers cost nothing."""
        workers, chunks = self.available_workers(), self.layout.chunks(self.config.episodes)
        share = self.config.episodes // workers
        if chunks < workers and share >= MIN_CHUNK:
            log.warning(
                f"pgdist: N={self.config.episodes} makes {chunks} chunk(s) of {self.layout.chunk_episodes} episodes, "
                f"which keep {chunks} of {workers} workers busy: set chunk_episodes (--chunk-episodes) to {share} "
                "or less, or raise N"
            )

    def parameter_groups(self) -> list[dict]:
        """The optimizer's parameter groups: the policy's; the value function's, with its own lr."""
        groups = [{"params": list(self.policy.parameters())}]
        if self.value is not None:
            groups.append({"params": list(self.value.parameters()), "lr": self.config.value_lr or self.config.lr})
        return groups

    def __enter__(self) -> Learner:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self.backend.close()

    def step(self) -> dict:
        """One iteration: broadcast theta, gather N episodes, one optimizer step on Eq. 23; its metrics."""
        return self.update(self.sample())

    def sample(self) -> Batch:
        """Broadcast theta and gather the sums of N fresh episodes.

        As each chunk arrives, its vectors' dot products go into a ``ChunkSquares`` for the
        noise scale; no chunk's vectors are kept.
        """
        start = time.perf_counter()
        theta = state_to_vector(self.policy, self.value).numpy()  # and the normalisers' statistics
        chunks = make_chunks(self.episodes, self.layout.chunk_episodes, self.config.seed, self.draws)
        self.draws += 1
        squares = ChunkSquares(len(POLICY_SUMS))
        total = None
        try:
            for result in self.backend.sample(theta, self.version, chunks):
                self.check_current(result)
                total = add_chunk(total, squares, result)
        except EnvError as error:
            if str(error) == error.message:
                raise
            raise EnvError(error.message) from error  # a backend's wrapper (Ray's) shows a traceback as its str
        self.tell_truncated(total)
        noise = self.measure_noise(total, squares)
        self.noise_scale.update(noise, total.episodes)
        if self.goodput is not None:
            self.goodput.add(total.env_steps, total.episodes)
            self.episodes = self.goodput.next_episodes(self.noise_scale, total.episodes).episodes
        return Batch(total, noise, self.backend.live_workers(), time.perf_counter() - start, theta, chunks)

    def update(self, batch: Batch) -> dict:
        """One optimizer step down L (Eq. 23, 24), whose gradient is minus the estimate of grad J.

        L is linear in the gradient sum, so its gradient is ``loss(gradient_sum, N)``; estimators
        other than Eq. 23's combine more sums into the gradient sum first. The value function,
        if any, steps on the mean squared error of its predictions over the batch's steps
        (``value_epochs`` times: ``fit_value``). The batch's observations then join the
        normalisers' statistics, for the next iterations.
        """
        start = time.perf_counter()
        with one_torch_thread():  # elementwise work on theta: a second thread waits on busy cores (ms per op)
            gradient = self.loss_gradient(batch)
            set_gradients(gradient, self.policy)
            if self.value is not None:
                set_gradients(torch.as_tensor(batch.sums.value_gradient_sum / batch.sums.steps), self.value)
            if self.config.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.config.max_grad_norm)
            gain = learning_rate_gain(self.config.lr_scaling, batch.episodes, self.config.episodes, self.noise_scale.value)
            set_learning_rates(self.optimizer, learning_rate_factor(self.config.lr_schedule, self.version,
                                                                    self.config.iterations), policy_gain=gain)
            self.optimizer.step()
            self.fit_value(batch)
        self.version += 1
        self.update_normalizers(batch.sums)
        return self.metrics(batch, gradient, update_seconds=time.perf_counter() - start)

    def fit_value(self, batch: Batch) -> None:
        """V's further steps on its mean squared error over the batch's steps, value_epochs - 1 of them.

        Each is a round of sums (DESIGN.md, "More than one round per iteration"): the workers that
        hold the chunks' steps return grad sum_t (V(s_t) - y_t)^2 at V's current parameters, the
        learner adds them in chunk order and steps V alone. The learner's work per round is one
        vector of V's size per chunk, whatever N; a chunk whose worker is lost runs again at the
        batch's theta elsewhere, with the same steps and targets, so no fault changes V.
        """
        if self.value is None or self.config.value_epochs == 1:
            return
        if batch.chunks is None:
            raise ValueError("value_epochs > 1 fits V over the chunks a batch ran: update() takes a batch from sample()")
        for parameter in self.policy.parameters():
            parameter.grad = None  # the optimizer steps V alone
        for _ in range(self.config.value_epochs - 1):
            value_theta = parameters_to_vector(self.value).numpy()
            results = sorted(self.backend.value_round(batch.theta, batch.sums.version, value_theta, batch.chunks),
                             key=lambda result: result.chunk)
            for result in results:
                self.check_current(result)
            gradient_sum = np.sum([result.value_gradient_sum for result in results], axis=0, dtype=np.float64)
            set_gradients(torch.as_tensor(gradient_sum / batch.sums.steps), self.value)
            self.optimizer.step()

    def update_normalizers(self, sums: ChunkResult) -> None:
        """Add a batch's observation sums to the statistics; their mu and sigma into every normaliser."""
        if self.observations is None:
            return
        self.observations.add(sums.steps, sums.observation_sum, sums.observation_square_sum)
        mean, std = self.observations.mean_and_std()
        for normalizer in normalizers(self.policy, self.value):
            normalizer.set(mean, std)

    def estimate_gradient(self, batch: Batch | None = None) -> torch.Tensor:
        """Eq. 19's g-hat, flat, from ``batch`` (default: N fresh episodes at the current theta); no step."""
        return -self.loss_gradient(batch or self.sample())

    def loss_gradient(self, batch: Batch) -> torch.Tensor:
        """grad L of Eq. 23 (or of the configured estimator's loss) from the batch's sums, flat."""
        return loss(torch.as_tensor(self.estimator.combine(batch.sums)), batch.episodes)

    def metrics(self, batch: Batch, gradient: torch.Tensor | None = None, stopped: bool = False,
                update_seconds: float = 0.0) -> dict:
        """The iteration's metrics (``pgdist.metrics.METRICS``), for a batch stepped on or, ``stopped``, not."""
        sums, n = batch.sums, batch.episodes
        if gradient is None:
            gradient = self.loss_gradient(batch)
        weight_mean = sums.weight_sum / sums.steps
        values = {
            "iteration": sums.version + 1,
            "episodes": n,
            "steps": sums.steps,
            "env_steps": sums.env_steps,
            "seconds": batch.seconds + update_seconds,
            "sample_seconds": batch.seconds,
            "update_seconds": update_seconds,
            "workers": batch.workers,
            "return_mean": batch.return_mean,
            "return_min": sums.return_min,
            "return_max": sums.return_max,
            "discounted_return_mean": sums.discounted_return_sum / n,
            "length_mean": sums.steps / n,
            "gradient_norm": float(gradient.norm()),
            "lr": self.optimizer.param_groups[0]["lr"],
            "theta_version": sums.version,
            "weight_mean": weight_mean,
            "weight_std": math.sqrt(max(sums.weight_square_sum / sums.steps - weight_mean**2, 0.0)),
            "truncated": sums.truncated,
            "stopped": stopped,
            "trace_sigma": None if batch.noise is None else batch.noise.trace_sigma,
            "grad_sq": None if batch.noise is None else batch.noise.grad_sq,
            "noise_scale": self.noise_scale.value,
            "explained_variance": None if self.value is None else explained_variance(sums),
        }
        undeclared = values.keys() - METRICS.keys()
        if undeclared:
            raise KeyError(f"metrics {sorted(undeclared)} are not declared in pgdist/metrics.py")
        return {name: values[name] for name in METRICS}

    def tell_truncated(self, batch: ChunkResult) -> None:
        """Say once, in pgdist's words, that episodes reach max_episode_steps and are cut there."""
        if batch.truncated and not self.told_truncated:
            cap, _ = time_limit(self.config.env, self.config.max_episode_steps)
            log.warning(
                f"pgdist: {batch.truncated} of the {batch.episodes} episodes of iteration {batch.version + 1} "
                f"reached max_episode_steps={cap} and were cut there (counted in metrics' 'truncated'); "
                "the gradient is that of the capped episodes; set max_episode_steps (--max-episode-steps) to change it"
            )
            self.told_truncated = True

    def measure_noise(self, sums: ChunkResult, squares: ChunkSquares) -> NoiseEstimate | None:
        """tr(Sigma)^ and |G|^2^ of the policy's gradient from a batch's chunks, or None for one chunk.

        The chunk sums s_j = c . V_j take the batch's coefficients c (its mu and sigma), known now.
        """
        estimator = self.estimator
        sum_of_squares = squares.sum_of_squares(estimator.coefficients(sums))
        total = estimator.combine(sums)
        return estimate(sum_of_squares, float(total @ total), sums.episodes, squares.chunks)

    def noise_summary(self) -> str:
        """One line for the end of training: the measured noise scale against N, or why there is none."""
        return self.noise_scale.summary(self.episodes, self.layout.chunk_episodes)

    def check_current(self, result: ChunkResult) -> None:
        if result.version != self.version:
            raise StaleResultError(
                f"a worker's result used theta version {result.version}, the learner is at {self.version}"
            )

    def state_dict(self) -> dict:
        return {
            "policy": self.policy.state_dict(),
            "value": None if self.value is None else self.value.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "version": self.version,
            "draws": self.draws,
            "noise_scale": self.noise_scale.state_dict(),
            "episodes": self.episodes,
            "goodput": None if self.goodput is None else self.goodput.state_dict(),
            "observations": None if self.observations is None else self.observations.state_dict(),
            "config": self.config.to_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        if self.value is not None:
            self.value.load_state_dict(state["value"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.version = state["version"]
        self.draws = state["draws"]
        if "noise_scale" in state:  # a checkpoint from before the noise scale starts its averages afresh
            self.noise_scale.load_state_dict(state["noise_scale"])
        self.episodes = state.get("episodes", self.config.episodes)
        if self.goodput is not None and state.get("goodput") is not None:
            self.goodput.load_state_dict(state["goodput"])
        if self.observations is not None:
            self.observations.load_state_dict(state["observations"])


def check_bounds(config: Config, policy: torch.nn.Module) -> None:
    """bound_actions='tanh' where pgdist's policy for the env squashes nothing: a ConfigError, not a silent clip."""
    if config.bound_actions == "tanh" and not getattr(policy, "squashed", False):
        raise ConfigError(
            f"bound_actions='tanh' squashes the Gaussian policy's actions into a Box; {config.env}'s policy here is "
            f"a {type(policy).__name__}: use bound_actions='clip'"
        )


def make_backend(config: Config, policy: torch.nn.Module, value: torch.nn.Module | None = None):
    """The backend ``config.backend`` names: one worker here, or Ray actors (ray is imported only then).

    A local Ray instance is to listen on loopback only, which Ray decides from
    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when it is imported (pgdist/ray/startup.py): set it
    before ray's first import, for a run that will start an instance of its own.
    """
    if config.backend == "local":
        return LocalBackend(config, policy, value)
    if config.address is None and not os.environ.get("RAY_ADDRESS") and "ray" not in sys.modules:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    from pgdist.ray import RayBackend

    return RayBackend(config, policy, value)


def add_chunk(total: ChunkResult | None, squares: ChunkSquares, result: ChunkResult) -> ChunkResult:
    """The learner's work per chunk: its dot products into ``squares``, its sums into ``total``
    (None before the first chunk); returns the total."""
    squares.add([getattr(result, name) for name in POLICY_SUMS], result.episodes)
    if total is None:
        return result.writable()
    total.add(result)
    return total

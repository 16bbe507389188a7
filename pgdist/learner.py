"""The learner: theta and Adam. One iteration is broadcast, sample, update.

    with Learner(Config(env="CartPole-v1", episodes=1000)) as learner:
        for _ in range(100):
            metrics = learner.step()
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
import warnings

import torch

from pgdist.adam import Adam
from pgdist.backends import LocalBackend
from pgdist.config import Config
from pgdist.envs import EnvError, env_spaces, time_limit
from pgdist.estimators import POLICY_SUMS, loss
from pgdist.noise import ChunkSquares, NoiseScale, estimate
from pgdist.policy import make_policy, make_value_function, parameters_to_vector, vector_to_parameters
from pgdist.worker import ChunkResult, make_chunks


log = logging.getLogger(__name__)


class StaleResultError(RuntimeError):
    """A worker's result was computed with another theta than the learner's current one."""


class Learner:
    """Trains ``policy`` with REINFORCE; its N episodes per iteration come from the backend's workers.

    A context manager: entering starts the workers (and a local Ray instance if it
    started one), leaving stops exactly what it started.
    """

    def __init__(self, config: Config, policy: torch.nn.Module | None = None):
        self.config = config
        spaces = env_spaces(config.env)
        if policy is None:
            policy = make_policy(spaces.observation_size, spaces.action_space, config.hidden, config.seed)
        self.policy = policy
        self.value = None  # the learned baseline V(s), with baseline="value"
        if config.baseline == "value":
            self.value = make_value_function(spaces.observation_size, config.hidden, config.seed)
            self.value.to(next(policy.parameters()).dtype)
        theta = parameters_to_vector(self.policy, self.value)
        self.optimizer = Adam(theta.numel(), config.lr, dtype=theta.dtype)
        self.version = 0  # theta's version: the number of Adam steps taken
        self.batches = 0  # sampling calls made; with the seed, it names every chunk's randomness
        self.told_truncated = False  # said once that max_episode_steps cuts episodes
        self.noise_scale = NoiseScale()  # B_simple, smoothed over iterations (noise.py)
        self.chunk_squares = ChunkSquares(len(POLICY_SUMS))  # of the last sample()'s chunks
        self.backend = make_backend(config, policy, self.value)
        chunks = math.ceil(config.episodes / config.chunk_episodes)
        if chunks < self.backend.workers:
            warnings.warn(
                f"N={config.episodes} makes {chunks} chunk(s) of chunk_episodes={config.chunk_episodes} "
                f"for {self.backend.workers} workers, so {self.backend.workers - chunks} will idle: "
                "lower chunk_episodes (--chunk-episodes) or raise N",
                stacklevel=2,
            )

    def __enter__(self) -> Learner:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self.backend.close()

    def step(self) -> dict:
        """One iteration: broadcast theta, gather N episodes, one Adam step on Eq. 23.

        A batch whose mean return reaches ``stop_return`` ends training (``metrics["stopped"]``)
        without the step: theta stays the policy whose episodes reached it.
        """
        start = time.perf_counter()
        batch = self.sample()
        self.tell_truncated(batch)
        n = batch.episodes
        return_mean = batch.return_sum / n
        stopped = self.config.stop_return is not None and return_mean >= self.config.stop_return
        noise = self.measure_noise(batch)
        self.noise_scale.update(noise)
        gradient = self.loss_gradient(batch) if stopped else self.update(batch)
        weight_mean = batch.weight_sum / batch.steps
        return {
            "iteration": batch.version + 1,
            "episodes": n,
            "steps": batch.steps,
            "seconds": time.perf_counter() - start,
            "workers": self.backend.live_workers(),  # up at the batch's end: a lost worker is back once it counts
            "return_mean": return_mean,
            "return_min": batch.return_min,
            "return_max": batch.return_max,
            "discounted_return_mean": batch.discounted_return_sum / n,
            "length_mean": batch.steps / n,
            "gradient_norm": float(gradient.norm()),
            "theta_version": batch.version,  # the theta the episodes were sampled with
            # the estimator's weights A_t over the batch's steps (returns, baselined), see estimators.py
            "weight_mean": weight_mean,
            "weight_std": math.sqrt(max(batch.weight_square_sum / batch.steps - weight_mean**2, 0.0)),
            "truncated": batch.truncated,  # episodes pgdist's max_episode_steps cut short
            "stopped": stopped,
            # this iteration's unbiased estimates and B_simple from their moving averages (noise.py);
            # None with a single chunk, which has no second chunk to compare its sum with
            "trace_sigma": None if noise is None else noise.trace_sigma,
            "grad_sq": None if noise is None else noise.grad_sq,
            "noise_scale": self.noise_scale.value,
        }

    def estimate_gradient(self) -> torch.Tensor:
        """Eq. 19 at the current theta from N fresh episodes, flat, without stepping."""
        batch = self.sample()
        return torch.as_tensor(self.config.estimator.combine(batch) / batch.episodes)

    def sample(self) -> ChunkResult:
        """Broadcast theta and gather the sums of N fresh episodes.

        As each chunk arrives, its vectors' dot products go into ``self.chunk_squares`` for the
        noise scale (``measure_noise``); no chunk's vectors are kept.
        """
        theta = parameters_to_vector(self.policy, self.value).numpy()
        chunks = make_chunks(self.config.episodes, self.config.chunk_episodes, self.config.seed, self.batches)
        self.batches += 1
        self.chunk_squares = ChunkSquares(len(POLICY_SUMS))
        total = None
        try:
            for result in self.backend.sample(theta, self.version, chunks):
                self.check_current(result)
                self.chunk_squares.add([getattr(result, name) for name in POLICY_SUMS], result.episodes)
                if total is None:
                    total = result.writable()
                else:
                    total.add(result)
        except EnvError as error:
            if str(error) == error.message:
                raise
            raise EnvError(error.message) from error  # a backend's wrapper (Ray's) shows a traceback as its str
        return total

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

    def measure_noise(self, batch: ChunkResult):
        """tr(Sigma)^ and |G|^2^ of the policy's gradient from the last sample()'s chunks, or None for one chunk.

        The chunk sums s_j = c . V_j take the batch's coefficients c (its mu and sigma), known now.
        """
        estimator = self.config.estimator
        sum_of_squares = self.chunk_squares.sum_of_squares(estimator.coefficients(batch))
        total = estimator.combine(batch)
        return estimate(sum_of_squares, float(total @ total), batch.episodes, self.chunk_squares.chunks)

    def noise_summary(self) -> str:
        """One line for the end of training: the measured noise scale against N, or why there is none."""
        episodes, chunk_episodes = self.config.episodes, self.config.chunk_episodes
        if episodes <= chunk_episodes:
            return (
                f"no noise scale: N = {episodes} is 1 chunk (chunk_episodes = {chunk_episodes}) and the estimate "
                f"compares the sums of 2 chunks or more; set chunk_episodes to N/2 or less"
            )
        noise_scale = self.noise_scale.value
        if self.noise_scale.count == 0:
            return "no noise scale: no iteration has measured it yet"
        if noise_scale is None:
            return (
                f"no noise scale: the measured |G|^2 is not positive, the gradient is lost in the noise of "
                f"N = {episodes} episodes (a larger N would tell)"
            )
        return f"measured noise scale ≈ {noise_scale:,.0f} episodes; N = {episodes:,} is {episodes / noise_scale:.2g}× that"

    def check_current(self, result: ChunkResult) -> None:
        if result.version != self.version:
            raise StaleResultError(
                f"a worker's result used theta version {result.version}, the learner is at {self.version}"
            )

    def update(self, batch: ChunkResult) -> torch.Tensor:
        """Adam step on L, whose gradient is minus the estimate of grad J (Eq. 23, 24).

        L is linear in the gradient sum, so its gradient is ``loss(gradient_sum, N)``; estimators
        other than Eq. 23's combine more sums into the gradient sum first. The value function,
        if any, steps on the mean squared error of its predictions over the batch's steps.
        """
        gradient = self.loss_gradient(batch)
        theta_gradient = gradient
        if self.value is not None:
            theta_gradient = torch.cat([gradient, torch.as_tensor(batch.value_gradient_sum / batch.steps)])
        theta = parameters_to_vector(self.policy, self.value)
        self.optimizer.step(theta, theta_gradient)
        vector_to_parameters(theta, self.policy, self.value)
        self.version += 1
        return gradient

    def loss_gradient(self, batch: ChunkResult) -> torch.Tensor:
        """grad L of Eq. 23 (or of the configured estimator's loss) from the batch's sums, flat."""
        return loss(torch.as_tensor(self.config.estimator.combine(batch)), batch.episodes)

    def state_dict(self) -> dict:
        return {
            "policy": self.policy.state_dict(),
            "value": None if self.value is None else self.value.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "version": self.version,
            "batches": self.batches,
            "noise_scale": self.noise_scale.state_dict(),
            "config": self.config.to_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        if self.value is not None:
            self.value.load_state_dict(state["value"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.version = state["version"]
        self.batches = state["batches"]
        if "noise_scale" in state:  # a checkpoint from before the noise scale starts its averages afresh
            self.noise_scale.load_state_dict(state["noise_scale"])


def make_backend(config: Config, policy: torch.nn.Module, value: torch.nn.Module | None = None):
    """The backend ``config.backend`` names: one worker here, or Ray actors (ray is imported only then).

    A local Ray instance is to listen on loopback only, which Ray decides from
    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when it is imported (pgdist/ray_startup.py): set it
    before ray's first import, for a run that will start an instance of its own.
    """
    if config.backend == "local":
        return LocalBackend(config, policy, value)
    if config.address is None and not os.environ.get("RAY_ADDRESS") and "ray" not in sys.modules:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    from pgdist.ray_backend import RayBackend

    return RayBackend(config, policy, value)

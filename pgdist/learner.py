"""The learner: theta and Adam. One iteration is broadcast, sample, update.

    with Learner(Config(env="CartPole-v1", episodes=1000)) as learner:
        for _ in range(100):
            metrics = learner.step()
"""

from __future__ import annotations

import math
import time
import warnings

import torch

from pgdist.adam import Adam
from pgdist.backends import make_backend
from pgdist.config import Config
from pgdist.envs import env_spaces
from pgdist.estimators import POLICY_SUMS, loss
from pgdist.noise import ChunkSquares, NoiseEstimate, NoiseScale, estimate
from pgdist.policy import make_policy, make_value_function, parameters_to_vector, vector_to_parameters
from pgdist.worker import ChunkResult, make_chunks


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
        self.noise_scale = NoiseScale()  # B_simple, smoothed over iterations (noise.py)
        self.episodes = config.episodes  # the next iteration's N; with episodes_max, it follows the noise scale
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
        n = batch.episodes
        return_mean = batch.return_sum / n
        stopped = self.config.stop_return is not None and return_mean >= self.config.stop_return
        noise = self.measure_noise(batch)
        self.noise_scale.update(noise, n)
        if self.config.episodes_max is not None:
            self.episodes = adapted_episodes(self.noise_scale, n, self.config)
        gradient = self.loss_gradient(batch) if stopped else self.update(batch)
        weight_mean = batch.weight_sum / batch.steps
        return {
            "iteration": batch.version + 1,
            "episodes": n,
            "steps": batch.steps,
            "seconds": time.perf_counter() - start,
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
        chunks = make_chunks(self.episodes, self.config.chunk_episodes, self.config.seed, self.batches)
        self.batches += 1
        self.chunk_squares = ChunkSquares(len(POLICY_SUMS))
        total = None
        for result in self.backend.sample(theta, self.version, chunks):
            self.check_current(result)
            self.chunk_squares.add([getattr(result, name) for name in POLICY_SUMS], result.episodes)
            if total is None:
                total = result.writable()
            else:
                total.add(result)
        return total

    def measure_noise(self, batch: ChunkResult) -> NoiseEstimate | None:
        """tr(Sigma)^ and |G|^2^ of the policy's gradient from the last sample()'s chunks, or None for one chunk.

        The chunk sums s_j = c . V_j take the batch's coefficients c (its mu and sigma), known now.
        """
        estimator = self.config.estimator
        sum_of_squares = self.chunk_squares.sum_of_squares(estimator.coefficients(batch))
        total = estimator.combine(batch)
        return estimate(sum_of_squares, float(total @ total), batch.episodes, self.chunk_squares.chunks)

    def noise_summary(self) -> str:
        """One line for the end of training: the measured noise scale against N, or why there is none."""
        episodes, chunk_episodes = self.episodes, self.config.chunk_episodes
        if episodes <= chunk_episodes:
            return (
                f"no noise scale: N = {episodes} is 1 chunk (chunk_episodes = {chunk_episodes}) and the estimate "
                f"compares the sums of 2 chunks or more; set chunk_episodes to N/2 or less"
            )
        if self.noise_scale.count == 0:
            return "no noise scale: no iteration has measured it yet"
        noise_scale = self.noise_scale.value
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
            "episodes": self.episodes,
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
        self.episodes = state.get("episodes", self.config.episodes)


def adapted_episodes(noise_scale: NoiseScale, episodes: int, config: Config) -> int:
    """Adaptive N: the measured noise scale in whole chunks, within [episodes, episodes_max].

    Until the averaged |G|^2 stands clear of its noise (``NoiseScale.resolved``), the gradient
    is lost in the noise of N episodes and the measured noise scale reads about N whatever it
    is: N doubles. N moves by a factor of 2 at most per iteration, as the measured noise scale
    of RL's heavy-tailed gradients scatters by about that much. N is a function of the chunk
    sums alone, never of the workers, so one seed still gives one theta, and resuming from a
    checkpoint (which holds N and the averages) the same N.
    """
    if not noise_scale.resolved():
        return min(2 * episodes, config.episodes_max)
    target = min(max(noise_scale.value, episodes / 2), 2 * episodes)  # a factor of 2 at most per step
    chunks = max(1, round(target / config.chunk_episodes))
    return min(max(chunks * config.chunk_episodes, config.episodes), config.episodes_max)

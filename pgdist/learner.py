"""The learner: theta and Adam. One iteration is broadcast, sample, update.

    with Learner(Config(env="CartPole-v1", episodes=1000)) as learner:
        for _ in range(100):
            metrics = learner.step()
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings

import numpy as np
import torch

from pgdist.backends import make_backend
from pgdist.config import Config
from pgdist.envs import env_spaces
from pgdist.estimators import loss
from pgdist.policy import make_policy, parameters_to_vector
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
        if policy is None:
            spaces = env_spaces(config.env)
            policy = make_policy(spaces.observation_size, spaces.action_space, config.hidden, config.seed)
        self.policy = policy
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=config.lr)
        self.version = 0  # theta's version: the number of Adam steps taken
        self.batches = 0  # sampling calls made; with the seed, it names every chunk's randomness
        self.backend = make_backend(config, policy)
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
        """One iteration: broadcast theta, gather N episodes, one Adam step on Eq. 23."""
        start = time.perf_counter()
        batch = self.sample()
        gradient = self.update(batch.gradient_sum)
        n = batch.episodes
        return {
            "iteration": self.version,
            "episodes": n,
            "steps": batch.steps,
            "seconds": time.perf_counter() - start,
            "return_mean": batch.return_sum / n,
            "return_min": batch.return_min,
            "return_max": batch.return_max,
            "discounted_return_mean": batch.discounted_return_sum / n,
            "length_mean": batch.steps / n,
            "gradient_norm": float(gradient.norm()),
        }

    def estimate_gradient(self) -> torch.Tensor:
        """Eq. 19 at the current theta from N fresh episodes, flat, without stepping."""
        batch = self.sample()
        return torch.as_tensor(batch.gradient_sum / batch.episodes)

    def sample(self) -> ChunkResult:
        """Broadcast theta and gather the sums of N fresh episodes."""
        theta = parameters_to_vector(self.policy).numpy()
        chunks = make_chunks(self.config.episodes, self.config.chunk_episodes, self.config.seed, self.batches)
        self.batches += 1
        total = None
        for result in self.backend.sample(theta, self.version, chunks):
            self.check_current(result)
            if total is None:  # a writable float64 copy, which the other chunks are added into
                total = dataclasses.replace(result, gradient_sum=result.gradient_sum.astype(np.float64))
            else:
                total.add(result)
        return total

    def check_current(self, result: ChunkResult) -> None:
        if result.version != self.version:
            raise StaleResultError(
                f"a worker's result used theta version {result.version}, the learner is at {self.version}"
            )

    def update(self, gradient_sum: np.ndarray) -> torch.Tensor:
        """Adam step on L (Eq. 23), whose gradient is -(1/N) times the gradient sum (Eq. 24)."""
        gradient = loss(torch.tensor(gradient_sum), self.config.episodes)
        offset = 0
        for p in self.policy.parameters():
            p.grad = gradient[offset : offset + p.numel()].view_as(p).to(p.dtype).clone()
            offset += p.numel()
        self.optimizer.step()
        self.version += 1
        return gradient

    def state_dict(self) -> dict:
        return {
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "version": self.version,
            "batches": self.batches,
            "config": self.config.to_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.version = state["version"]
        self.batches = state["batches"]

"""Observation normalisation: the policy (and V) see (s - mu) / sigma, clipped, with mu and sigma
from every step of the earlier iterations.

Exact and distributed (../shared/DESIGN.md, "State the learner broadcasts besides theta"):
each chunk returns the count, sum_t s_t and sum_t s_t^2 of its steps' observations with its
gradient sums; the learner adds them (``ObservationStatistics``) and, after the iteration's
step, writes mu and sigma into the normaliser, a buffer of the policy module that travels with
theta to the workers (``pgdist.theta.state_to_vector``). Within an iteration the normaliser is
fixed, so the gradient is exact for the policy it defines; it is a function of the chunk sums
alone, so one seed gives one theta for any number of workers; it is in the policy's
state_dict, so checkpoints, ``eval``, ``--video`` and ``export`` carry it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pgdist.config import Config, ConfigError
from pgdist.convolution import is_image

VARIANCE_EPSILON = 1e-8  # sigma = sqrt(var + eps), as SB3's VecNormalize and gymnasium's NormalizeObservation


class ObservationNormalizer(nn.Module):
    """s -> clip((s - mean) / std, -clip, clip); mean 0 and std 1 until the learner writes statistics."""

    def __init__(self, size: int, clip: float = 10.0):
        super().__init__()
        self.clip = float(clip)
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("std", torch.ones(size))

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return ((states - self.mean) / self.std).clamp(-self.clip, self.clip)

    def set(self, mean: np.ndarray, std: np.ndarray) -> None:
        with torch.no_grad():
            self.mean.copy_(torch.as_tensor(mean))
            self.std.copy_(torch.as_tensor(std))


class Normalized(nn.Module):
    """``module`` (a policy or V) fed normalised observations: the same outputs, on (s - mu) / sigma."""

    def __init__(self, module: nn.Module, normalizer: ObservationNormalizer):
        super().__init__()
        self.normalizer = normalizer
        self.module = module

    def forward(self, states: torch.Tensor):
        return self.module(self.normalizer(states))

    def act(self, states: torch.Tensor, generator: torch.Generator, rows: torch.Tensor | None = None) -> torch.Tensor:
        """The wrapped policy's own ``act`` on normalised states (``pgdist.policy.actor``)."""
        return self.module.act(self.normalizer(states), generator, rows)


def normalized(module: nn.Module | None, config: Config, observation_size: int) -> nn.Module | None:
    """``module`` behind an observation normaliser where the config asks for one (its dtype), else as it is."""
    if module is None or not config.normalize_observations:
        return module
    dtype = next(module.parameters()).dtype
    return Normalized(module, ObservationNormalizer(observation_size, config.observation_clip).to(dtype))


def unwrapped(module: nn.Module) -> nn.Module:
    """The module behind an observation normaliser, or the module itself."""
    return module.module if isinstance(module, Normalized) else module


def normalizers(*modules: nn.Module | None) -> list[ObservationNormalizer]:
    return [m.normalizer for m in modules if isinstance(m, Normalized)]


def observation_sums(states: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """A chunk's sum_t s_t and sum_t s_t^2 over its steps' observations, in float64."""
    states = states.reshape(len(states), -1).to(torch.float64)
    return states.sum(0).numpy(), (states**2).sum(0).numpy()


class ObservationStatistics:
    """The count, sum and sum of squares of every observation the iterations so far kept, in float64.

    Sums, not running means: the chunks' add up in any order to the same numbers (up to float
    rounding), as the gradient sums do.
    """

    def __init__(self, size: int):
        self.count = 0
        self.sum = np.zeros(size)
        self.square_sum = np.zeros(size)

    def add(self, count: int, observation_sum: np.ndarray, observation_square_sum: np.ndarray) -> None:
        self.count += int(count)
        self.sum = self.sum + observation_sum
        self.square_sum = self.square_sum + observation_square_sum

    def mean_and_std(self) -> tuple[np.ndarray, np.ndarray]:
        mean = self.sum / self.count
        variance = np.maximum(self.square_sum / self.count - mean**2, 0.0)
        return mean, np.sqrt(variance + VARIANCE_EPSILON)

    def state_dict(self) -> dict:
        """As tensors, which a checkpoint loads with torch.load(weights_only=True)."""
        return {"count": self.count, "sum": torch.tensor(self.sum), "square_sum": torch.tensor(self.square_sum)}

    def load_state_dict(self, state: dict) -> None:
        self.count = int(state["count"])
        self.sum = state["sum"].numpy().copy()
        self.square_sum = state["square_sum"].numpy().copy()


def check_normalizable(config: Config, observation_shape: tuple) -> None:
    """normalize_observations on image observations: a ConfigError when the Learner is built."""
    if config.normalize_observations and is_image(observation_shape):
        raise ConfigError(
            f"normalize_observations=true takes vector observations; {config.env}'s are images of shape "
            f"{observation_shape}, which the image policy scales itself"
        )

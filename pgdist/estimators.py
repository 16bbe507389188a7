"""The tutorial's math on plain tensors, one function per equation.

Trajectories arrive flattened over their steps: row t of a batch holds one step of
episode ``episode[t]``, taken at time ``timestep[t]`` of that episode.
"""

from __future__ import annotations

import torch


def discounted_returns(
    rewards: torch.Tensor, timestep: torch.Tensor, episode: torch.Tensor, n_episodes: int, gamma: float
) -> torch.Tensor:
    """Eq. 6, for every episode at once: R(tau_i) = sum_t gamma^t r_t."""
    discounted = rewards * gamma ** timestep.to(rewards.dtype)
    return torch.zeros(n_episodes, dtype=rewards.dtype).index_add_(0, episode, discounted)


def policy_gradient_sum(log_probs: torch.Tensor, episode: torch.Tensor, returns: torch.Tensor) -> torch.Tensor:
    """sum_i R(tau_i) * sum_t ln pi(a_t|s_t), R detached.

    Its gradient is N times the Monte Carlo policy gradient of Eq. 19. Workers return
    this gradient as a sum; the learner adds the sums of all chunks and divides by N.
    """
    return (returns.detach()[episode] * log_probs).sum()


def loss(policy_gradient_sum: torch.Tensor, n_episodes: int) -> torch.Tensor:
    """Eq. 23: L = -(1/N) sum_i R(tau_i) sum_t ln pi(a_t|s_t). Divided by N trajectories, never by steps."""
    return -policy_gradient_sum / n_episodes

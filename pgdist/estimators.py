"""The tutorial's math on plain tensors, one function per equation, and the estimators built on it.

Trajectories arrive flattened over their steps: row t of a batch holds one step of
episode ``episode[t]``, taken at time ``timestep[t]`` of that episode.

Every estimator has the form  g = (1/N) sum_t grad ln pi(a_t|s_t) * A_t  over all steps of
the N episodes, with a per-step weight A_t:

- ``returns="total"``: A_t = R(tau_i), the episode's discounted return (Eq. 6, Eq. 19, 23);
  ``"reward_to_go"``: A_t = G_t = sum_{t' >= t} gamma^(t'-t) r_t';
  ``"gae"``: A_t = GAE(lambda) from a learned V (``generalized_advantages``).
- ``baseline="value"``: minus a learned V(s_t) (REINFORCE with baseline);
  ``"mean"``: minus the batch mean of A over all steps.
- ``standardize``: (A_t - mean) / std over all steps of the batch.
- ``entropy``: plus beta * (1/N) sum_t grad H(pi(.|s_t)).

Batch statistics (the mean, the std) are not known to any one worker. Workers return
sums instead, and the learner combines them exactly (``combine``):

    sum_t (A_t - mu) / sigma * grad ln pi_t = (sum_t A_t grad ln pi_t - mu * sum_t grad ln pi_t) / sigma

with mu and sigma from the sums of A_t and A_t^2 over every chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

STD_EPSILON = 1e-8
# the chunk vectors whose linear combination is the policy's gradient sum (``Estimator.coefficients``)
POLICY_SUMS = ("gradient_sum", "log_prob_gradient_sum", "entropy_gradient_sum")


def discounted_returns(
    rewards: torch.Tensor, timestep: torch.Tensor, episode: torch.Tensor, n_episodes: int, gamma: float
) -> torch.Tensor:
    """Eq. 6, for every episode at once: R(tau_i) = sum_t gamma^t r_t."""
    discounted = rewards * gamma ** timestep.to(rewards.dtype)
    return torch.zeros(n_episodes, dtype=rewards.dtype).index_add_(0, episode, discounted)


def rewards_to_go(
    rewards: torch.Tensor, timestep: torch.Tensor, episode: torch.Tensor, n_episodes: int, gamma: float
) -> torch.Tensor:
    """G_t = sum_{t' >= t} gamma^(t'-t) r_t' for every step, by G_t = r_t + gamma G_{t+1} backwards in time."""
    length = int(timestep.max()) + 1
    padded = torch.zeros(n_episodes, length, dtype=rewards.dtype)
    padded[episode, timestep] = rewards
    to_go = torch.zeros_like(padded)
    running = torch.zeros(n_episodes, dtype=rewards.dtype)
    for t in reversed(range(length)):
        running = padded[:, t] + gamma * running
        to_go[:, t] = running
    return to_go[episode, timestep]


def generalized_advantages(
    rewards: torch.Tensor, values: torch.Tensor, last_values: torch.Tensor, timestep: torch.Tensor,
    episode: torch.Tensor, n_episodes: int, gamma: float, lam: float,
) -> torch.Tensor:
    """GAE(lambda) (Schulman et al. 2016) for every step: A_t = sum_k (gamma lambda)^k delta_{t+k}, with

        delta_t = r_t + gamma V(s_{t+1}) - V(s_t),

    where V(s_{t+1}) after an episode's last step is ``last_values`` of that episode: V of its final
    state where a time limit cut it, 0 after a termination. Backwards in time, A_t = delta_t +
    gamma lambda A_{t+1}. lambda = 1 gives G_t - V(s_t) (plus gamma^(T-t) V(s_T) for a cut episode).
    """
    length = int(timestep.max()) + 1
    lengths = torch.bincount(episode, minlength=n_episodes)
    padded_rewards = torch.zeros(n_episodes, length, dtype=values.dtype)
    padded_values = torch.zeros(n_episodes, length + 1, dtype=values.dtype)
    in_episode = torch.zeros(n_episodes, length, dtype=torch.bool)
    padded_rewards[episode, timestep] = rewards.to(values.dtype)
    padded_values[episode, timestep] = values
    padded_values[torch.arange(n_episodes), lengths] = last_values
    in_episode[episode, timestep] = True
    deltas = (padded_rewards + gamma * padded_values[:, 1:] - padded_values[:, :-1]) * in_episode
    advantages = torch.zeros_like(deltas)
    running = torch.zeros(n_episodes, dtype=values.dtype)
    for t in reversed(range(length)):
        running = deltas[:, t] + gamma * lam * running
        advantages[:, t] = running
    return advantages[episode, timestep]


def value_sums(targets: torch.Tensor, residuals: torch.Tensor) -> dict[str, float]:
    """A chunk's sums of V's targets y_t and residuals y_t - V(s_t), and of their squares."""
    return {
        "value_target_sum": float(targets.sum()),
        "value_target_square_sum": float((targets**2).sum()),
        "value_residual_sum": float(residuals.sum()),
        "value_residual_square_sum": float((residuals**2).sum()),
    }


def explained_variance(sums) -> float | None:
    """1 - Var(y - V) / Var(y) over a batch's steps (as SB3 logs it): 1 for a V that predicts its targets,
    0 for one no better than their mean; None where the targets do not vary."""
    steps = sums.steps

    def variance(total, square_total):
        return square_total / steps - (total / steps) ** 2

    targets = variance(sums.value_target_sum, sums.value_target_square_sum)
    if targets <= 0.0:
        return None
    return 1.0 - variance(sums.value_residual_sum, sums.value_residual_square_sum) / targets


def policy_gradient_sum(log_probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """sum_t A_t ln pi(a_t|s_t), weights detached; for A_t = R(tau_i), the sum of Eq. 23:
    sum_i R(tau_i) sum_t ln pi(a_t|s_t).

    Its gradient is N times the Monte Carlo policy gradient (Eq. 19). Workers return this
    gradient as a sum; the learner adds the sums of all chunks and divides by N.
    """
    return (weights.detach() * log_probs).sum()


def loss(policy_gradient_sum: torch.Tensor, n_episodes: int) -> torch.Tensor:
    """Eq. 23: L = -(1/N) sum_i R(tau_i) sum_t ln pi(a_t|s_t). Divided by N trajectories, never by steps."""
    return -policy_gradient_sum / n_episodes


@dataclass(frozen=True)
class Estimator:
    """Which policy gradient estimator to use; ``Estimator(gamma)`` is the tutorial's Eq. 23."""

    gamma: float
    returns: str = "total"
    baseline: str = "none"
    standardize: bool = False
    entropy: float = 0.0
    gae_lambda: float = 0.95

    @classmethod
    def of(cls, config) -> Estimator:
        """The estimator a ``pgdist.Config`` chooses (its gamma, returns, baseline, standardize, entropy, gae_lambda)."""
        return cls(config.gamma, config.returns, config.baseline, config.standardize, config.entropy, config.gae_lambda)

    @property
    def centred(self) -> bool:
        """Whether the weights are centred on their batch mean (which needs sum_t grad ln pi)."""
        return self.baseline == "mean" or self.standardize

    def returns_per_step(self, rewards, timestep, episode, n_episodes) -> torch.Tensor:
        """R(tau_i) on every step of episode i (Eq. 23), or the reward-to-go G_t."""
        if self.returns == "reward_to_go":
            return rewards_to_go(rewards, timestep, episode, n_episodes, self.gamma)
        return discounted_returns(rewards, timestep, episode, n_episodes, self.gamma)[episode]

    def coefficients(self, sums) -> tuple[float, float, float]:
        """c with combine(sums) = c . (gradient_sum, log_prob_gradient_sum, entropy_gradient_sum) (``POLICY_SUMS``).

        The sum is linear in the chunks' vectors; only c needs the whole batch (mu, sigma):
        (g - mu h) / sigma + beta e.
        """
        scale, centre = 1.0, 0.0
        if self.centred:
            mean = sums.weight_sum / sums.steps
            if self.standardize:
                variance = max(sums.weight_square_sum / sums.steps - mean**2, 0.0)
                scale = 1.0 / (np.sqrt(variance) + STD_EPSILON)
            centre = -mean * scale
        return scale, centre, self.entropy

    def combine(self, sums) -> np.ndarray:
        """The batch's gradient sum N * g from the summed results of all chunks; g = combine / N."""
        scale, centre, entropy = self.coefficients(sums)
        weighted = scale * sums.gradient_sum
        if self.centred:
            weighted = weighted + centre * sums.log_prob_gradient_sum
        if entropy:
            weighted = weighted + entropy * sums.entropy_gradient_sum
        return weighted

"""A chunk of an iteration's episodes, the episodes a worker ran for it, and the sums it returns.

Everything random in a chunk comes from (seed, draw, chunk index) alone (``Chunk.randomness``),
so a chunk gives the same episodes on whichever worker runs it (DESIGN.md). A ``ChunkResult``
holds sums over its episodes, never means: the learner adds them (``ChunkResult.add``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Chunk:
    """Episodes ``[start, start + episodes)`` of draw ``draw`` (the run's sampling call of that number)."""

    index: int
    start: int
    episodes: int
    seed: int
    draw: int

    def randomness(self) -> tuple[int, torch.Generator]:
        """The chunk's own streams: a reset seed for its environments and a generator for its actions."""
        env_seed, action_seed = np.random.SeedSequence([self.seed, self.draw, self.index]).generate_state(2)
        return int(env_seed), torch.Generator().manual_seed(int(action_seed))


def make_chunks(episodes: int, chunk_episodes: int, seed: int, draw: int) -> list[Chunk]:
    """Cut N episodes into chunks of ``chunk_episodes`` (the last one smaller); never by worker count."""
    starts = range(0, episodes, chunk_episodes)
    return [
        Chunk(j, start, min(chunk_episodes, episodes - start), seed, draw) for j, start in enumerate(starts)
    ]


@dataclass
class Episodes:
    """A chunk's trajectories, flattened over steps (row t: a step of episode ``episode[t]``)."""

    states: torch.Tensor | None  # None where the worker keeps no states (an evaluation's)
    actions: torch.Tensor
    rewards: torch.Tensor
    timestep: torch.Tensor
    episode: torch.Tensor
    count: int
    truncated: int = 0  # of the count, the episodes that pgdist's max_episode_steps cut short
    env_steps: int = 0  # every copy-step the env took for them, kept or not (autoresets included)
    final_states: torch.Tensor | None = None  # with GAE: the final state of each episode a time limit cut,
    final_episode: torch.Tensor | None = None  # and which episode's it is (V(s_T) is bootstrapped there)

    def undiscounted_returns(self) -> torch.Tensor:
        """Each episode's undiscounted return, the score users read."""
        return torch.zeros(self.count, dtype=torch.float64).index_add_(0, self.episode, self.rewards)


@dataclass
class ChunkResult:
    """What a worker sends back: sums over its episodes, never means, and the theta version used.

    With A_t the estimator's weight of step t (``estimators.Estimator``), the gradients are flat:
    ``gradient_sum`` = grad sum_t A_t ln pi(a_t|s_t)  (for Eq. 23, grad sum_i R(tau_i) sum_t ln pi),
    ``log_prob_gradient_sum`` = grad sum_t ln pi(a_t|s_t), ``entropy_gradient_sum`` = grad sum_t H(pi(.|s_t)),
    ``value_gradient_sum`` = grad sum_t (V(s_t) - return_t)^2; each only where the estimator needs it.
    With a value function, the sums of its targets y_t and residuals y_t - V(s_t) (and their squares)
    give its explained variance over the batch; with an observation normaliser, the sums of the
    steps' observations and their squares (``pgdist.normalization``) update it.
    """

    version: int
    episodes: int
    steps: int
    gradient_sum: np.ndarray
    weight_sum: float  # sum_t A_t
    weight_square_sum: float  # sum_t A_t^2
    return_sum: float  # undiscounted sum of rewards, the score users read
    return_min: float
    return_max: float
    discounted_return_sum: float  # R(tau) of Eq. 6
    truncated: int = 0  # episodes that pgdist's max_episode_steps cut short
    env_steps: int = 0  # every env step taken for them, kept or not (autoresets, dropped episodes)
    value_target_sum: float = 0.0
    value_target_square_sum: float = 0.0
    value_residual_sum: float = 0.0
    value_residual_square_sum: float = 0.0
    log_prob_gradient_sum: np.ndarray | None = None
    entropy_gradient_sum: np.ndarray | None = None
    value_gradient_sum: np.ndarray | None = None
    observation_sum: np.ndarray | None = None
    observation_square_sum: np.ndarray | None = None

    def add(self, other: ChunkResult) -> None:
        """Add another chunk's sums into these, in place: the learner's only work per chunk."""
        if other.version != self.version:
            raise ValueError(f"cannot add results of theta versions {self.version} and {other.version}")
        for name in SUMMED:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in SUMMED_VECTORS:
            mine = getattr(self, name)
            if mine is not None:
                np.add(mine, getattr(other, name), out=mine)
        self.return_min = min(self.return_min, other.return_min)
        self.return_max = max(self.return_max, other.return_max)

    def writable(self) -> ChunkResult:
        """A copy whose vectors are float64 and writable (Ray hands out read-only arrays), to add into."""
        vectors = {name: getattr(self, name) for name in SUMMED_VECTORS}
        return dataclasses.replace(
            self, **{name: None if v is None else v.astype(np.float64) for name, v in vectors.items()}
        )


SUMMED = ("episodes", "steps", "weight_sum", "weight_square_sum", "return_sum", "discounted_return_sum", "truncated",
          "env_steps", "value_target_sum", "value_target_square_sum", "value_residual_sum", "value_residual_square_sum")
SUMMED_VECTORS = ("gradient_sum", "log_prob_gradient_sum", "entropy_gradient_sum", "value_gradient_sum",
                  "observation_sum", "observation_square_sum")


@dataclass
class ValueGradient:
    """A chunk's answer in one further round of V's fit (``value_epochs``): at the round's V,
    ``value_gradient_sum`` = grad sum_t (V(s_t) - y_t)^2 over the chunk's steps, with the targets y_t
    of the iteration's theta; the learner adds the chunks' in chunk order."""

    version: int  # the iteration's theta version, whose steps and targets these are
    chunk: int  # the chunk's index
    value_gradient_sum: np.ndarray

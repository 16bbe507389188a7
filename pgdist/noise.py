"""The gradient noise scale B_simple = tr(Sigma) / |G|^2, in episodes, from one iteration's chunk sums.

McCandlish et al. 2018, "An Empirical Model of Large-Batch Training", section 2 and App. A.1.
g_i is episode i's share of the batch's gradient sum (for Eq. 23, R(tau_i) sum_t grad ln pi),
G = E[g_i] the true gradient and Sigma the covariance of g_i. Chunk j sums n_j episodes,
s_j = sum_{i in j} g_i, and N = sum_j n_j over k chunks. With

    A = sum_j |s_j|^2 / n_j,        C = |sum_j s_j|^2 / N,
    E[A] = k tr(Sigma) + N |G|^2,   E[C] = tr(Sigma) + N |G|^2,

the unbiased estimates are

    tr(Sigma)^ = (A - C) / (k - 1),        |G|^2^ = (k C - A) / (N (k - 1)).

Both need k >= 2: one chunk has nothing to compare its sum with. Their ratio is not unbiased,
so ``NoiseScale`` smooths each with its own exponential moving average (weighting iterations
by their N) and divides the averages. docs/math.md derives this and says how batch-wide
statistics enter.

The chunk sums are linear combinations of a chunk's vectors (``estimators.POLICY_SUMS``) with
coefficients known only once the whole batch is in (``Estimator.coefficients``). So as each
chunk arrives ``ChunkSquares`` keeps the Gram matrix of its vectors over n_j, a few dot
products of |theta| and no vector, and A = c^T (sum_j V_j V_j^T / n_j) c at the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DECAY = 0.9  # of the moving averages: about the last 1 / (1 - DECAY) = 10 iterations count


class ChunkSquares:
    """sum_j V_j V_j^T / n_j over an iteration's chunks, where V_j holds chunk j's vectors as rows.

    Adding is commutative: the order in which chunks arrive changes only the float rounding.
    """

    def __init__(self, size: int):
        self.gram = np.zeros((size, size))
        self.chunks = 0

    def add(self, vectors: list[np.ndarray | None], episodes: int) -> None:
        """One chunk's vectors (None where the estimator does not use one) and its episode count n_j."""
        flat = [None if v is None else np.asarray(v, dtype=np.float64) for v in vectors]
        for a, u in enumerate(flat):
            for b, v in enumerate(flat[: a + 1]):
                if u is not None and v is not None:
                    product = float(u @ v) / episodes
                    self.gram[a, b] += product
                    if a != b:
                        self.gram[b, a] += product
        self.chunks += 1

    def sum_of_squares(self, coefficients) -> float:
        """A = sum_j |s_j|^2 / n_j for the chunk sums s_j = c . V_j."""
        c = np.asarray(coefficients, dtype=np.float64)
        return float(c @ self.gram @ c)


@dataclass(frozen=True)
class NoiseEstimate:
    """One iteration's unbiased estimates; ``grad_sq`` may be negative on a noisy iteration."""

    trace_sigma: float
    grad_sq: float


def estimate(sum_of_squares: float, total_square: float, episodes: int, chunks: int) -> NoiseEstimate | None:
    """tr(Sigma)^ and |G|^2^ from A, |sum_j s_j|^2, N and k; None for k < 2 (no second chunk to compare)."""
    if chunks < 2:
        return None
    a, c = sum_of_squares, total_square / episodes
    return NoiseEstimate(trace_sigma=(a - c) / (chunks - 1), grad_sq=(chunks * c - a) / (episodes * (chunks - 1)))


class NoiseScale:
    """B_simple = EMA(tr(Sigma)^) / EMA(|G|^2^), each of the two unbiased estimates averaged on its own.

    Each iteration's estimates count with the weight of their N episodes: with adaptive N, an
    iteration of 2,000 episodes tells far more than one of 40 (the spread of |G|^2^ falls as
    tr(Sigma) / N), and with a fixed N the weights are equal and this is the paper's plain
    moving average. ``value`` is None until an estimate has come in, and while the averaged
    |G|^2 is not positive (the gradient is lost in the noise: N is too small to tell).
    """

    def __init__(self, decay: float = DECAY):
        self.decay = decay
        self.trace_sigma = 0.0  # sum_t decay^(T-t) N_t tr(Sigma)^_t
        self.grad_sq = 0.0  # sum_t decay^(T-t) N_t |G|^2^_t
        self.weight = 0.0  # sum_t decay^(T-t) N_t, which divides both
        self.squares = 0.0  # sum_t decay^(2(T-t)), for the standard error of the averages
        self.count = 0  # estimates averaged so far

    def update(self, estimate: NoiseEstimate | None, episodes: int) -> None:
        if estimate is None:
            return
        self.trace_sigma = self.decay * self.trace_sigma + episodes * estimate.trace_sigma
        self.grad_sq = self.decay * self.grad_sq + episodes * estimate.grad_sq
        self.weight = self.decay * self.weight + episodes
        self.squares = self.decay**2 * self.squares + 1.0
        self.count += 1

    def resolved(self) -> bool:
        """Whether the averaged |G|^2 stands 2 standard errors above 0, so that ``value`` means something.

        Where N is far below the noise scale, |G|^2^ is mostly noise and ``value`` reads about N,
        whatever the truth. There one iteration's |G|^2^ has variance about 2 tr(Sigma^2) / N^2
        <= 2 tr(Sigma)^2 / N^2 (the term 4 G^T Sigma G / N, of the same order where N ~ B, is
        left out); with the weights N_t of the averages, the average's standard error is at most
        sqrt(2 sum_t decay^(2(T-t))) tr(Sigma) / sum_t decay^(T-t) N_t.
        """
        if self.count == 0:
            return False
        trace_sigma, grad_sq = self.trace_sigma / self.weight, self.grad_sq / self.weight
        return grad_sq > 2 * math.sqrt(2 * self.squares) * trace_sigma / self.weight

    @property
    def value(self) -> float | None:
        """The smoothed B_simple in episodes (the weights cancel in the ratio)."""
        if self.count == 0 or self.grad_sq <= 0.0:
            return None
        return self.trace_sigma / self.grad_sq

    def summary(self, episodes: int, chunk_episodes: int) -> str:
        """One line for the end of training: the noise scale measured at N = ``episodes`` against N, or why there is none."""
        if episodes <= chunk_episodes:
            return (
                f"no noise scale: N = {episodes} is 1 chunk (chunk_episodes = {chunk_episodes}) and the estimate "
                f"compares the sums of 2 chunks or more; set chunk_episodes to N/2 or less"
            )
        noise_scale = self.value
        if self.count == 0:
            return "no noise scale: no iteration has measured it yet"
        if noise_scale is None:
            return (
                f"no noise scale: the measured |G|^2 is not positive, the gradient is lost in the noise of "
                f"N = {episodes} episodes (a larger N would tell)"
            )
        return f"measured noise scale ≈ {noise_scale:,.0f} episodes; N = {episodes:,} is {episodes / noise_scale:.2g}× that"

    def state_dict(self) -> dict:
        return {"decay": self.decay, "trace_sigma": self.trace_sigma, "grad_sq": self.grad_sq,
                "weight": self.weight, "squares": self.squares, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.decay = state["decay"]
        self.trace_sigma = state["trace_sigma"]
        self.grad_sq = state["grad_sq"]
        self.weight = state["weight"]
        self.squares = state["squares"]
        self.count = state["count"]

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
so ``NoiseScale`` smooths each with its own exponential moving average and divides the
averages. docs/math.md derives this and says how batch-wide statistics enter.

The chunk sums are linear combinations of a chunk's vectors (``estimators.POLICY_SUMS``) with
coefficients known only once the whole batch is in (``Estimator.coefficients``). So as each
chunk arrives ``ChunkSquares`` keeps the Gram matrix of its vectors over n_j, a few dot
products of |theta| and no vector, and A = c^T (sum_j V_j V_j^T / n_j) c at the end.
"""

from __future__ import annotations

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
        self.episodes = 0

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
        self.episodes += episodes

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

    ``value`` is None until an estimate has come in, and while the averaged |G|^2 is not
    positive (the gradient is lost in the noise: N is far too small to tell).
    """

    def __init__(self, decay: float = DECAY):
        self.decay = decay
        self.trace_sigma = 0.0  # the moving averages, not yet debiased
        self.grad_sq = 0.0
        self.count = 0  # estimates averaged so far

    def update(self, estimate: NoiseEstimate | None) -> None:
        if estimate is None:
            return
        self.trace_sigma = self.decay * self.trace_sigma + (1 - self.decay) * estimate.trace_sigma
        self.grad_sq = self.decay * self.grad_sq + (1 - self.decay) * estimate.grad_sq
        self.count += 1

    @property
    def value(self) -> float | None:
        """The smoothed B_simple in episodes.

        Both averages start at 0 and so carry the same factor 1 - decay^count (Adam's bias); it
        cancels in the ratio.
        """
        if self.count == 0 or self.grad_sq <= 0.0:
            return None
        return self.trace_sigma / self.grad_sq

    def state_dict(self) -> dict:
        return {"decay": self.decay, "trace_sigma": self.trace_sigma, "grad_sq": self.grad_sq, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.decay = state["decay"]
        self.trace_sigma = state["trace_sigma"]
        self.grad_sq = state["grad_sq"]
        self.count = state["count"]

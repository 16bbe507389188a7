"""Draws from pi_theta's distributions with a chunk's own generator, never torch's global stream.

A chunk's episodes are then the same on any worker (DESIGN.md, "Chunks own their randomness").
``pgdist.policy`` builds the rollout's actor on these draws.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.distributions import Bernoulli, Categorical, Distribution, Independent, Normal

from pgdist.convolution import is_image


def policy_input(states: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """A batch of observations as the policy receives it: images in their own dtype (uint8 frames
    stay a quarter of float32's size in a chunk; the policy scales them), vectors in the policy's dtype."""
    if is_image(states.shape[1:]):
        return torch.from_numpy(states)
    return torch.as_tensor(states, dtype=dtype)


def sample(
    distribution: Distribution, generator: torch.Generator, rows: torch.Tensor | None = None, width: int = 0
) -> torch.Tensor:
    """Draw actions from ``distribution`` with ``generator``, never torch's global stream.

    With ``rows``, the distribution is of those rows of a batch of ``width``: the noise is drawn
    for all ``width`` rows and the rows' own taken, so that acting for fewer rows leaves every
    row's draw, and the generator's stream, as they were.

    Categorical: the CDF inverted, one uniform per draw (``inverse_cdf``), in a few batched
    operations. Independent Categoricals (MultiDiscrete) draw each component so, Bernoullis as U < p.
    """
    if isinstance(distribution, Categorical):
        return inverse_cdf(distribution.logits, generator, rows, width)
    base = distribution.base_dist if isinstance(distribution, Independent) else None
    if isinstance(base, Normal):
        return gaussian(base.loc, base.scale, generator, rows, width)
    if isinstance(base, Categorical):
        return inverse_cdf(base.logits, generator, rows, width)
    if isinstance(base, Bernoulli):
        return bernoulli(base.probs, generator, rows, width)
    raise TypeError(f"pgdist cannot sample a {type(distribution).__name__} with its own generator")


def _noise(draw, like: torch.Tensor, rows: torch.Tensor | None, width: int) -> torch.Tensor:
    """``draw(shape)`` for ``like``'s rows, or for ``width`` rows of which ``rows`` are kept."""
    if rows is None:
        return draw(like.shape)
    return draw((width, *like.shape[1:]))[rows]


def inverse_cdf(logits: torch.Tensor, generator: torch.Generator, rows=None, width: int = 0) -> torch.Tensor:
    """A draw from softmax(logits) over the last dimension, the CDF inverted: the first action a whose
    cumulative probability P_a = sum_{b <= a} pi_b reaches V * P_last, with V = 1 - U ~ Uniform(0, 1].
    Times P_last, and V above 0, so that rounding never draws an action of probability 0 (a -inf
    logit): not one past the last that has any, nor one before the first.

    In float64: one uniform per draw where the Gumbel-max trick needs one exponential per action,
    and only elementwise operations: 2.6x faster for two actions, 4x for six (docs/benchmarks.md).
    """
    uniform = _noise(lambda shape: torch.rand(shape, generator=generator, dtype=torch.float64), logits[..., :1], rows, width)
    cumulative = logits.to(torch.float64).exp().cumsum(-1)
    return (cumulative < (1 - uniform) * cumulative[..., -1:]).sum(-1)


def gaussian(mean: torch.Tensor, std: torch.Tensor, generator: torch.Generator, rows=None, width: int = 0) -> torch.Tensor:
    return mean + std * _noise(lambda shape: torch.randn(shape, generator=generator, dtype=mean.dtype), mean, rows, width)


def bernoulli(probs: torch.Tensor, generator: torch.Generator, rows=None, width: int = 0) -> torch.Tensor:
    """1 where U < p with U ~ Uniform(0, 1), else 0: each bit a draw from Bernoulli(p), as floats."""
    uniform = _noise(lambda shape: torch.rand(shape, generator=generator, dtype=probs.dtype), probs, rows, width)
    return (uniform < probs).to(probs.dtype)

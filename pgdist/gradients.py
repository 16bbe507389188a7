"""The gradient pass over a chunk's steps: the gradients of its sums, which is all a worker returns.

Every sum is over steps (``estimators``: sum_t A_t grad ln pi, V's squared error, ...), so the
chunk's steps go through the networks in a few batched forward passes (``forward_passes``) whose
gradients add up to the chunk's. ``chunk_sums`` is what ``RolloutWorker.gradient_sum`` returns.
"""

from __future__ import annotations

import numpy as np
import torch

from pgdist.chunks import ChunkResult, Episodes
from pgdist.estimators import Estimator, discounted_returns, generalized_advantages, policy_gradient_sum, value_sums
from pgdist.normalization import normalizers, observation_sums


def _flat_gradient(output: torch.Tensor, parameters: list[torch.Tensor]) -> np.ndarray:
    gradients = torch.autograd.grad(output, parameters, retain_graph=True, allow_unused=True)
    return torch.cat(
        [(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(gradients, parameters)]
    ).numpy()


FORWARD_PASS_NUMBERS = 1 << 23  # the most observation numbers one forward pass takes (32 MiB as float32)
FORWARD_PASS_ROWS = 1 << 16  # and the most steps: a small net's activations for them stay in the cache


def forward_passes(states: torch.Tensor) -> list[slice]:
    """The rows of each forward pass over a chunk's steps: at most FORWARD_PASS_ROWS steps a pass,
    where a vector-observation net's activations stay in the CPU's cache (the gradient pass of a
    CartPole chunk of 360,000 steps runs 1.2x faster in passes of 65,536 steps than in one,
    docs/benchmarks.md); for images at most FORWARD_PASS_NUMBERS numbers a pass (297 stacked
    84x84x4 Atari frames), so that the activations autograd keeps stay bounded however long the
    chunk's episodes are."""
    rows = max(1, min(FORWARD_PASS_ROWS, FORWARD_PASS_NUMBERS // max(1, states[0].numel())))
    return [slice(start, start + rows) for start in range(0, len(states), rows)]


def chunk_sums(episodes: Episodes, policy: torch.nn.Module, value: torch.nn.Module | None, estimator: Estimator,
           version: int, targets: tuple[torch.Tensor, torch.Tensor | None] | None = None) -> ChunkResult:
    """Batched forward passes over the chunk's steps (one, but for long chunks of images), then the
    gradients of its sums: every sum is over steps, so the passes' gradients add up to the chunk's.
    ``targets``: ``step_targets``'s, where the caller has them already."""
    passes = forward_passes(episodes.states)
    targets, advantages = targets or step_targets(episodes, policy, value, estimator)
    result, weights, residuals = {}, [], []
    for rows in passes:
        sums, pass_weights, pass_residuals = _pass_gradients(
            episodes.states[rows], episodes.actions[rows], targets[rows], None if advantages is None else advantages[rows],
            policy, value, estimator)
        for name, vector in sums.items():
            result[name] = vector if name not in result else result[name] + vector
        weights.append(pass_weights)
        residuals.append(pass_residuals)
    if value is not None:
        result.update(value_sums(targets.to(torch.float64), torch.cat(residuals).to(torch.float64)))
    if normalizers(policy):
        result["observation_sum"], result["observation_square_sum"] = observation_sums(episodes.states)
    returns = discounted_returns(episodes.rewards, episodes.timestep, episodes.episode, episodes.count, estimator.gamma)
    undiscounted = episodes.undiscounted_returns()
    weights = torch.cat(weights).to(torch.float64)
    return ChunkResult(
        version=version,
        episodes=episodes.count,
        steps=len(episodes.episode),
        weight_sum=float(weights.sum()),
        weight_square_sum=float((weights**2).sum()),
        return_sum=float(undiscounted.sum()),
        return_min=float(undiscounted.min()),
        return_max=float(undiscounted.max()),
        discounted_return_sum=float(returns.sum()),
        truncated=episodes.truncated,
        env_steps=episodes.env_steps,
        **result,
    )


def step_targets(episodes: Episodes, policy: torch.nn.Module, value: torch.nn.Module | None,
                 estimator: Estimator) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Each step's return (R(tau) or G_t: V's regression target) and, with GAE, its advantage A_t
    (its target then the lambda-return A_t + V(s_t), from the V loaded now), in the policy's dtype."""
    dtype = next(policy.parameters()).dtype
    passes = forward_passes(episodes.states)
    if estimator.returns != "gae":
        targets = estimator.returns_per_step(episodes.rewards, episodes.timestep, episodes.episode, episodes.count)
        return targets.to(dtype), None
    with torch.no_grad():
        values = torch.cat([value(episodes.states[rows]).squeeze(-1) for rows in passes]).to(torch.float64)
        last_values = torch.zeros(episodes.count, dtype=torch.float64)
        if episodes.final_states is not None:
            last_values[episodes.final_episode] = value(episodes.final_states).squeeze(-1).to(torch.float64)
    advantages = generalized_advantages(episodes.rewards, values, last_values, episodes.timestep, episodes.episode,
                                        episodes.count, estimator.gamma, estimator.gae_lambda)
    return (advantages + values).to(dtype), advantages.to(dtype)


def value_gradient_sum(states: torch.Tensor, targets: torch.Tensor, value: torch.nn.Module) -> np.ndarray:
    """grad sum_t (V(s_t) - y_t)^2 over a chunk's steps, flat: a round of V's fit (``value_epochs``)."""
    parameters = list(value.parameters())
    total = None
    for rows in forward_passes(states):
        gradient = _flat_gradient(_squared_error(value(states[rows]).squeeze(-1), targets[rows]), parameters)
        total = gradient if total is None else total + gradient
    return total


def _squared_error(values: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """sum_t (V(s_t) - y_t)^2, V's regression loss over a pass's steps (times their number)."""
    return ((values - targets) ** 2).sum()


def _pass_gradients(states: torch.Tensor, actions: torch.Tensor, targets: torch.Tensor, advantages: torch.Tensor | None,
                policy: torch.nn.Module, value: torch.nn.Module | None, estimator: Estimator):
    """The gradients of one forward pass's sums over its steps, its weights A_t (detached) and, with
    a value function, its residuals y_t - V(s_t) (else None).

    A_t is the given advantage (GAE), else the return minus V(s_t) (or the return, without V)."""
    distribution = policy(states)
    log_probs = distribution.log_prob(actions)
    weights, residuals = targets, None
    parameters = list(policy.parameters())
    sums = {}
    if value is not None:
        values = value(states).squeeze(-1)
        residuals = targets - values.detach()
        weights = residuals if advantages is None else advantages
        sums["value_gradient_sum"] = _flat_gradient(_squared_error(values, targets), list(value.parameters()))
    sums["gradient_sum"] = _flat_gradient(policy_gradient_sum(log_probs, weights), parameters)
    if estimator.centred:
        sums["log_prob_gradient_sum"] = _flat_gradient(log_probs.sum(), parameters)
    if estimator.entropy:
        sums["entropy_gradient_sum"] = _flat_gradient(distribution.entropy().sum(), parameters)
    return sums, weights.detach(), residuals

"""Every estimator, distributed, against a one-process computation on the same episodes.

The one-process side is written out the plain way (a loop per episode for the returns,
statistics over the whole batch, one autograd pass of the loss over all N episodes), so
that it shares nothing with the workers' sums and the learner's combination of them.
"""


import numpy as np
import pytest
import torch

from envs.target import TARGET_SLOPE
from pgdist import Config, Learner
from pgdist.estimators import rewards_to_go
from pgdist.policy import GaussianPolicy
from replay import float64_policy, recorded_trajectories

ESTIMATORS = [
    dict(returns="total"),
    dict(returns="reward_to_go"),
    dict(returns="total", baseline="mean"),
    dict(returns="reward_to_go", standardize=True),
    dict(returns="total", baseline="value"),
    dict(returns="reward_to_go", baseline="value", standardize=True, entropy=0.01),
    dict(returns="total", entropy=0.05),
]


def one_process_loss(policy, value, trajectories, config):
    """-(1/N) [sum_t A_t ln pi(a_t|s_t) + beta sum_t H_t], and the value function's mean squared error."""
    gamma = config.gamma
    per_step_returns, states, actions = [], [], []
    for episode_states, episode_actions, rewards in trajectories:
        rewards = rewards.tolist()
        if config.returns == "total":
            R = sum(gamma**t * r for t, r in enumerate(rewards))
            per_step_returns += [R] * len(rewards)
        else:
            per_step_returns += [
                sum(gamma ** (k - t) * rewards[k] for k in range(t, len(rewards))) for t in range(len(rewards))
            ]
        states.append(episode_states)
        actions.append(episode_actions)
    returns = torch.tensor(per_step_returns, dtype=torch.float64)
    states, actions = torch.cat(states), torch.cat(actions)
    weights = returns
    value_loss = torch.zeros(())
    if value is not None:
        predictions = value(states).squeeze(-1)
        weights = returns - predictions.detach()
        value_loss = ((predictions - returns) ** 2).mean()
    if config.baseline == "mean" or config.standardize:
        weights = weights - weights.mean()
    if config.standardize:
        weights = weights / (weights.var(unbiased=False).sqrt() + 1e-8)
    distribution = policy(states)
    objective = (weights * distribution.log_prob(actions)).sum() + config.entropy * distribution.entropy().sum()
    return -objective / len(trajectories), value_loss


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: "-".join(f"{k}={v}" for k, v in e.items()))
def test_estimator_equals_the_one_process_computation(backend, estimator):
    config = Config(env="CartPole-v1", episodes=17, chunk_episodes=5, envs_per_chunk=3, workers=2,
                    backend=backend, seed=21, gamma=0.97, **estimator)
    policy = float64_policy(4)
    with Learner(config, policy=policy) as learner:
        value = learner.value
        batch = learner.sample()
        estimate = learner.estimate_gradient(batch)
    trajectories = recorded_trajectories(config, policy, draw=0, value=value)
    policy_loss, value_loss = one_process_loss(policy, value, trajectories, config)
    expected = torch.autograd.grad(-policy_loss, list(policy.parameters()))
    torch.testing.assert_close(estimate, torch.cat([g.reshape(-1) for g in expected]), rtol=1e-6, atol=1e-9)
    if value is not None:
        expected_value = torch.autograd.grad(value_loss, list(value.parameters()))
        torch.testing.assert_close(
            torch.as_tensor(batch.sums.value_gradient_sum / batch.sums.steps),
            torch.cat([g.reshape(-1) for g in expected_value]), rtol=1e-6, atol=1e-9,
        )


def test_gaussian_policy_gradient_is_exact_with_clipped_actions(backend):
    """Pendulum's actions are clipped to [-2, 2] going into the env; ln pi is of the sampled action."""
    config = Config(env="Pendulum-v1", episodes=6, chunk_episodes=2, envs_per_chunk=2, workers=2,
                    backend=backend, seed=3, returns="reward_to_go", standardize=True)
    torch.manual_seed(0)
    policy = GaussianPolicy(3, 1, log_std=0.7).double()  # wide enough that some actions fall outside [-2, 2]
    with Learner(config, policy=policy) as learner:
        estimate = learner.estimate_gradient()
    trajectories = recorded_trajectories(config, policy, draw=0)
    actions = torch.cat([a for _, a, _ in trajectories])
    assert (actions.abs() > 2).any(), "no action was clipped: the test would not show the clipping"
    policy_loss, _ = one_process_loss(policy, None, trajectories, config)
    expected = torch.autograd.grad(-policy_loss, list(policy.parameters()))
    torch.testing.assert_close(estimate, torch.cat([g.reshape(-1) for g in expected]), rtol=1e-6, atol=1e-9)


def test_rewards_to_go_by_hand():
    rewards = torch.tensor([1.0, 2.0, 3.0, 10.0, 20.0], dtype=torch.float64)
    episode = torch.tensor([0, 0, 0, 1, 1])
    timestep = torch.tensor([0, 1, 2, 0, 1])
    to_go = rewards_to_go(rewards, timestep, episode, 2, gamma=0.5)
    expected = [1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3, 10 + 0.5 * 20, 20]
    torch.testing.assert_close(to_go, torch.tensor(expected, dtype=torch.float64))


def target_bandit_gradients(policy):
    """(weight, g) at the nodes of a quadrature that is exact for E[g] and E[g^2] on envs.target:TargetBandit.

    g = R(a) grad ln pi(a|s). R(a) and grad ln pi(a|s) are polynomials in a (degrees 2 and 2), so
    E[g] and E[g^2] are integrals of polynomials of degree <= 8 against a normal density, and
    Gauss-Hermite quadrature with 10 nodes (exact to degree 19) gets them, and E[|g|^4], exactly.
    """
    parameters = list(policy.parameters())
    nodes, node_weights = np.polynomial.hermite_e.hermegauss(10)
    node_weights = node_weights / node_weights.sum()
    for s in (-1.0, 1.0):
        distribution = policy(torch.tensor([[s]], dtype=torch.float64))
        mu, sigma = distribution.base_dist.loc.detach(), distribution.base_dist.scale.detach()
        for node, weight in zip(nodes, node_weights):
            action = mu + sigma * node
            R = -float((action - TARGET_SLOPE * s) ** 2)
            score = torch.autograd.grad(policy(torch.tensor([[s]], dtype=torch.float64)).log_prob(action).sum(), parameters)
            yield 0.5 * weight, R * torch.cat([x.reshape(-1) for x in score])


def test_gaussian_estimate_is_unbiased(backend):
    """On envs.target:TargetBandit, grad J and the estimator's variance are exact by quadrature.

    Each component may be off by 5 standard errors (see test_unbiased.py for the reasoning).
    """
    torch.manual_seed(1)
    policy = GaussianPolicy(1, 1, hidden=(8,), log_std=-0.3).double()
    parameters = list(policy.parameters())
    mean_g, mean_g2 = 0.0, 0.0
    for weight, g in target_bandit_gradients(policy):
        mean_g = mean_g + weight * g
        mean_g2 = mean_g2 + weight * g**2
    # the closed form J = E_s[-(mu(s) - 0.5 s)^2 - sigma^2] agrees with the quadrature
    states = torch.tensor([[-1.0], [1.0]], dtype=torch.float64)
    distribution = policy(states)
    J = (-(distribution.base_dist.loc.squeeze(-1) - TARGET_SLOPE * states.squeeze(-1)) ** 2
         - distribution.base_dist.scale.squeeze(-1) ** 2).mean()
    exact = torch.cat([x.reshape(-1) for x in torch.autograd.grad(J, parameters)])
    torch.testing.assert_close(mean_g, exact, rtol=1e-9, atol=1e-12)

    n = 20_000
    config = Config(env="envs.target:TargetBandit", episodes=n, chunk_episodes=2_500, envs_per_chunk=256,
                    workers=2, backend=backend, seed=8)
    with Learner(config, policy=policy) as learner:
        estimate = learner.estimate_gradient()
    standard_error = ((mean_g2 - exact**2) / n).sqrt()
    z = (estimate - exact) / standard_error
    assert z.abs().max() < 5.0, f"largest error {z.abs().max():.2f} standard errors"
    assert (estimate - exact).norm() < 0.1 * exact.norm()

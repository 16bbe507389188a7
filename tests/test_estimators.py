"""Every estimator, distributed, against a one-process computation on the same episodes.

The one-process side is written out the plain way (a loop per episode for the returns,
statistics over the whole batch, one autograd pass of the loss over all N episodes), so
that it shares nothing with the workers' sums and the learner's combination of them.
"""


import copy

import numpy as np
import pytest
import torch

from envs.target import TARGET_SLOPE
from pgdist import Config, Learner
from pgdist.estimators import generalized_advantages, rewards_to_go
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
    dict(returns="gae", baseline="value", gae_lambda=0.9),
    dict(returns="gae", baseline="value", gae_lambda=1.0, standardize=True),
]


def one_process_gae(value, states, rewards, gamma, lam, final_state=None):
    """GAE(lambda) of one episode by its definition, A_t = sum_k (gamma lambda)^k delta_{t+k}, and V(s_t);
    V after the last step is V(final_state) where a time limit cut the episode, else 0."""
    with torch.no_grad():
        values = value(states).squeeze(-1).tolist()
        last = 0.0 if final_state is None else float(value(final_state[None]).squeeze())
    next_values = values[1:] + [last]
    deltas = [r + gamma * v_next - v for r, v, v_next in zip(rewards, values, next_values)]
    advantages = [sum((gamma * lam) ** (k - t) * deltas[k] for k in range(t, len(deltas))) for t in range(len(deltas))]
    return advantages, values


def one_process_loss(policy, value, trajectories, config, final_states=None):
    """-(1/N) [sum_t A_t ln pi(a_t|s_t) + beta sum_t H_t], and the value function's mean squared error."""
    gamma = config.gamma
    per_step_returns, states, actions, advantages = [], [], [], []
    for i, (episode_states, episode_actions, rewards) in enumerate(trajectories):
        rewards = rewards.tolist()
        if config.returns == "gae":
            final_state = None if final_states is None else final_states[i]
            episode_advantages, values = one_process_gae(value, episode_states, rewards, gamma, config.gae_lambda, final_state)
            advantages += episode_advantages
            per_step_returns += [a + v for a, v in zip(episode_advantages, values)]  # the lambda-returns: V's targets
        elif config.returns == "total":
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
        weights = returns - predictions.detach() if not advantages else torch.tensor(advantages, dtype=torch.float64)
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
    policy, value, batch, estimate, trajectories = first_batch(config)
    assert_one_process_gradients(estimate, batch, policy, value, one_process_loss(policy, value, trajectories, config))


def first_batch(config):
    """A float64 policy, its V, the learner's first batch and estimate from it, and that batch's episodes."""
    policy = float64_policy(4)
    with Learner(config, policy=policy) as learner:
        value = learner.value
        batch = learner.sample()
        estimate = learner.estimate_gradient(batch)
    return policy, value, batch, estimate, recorded_trajectories(config, policy, draw=0, value=value)


def assert_one_process_gradients(estimate, batch, policy, value, losses):
    """The learner's estimate of grad J, and V's mean regression gradient, against the one-process losses'."""
    policy_loss, value_loss = losses
    expected = torch.autograd.grad(-policy_loss, list(policy.parameters()))
    torch.testing.assert_close(estimate, torch.cat([g.reshape(-1) for g in expected]), rtol=1e-6, atol=1e-9)
    if value is not None:
        expected_value = torch.autograd.grad(value_loss, list(value.parameters()))
        torch.testing.assert_close(
            torch.as_tensor(batch.sums.value_gradient_sum / batch.sums.steps),
            torch.cat([g.reshape(-1) for g in expected_value]), rtol=1e-6, atol=1e-9,
        )


def test_gae_bootstraps_v_of_the_final_state_where_a_time_limit_cuts(backend):
    """CartPole cut at 8 steps: the cut episodes' last delta takes gamma V(s_8), s_8 found by CartPole's own
    (deterministic) physics from the last state and action; the terminated ones' takes 0."""
    import gymnasium

    config = Config(env="CartPole-v1", episodes=12, chunk_episodes=4, envs_per_chunk=3, workers=2, backend=backend,
                    seed=5, gamma=0.97, returns="gae", baseline="value", gae_lambda=0.8, max_episode_steps=8)
    policy, value, batch, estimate, trajectories = first_batch(config)
    physics = gymnasium.make("CartPole-v1").unwrapped
    physics.reset(seed=0)
    final_states = []
    for states, actions, _ in trajectories:
        physics.state = states[-1].numpy().copy()
        final, _, terminated, _, _ = physics.step(int(actions[-1]))
        final_states.append(None if terminated else torch.as_tensor(final, dtype=torch.float64))
    assert batch.sums.truncated == sum(f is not None for f in final_states) > 0
    losses = one_process_loss(policy, value, trajectories, config, final_states)
    assert_one_process_gradients(estimate, batch, policy, value, losses)


def test_gae_with_lambda_1_is_the_reward_to_go_minus_v():
    rewards = torch.tensor([1.0, -2.0, 3.0, 0.5, 4.0], dtype=torch.float64)
    values = torch.tensor([0.3, -0.7, 1.1, 2.0, -0.4], dtype=torch.float64)
    episode, timestep = torch.tensor([0, 0, 0, 1, 1]), torch.tensor([0, 1, 2, 0, 1])
    advantages = generalized_advantages(rewards, values, torch.zeros(2, dtype=torch.float64), timestep, episode, 2,
                                        gamma=0.9, lam=1.0)
    expected = rewards_to_go(rewards, timestep, episode, 2, gamma=0.9) - values
    torch.testing.assert_close(advantages, expected, rtol=0, atol=1e-12)


def test_gae_by_hand_with_a_bootstrapped_cut():
    """Episode 0 terminates after 2 steps; episode 1 is cut after 1 step with V(s_1) = 5. gamma 0.5, lambda 0.5."""
    rewards = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    values = torch.tensor([4.0, 6.0, 1.0], dtype=torch.float64)
    episode, timestep = torch.tensor([0, 0, 1]), torch.tensor([0, 1, 0])
    advantages = generalized_advantages(rewards, values, torch.tensor([0.0, 5.0], dtype=torch.float64), timestep,
                                        episode, 2, gamma=0.5, lam=0.5)
    delta_1 = 2.0 + 0.5 * 0.0 - 6.0  # -4: the last step of a terminated episode
    delta_0 = 1.0 + 0.5 * 6.0 - 4.0  # 0
    cut = 3.0 + 0.5 * 5.0 - 1.0  # 4.5: V(s_1) bootstrapped
    expected = [delta_0 + 0.25 * delta_1, delta_1, cut]  # -1, -4, 4.5
    torch.testing.assert_close(advantages, torch.tensor(expected, dtype=torch.float64))


def test_explained_variance_of_the_batch(backend):
    """metrics' explained_variance is 1 - Var(y - V) / Var(y) over the batch's steps, y the value's targets."""
    config = Config(env="CartPole-v1", episodes=9, chunk_episodes=4, envs_per_chunk=2, workers=2, backend=backend,
                    seed=2, returns="reward_to_go", baseline="value", gamma=0.97)
    policy = float64_policy(4)
    with Learner(config, policy=policy) as learner:
        value = copy.deepcopy(learner.value)
        metrics = learner.step()
    trajectories = recorded_trajectories(config, policy, draw=0, value=value)
    targets = torch.cat([rewards_to_go(r, torch.arange(len(r)), torch.zeros(len(r), dtype=torch.long), 1, 0.97)
                         for _, _, r in trajectories])
    with torch.no_grad():
        predictions = value(torch.cat([s for s, _, _ in trajectories])).squeeze(-1)
    expected = 1 - (targets - predictions).var(unbiased=False) / targets.var(unbiased=False)
    assert metrics["explained_variance"] == pytest.approx(float(expected), rel=1e-9, abs=1e-12)


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


def test_tanh_bounded_actions_reach_the_env_squashed_and_keep_the_gaussians_gradient(backend):
    """bound_actions tanh: the env takes 2 tanh(u) (Pendulum's bounds are +-2), as each recorded reward shows
    (Pendulum's cost of the step's state and torque); ln pi is of the sampled u, so the gradient is the
    Gaussian's over the same u."""
    config = Config(env="Pendulum-v1", episodes=4, chunk_episodes=2, envs_per_chunk=2, workers=2, backend=backend,
                    seed=3, returns="reward_to_go", standardize=True, bound_actions="tanh", max_episode_steps=40)
    torch.manual_seed(0)
    policy = GaussianPolicy(3, 1, log_std=0.7, bounds=(np.array([-2.0]), np.array([2.0]))).double()
    with Learner(config, policy=policy) as learner:
        estimate = learner.estimate_gradient()
    trajectories = recorded_trajectories(config, policy, draw=0)
    states, actions, rewards = (torch.cat(column) for column in zip(*trajectories))
    angle, speed = torch.atan2(states[:, 1], states[:, 0]), states[:, 2]

    def reward(torque):
        return -(angle**2 + 0.1 * speed**2 + 0.001 * torque**2)

    torch.testing.assert_close(rewards, reward(2 * torch.tanh(actions[:, 0])), rtol=0, atol=1e-5)
    assert (reward(actions[:, 0].clamp(-2, 2)) - rewards).abs().max() > 1e-3, "clipping would give the same rewards"
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

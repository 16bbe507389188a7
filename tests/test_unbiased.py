"""pgdist's distributed estimate of grad J against the exact gradient on an enumerable MDP.

Every trajectory tau of envs.mdp.ChainMDP is enumerated with its probability P(tau|theta)
(Eq. 13), so J = sum_tau P(tau|theta) R(tau) (Eq. 7) and its gradient (Eq. 17) are exact
by autograd. The estimator of Eq. 19 averages N i.i.d. terms g(tau) = R(tau) grad sum_t ln pi;
its variance Var[g_k] = E[g_k^2] - (grad_k J)^2 is exact by the same enumeration. The test
allows each component an error of 5 standard errors sqrt(Var[g_k] / N): with ~130
components, the chance that an unbiased estimator exceeds that somewhere is about 1e-4
(Gaussian tails, union bound), while a bias as small as 0.1 standard deviations of g
would be caught at this N.
"""

import math

import numpy as np
import pytest
import torch

from gymnasium import spaces

from envs.mdp import ChainMDP
from envs.spaces_mdp import MultiBinaryMDP, MultiDiscreteMDP
from pgdist import Config, Learner, Policy
from pgdist.policy import BernoulliPolicy, MultiCategoricalPolicy

GAMMA = 0.9
N = 40_000


def trajectories(mdp=ChainMDP):
    """Every trajectory as (probability without pi, R(tau), [(observation, action), ...]), each observation
    as the policy sees it (gymnasium's ``spaces.flatten`` of a gymnasium env's), each action as pi samples it."""
    finished = []

    def extend(state, t, probability, discounted, steps):
        for action, env_action in mdp.choices():
            for p, next_state, reward in mdp.outcomes(state, env_action, t):
                path = steps + [(flat_observation(mdp, state), action)]
                value = discounted + GAMMA**t * reward
                if next_state is None:
                    finished.append((probability * p, value, path))
                else:
                    extend(next_state, t + 1, probability * p, value, path)

    for state, p0 in enumerate(mdp.initial):
        extend(state, 0, p0, 0.0, [])
    return finished


def flat_observation(mdp, state):
    if hasattr(mdp, "observation_space"):
        return spaces.flatten(mdp.observation_space, mdp.observe(state))
    return mdp.observe(state)


def trajectory_gradients(policy, mdp=ChainMDP):
    """(P(tau|theta), g(tau) = R(tau) grad sum_t ln pi) for every trajectory tau, g by autograd."""
    parameters = list(policy.parameters())
    for environment_probability, R, path in trajectories(mdp):
        states = torch.tensor(np.array([s for s, _ in path]), dtype=torch.float64)
        actions = torch.tensor(np.array([a for _, a in path]))
        sum_ln_pi = policy(states).log_prob(actions).sum()
        score = torch.autograd.grad(sum_ln_pi, parameters)
        yield environment_probability * math.exp(sum_ln_pi.item()), R * torch.cat([s.reshape(-1) for s in score])


def exact_gradient_and_variance(policy, mdp=ChainMDP):
    """grad J (Eq. 17) and Var[g] per component, by enumerating every trajectory."""
    gradient, second_moment, total_probability = 0.0, 0.0, 0.0
    for probability, g in trajectory_gradients(policy, mdp):
        gradient = gradient + probability * g
        second_moment = second_moment + probability * g**2
        total_probability += probability
    assert total_probability == pytest.approx(1.0, abs=1e-12)
    return gradient, second_moment - gradient**2


def test_distributed_estimate_is_unbiased(backend):
    torch.manual_seed(7)
    policy = Policy(2, 2).double()
    exact, variance = exact_gradient_and_variance(policy)
    config = Config(env="envs.mdp:ChainMDP", episodes=N, gamma=GAMMA, chunk_episodes=2_500,
                    envs_per_chunk=64, workers=2, backend=backend, seed=2)
    with Learner(config, policy=policy) as learner:
        estimate = learner.estimate_gradient()
    standard_error = (variance / N).sqrt()
    z = (estimate - exact) / standard_error
    assert z.abs().max() < 5.0, f"largest error {z.abs().max():.2f} standard errors"
    # and the estimate is informative: its error is small against the gradient itself
    assert (estimate - exact).norm() < 0.1 * exact.norm()


MULTI_ACTIONS = [
    pytest.param(MultiDiscreteMDP, lambda: MultiCategoricalPolicy(4, [2, 3]), id="multidiscrete"),
    pytest.param(MultiBinaryMDP, lambda: BernoulliPolicy(3, 3), id="multibinary"),
]


@pytest.mark.parametrize("mdp,make_policy", MULTI_ACTIONS)
def test_independent_categoricals_and_bernoullis_are_unbiased(backend, mdp, make_policy):
    """As above, for actions of several components: ln pi is the sum of the components' own."""
    torch.manual_seed(5)
    policy = make_policy().double()
    exact, variance = exact_gradient_and_variance(policy, mdp)
    episodes = 20_000
    config = Config(env=f"envs.spaces_mdp:{mdp.__name__}-v0", episodes=episodes, gamma=GAMMA, chunk_episodes=5_000,
                    envs_per_chunk=128, workers=2, backend=backend, seed=6)
    with Learner(config, policy=policy) as learner:
        estimate = learner.estimate_gradient()
    z = (estimate - exact) / (variance / episodes).sqrt()
    assert z.abs().max() < 5.0, f"largest error {z.abs().max():.2f} standard errors"
    assert (estimate - exact).norm() < 0.1 * exact.norm()

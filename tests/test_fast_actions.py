"""pgdist's own policies act without building a distribution (``Policy.act``); the draw is the same.

The fast path and ``sample()`` on the distribution the policy's forward returns must give
the same actions, bit for bit, from generators in the same state, and leave them in the
same state; a user's own policy module still goes through its distribution. A chunk's
episodes are then the same whichever path drew its actions.
"""

import pytest
import torch
from torch import nn

from pgdist.chunks import make_chunks
from pgdist.config import Config
from pgdist.estimators import Estimator
from pgdist.policy import actor, BernoulliPolicy, GaussianPolicy, MultiCategoricalPolicy, Policy
from pgdist.sampling import inverse_cdf, sample
from pgdist.theta import parameters_to_vector
from pgdist.worker import RolloutWorker

POLICIES = [
    pytest.param(lambda: Policy(4, 3), id="categorical"),
    pytest.param(lambda: Policy(4, 2).double(), id="categorical-float64"),
    pytest.param(lambda: GaussianPolicy(3, 2, log_std=0.4), id="gaussian"),
    pytest.param(lambda: GaussianPolicy(3, 1).double(), id="gaussian-float64"),
    pytest.param(lambda: MultiCategoricalPolicy(4, [3, 2, 4]), id="multicategorical"),
    pytest.param(lambda: MultiCategoricalPolicy(3, [2, 2]).double(), id="multicategorical-even-float64"),
    pytest.param(lambda: BernoulliPolicy(3, 5), id="bernoulli"),
    pytest.param(lambda: BernoulliPolicy(4, 2).double(), id="bernoulli-float64"),
]


class Wrapped(nn.Module):
    """A user's own module: its forward returns the distribution, it has no ``act``."""

    def __init__(self, policy: nn.Module):
        super().__init__()
        self.policy = policy

    def forward(self, state):
        return self.policy(state)


@pytest.mark.parametrize("make", POLICIES)
def test_the_fast_path_draws_the_distributions_actions_bit_for_bit(make):
    torch.manual_seed(3)
    policy = make()
    dtype = next(policy.parameters()).dtype
    fast, slow = torch.Generator().manual_seed(11), torch.Generator().manual_seed(11)
    with torch.inference_mode():
        for rows in (512, 37, 1):
            states = 3 * torch.randn(rows, policy.net[0].in_features, dtype=dtype)
            actions = policy.act(states, fast)
            assert torch.equal(actions, sample(policy(states), slow))
            assert actions.shape[0] == rows
    assert torch.equal(fast.get_state(), slow.get_state())


def policy_and_states(make, rows: int):
    """A policy made with torch's seed 3, and ``rows`` random observations of its input size and dtype."""
    torch.manual_seed(3)
    policy = make()
    dtype = next(policy.parameters()).dtype
    return policy, torch.randn(rows, policy.net[0].in_features, dtype=dtype)


@pytest.mark.parametrize("make", POLICIES)
def test_acting_for_some_rows_draws_the_noise_of_all(make):
    """A chunk's tail acts for some copies only; the generator's stream stays that of acting for all."""
    policy, states = policy_and_states(make, 50)
    rows = torch.tensor([0, 7, 8, 49])
    some, slow, every = (torch.Generator().manual_seed(2) for _ in range(3))
    with torch.inference_mode():
        actions = policy.act(states, some, rows)
        assert torch.equal(actions, sample(policy(states[rows]), slow, rows, len(states)))
        policy.act(states, every)
    assert actions.shape[0] == len(rows)
    assert torch.equal(some.get_state(), every.get_state()) and torch.equal(slow.get_state(), every.get_state())


@pytest.mark.parametrize("make", POLICIES)
def test_a_users_module_goes_through_its_distribution(make):
    policy, states = policy_and_states(make, 64)
    from_module = actor(Wrapped(policy), torch.Generator().manual_seed(5))(states)
    from_fast_path = actor(policy, torch.Generator().manual_seed(5))(states)
    assert torch.equal(from_module, from_fast_path)


@pytest.mark.parametrize("env,make", [
    ("CartPole-v1", lambda: Policy(4, 2)),
    ("envs.spaces_mdp:MultiDiscreteMDP-v0", lambda: MultiCategoricalPolicy(4, [2, 3])),
    ("envs.spaces_mdp:MultiBinaryMDP-v0", lambda: BernoulliPolicy(3, 3)),
])
def test_a_chunks_episodes_are_the_same_through_either_path(env, make):
    """300 episodes on 64 copies: the chunk's tail (copies on dropped episodes) included."""
    torch.manual_seed(0)
    policy = make()
    config = Config(env=env, episodes=300, chunk_episodes=300, envs_per_chunk=64)
    theta = parameters_to_vector(policy).numpy()
    chunk = make_chunks(config.episodes, config.chunk_episodes, config.seed, 1)[0]
    episodes = []
    for module in (policy, Wrapped(policy)):
        worker = RolloutWorker(config.env, module, Estimator.of(config), config.envs_per_chunk)
        worker.load(theta, 0)
        episodes.append(worker.rollout(chunk))
    fast, through_distribution = episodes
    assert fast.count == through_distribution.count == 300
    for name in ("states", "actions", "rewards", "timestep", "episode"):
        assert torch.equal(getattr(fast, name), getattr(through_distribution, name)), name


def test_the_categorical_draw_follows_softmax_and_never_takes_a_minus_infinity_logit():
    """inverse_cdf, which every categorical draw goes through: a million draws from one row of
    seven actions, -inf first, in the middle and last, at their softmax frequencies within 5 sigma."""
    inf = float("inf")
    logits = torch.log_softmax(torch.tensor([[-inf, 0.0, 1.0, -inf, -3.0, 2.0, -inf]]), -1)
    draws = 1_000_000
    actions = inverse_cdf(logits.expand(draws, -1), torch.Generator().manual_seed(0))
    counts = torch.bincount(actions, minlength=logits.shape[1]).double()
    p = logits[0].double().exp()
    sigma = (draws * p * (1 - p)).sqrt()
    assert counts[p == 0].sum() == 0
    assert torch.all((counts - draws * p).abs() <= 5 * sigma + 1e-9)
    assert actions.dtype == torch.int64 and actions.shape == (draws,)

"""Every common gymnasium space: observations flattened as gymnasium's ``spaces.flatten`` lays them
out, MultiDiscrete and MultiBinary actions, and their gradients exact, through both backends."""

import dataclasses
import re
import subprocess
import sys

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array

from pgdist import Config, Learner
from pgdist.envs import env_actions, env_spaces, flat_batch, make_env
from pgdist.export import export
from pgdist.policy import actor, BernoulliPolicy, MultiCategoricalPolicy, Policy
from replay import recorded_trajectories, reference_gradient
from test_estimators import one_process_loss

OBSERVATION_SPACES = [
    spaces.Box(-2.0, 2.0, shape=(3,)),
    spaces.Box(0, 255, shape=(2, 3), dtype=np.uint8),
    spaces.Discrete(5),
    spaces.Discrete(4, start=-2),
    spaces.MultiDiscrete([2, 5, 3]),
    spaces.MultiDiscrete([[2, 3], [4, 2]], start=[[1, 0], [-1, 2]]),
    spaces.MultiBinary(4),
    spaces.MultiBinary([2, 3]),
    spaces.Tuple((spaces.Discrete(32), spaces.Discrete(11), spaces.Discrete(2))),
    spaces.Dict({"position": spaces.Box(-1.0, 1.0, shape=(2,)), "goal": spaces.Discrete(3),
                 "seen": spaces.Tuple((spaces.MultiBinary(2), spaces.MultiDiscrete([3, 2])))}),
]


@pytest.mark.parametrize("space", OBSERVATION_SPACES, ids=str)
def test_a_lockstep_is_flattened_as_gymnasiums_flatten_flattens_each_observation(space):
    """Row i of flat_batch(batch) is spaces.flatten(space, observation i), the batch made as a vector env makes it."""
    space.seed(3)
    observations = [space.sample() for _ in range(7)]
    batch = concatenate(space, observations, create_empty_array(space, n=7))
    rows = flat_batch(space)(batch)
    expected = np.stack([spaces.flatten(space, observation) for observation in observations])
    assert rows.shape == (7, spaces.flatdim(space))
    np.testing.assert_array_equal(rows, expected.astype(rows.dtype))
    assert batch_space(space, 7).contains(batch)


def test_actions_go_into_the_env_in_the_spaces_own_form():
    multi = spaces.MultiDiscrete([[2, 3]], start=[[1, -1]])
    assert env_actions(multi, np.array([[0, 2], [1, 0]])).tolist() == [[[1, 1]], [[2, -1]]]
    bits = env_actions(spaces.MultiBinary(3), np.array([[1.0, 0.0, 1.0]]))
    assert bits.dtype == np.int8 and bits.tolist() == [[1, 0, 1]]
    assert env_actions(spaces.Discrete(3, start=5), np.array([0, 2])).tolist() == [5, 7]
    assert env_actions(spaces.Box(-1.0, 1.0, shape=(1,)), np.array([[3.0]])).tolist() == [[1.0]]


@pytest.mark.parametrize("env,size", [("FrozenLake-v1", 16), ("Taxi-v4", 500), ("Blackjack-v1", 45)])
def test_discrete_and_tuple_observations_give_the_tutorials_gradient(backend, env, size):
    """The policy sees one-hots (FrozenLake's cell, Taxi's state, Blackjack's three Discretes side by side);
    the gradient from the workers is -grad of Eq. 23 by the tutorial's own per-step loop."""
    assert env_spaces(env).observation_size == size
    config = Config(env=env, episodes=7, chunk_episodes=3, envs_per_chunk=2, workers=2, backend=backend, seed=4,
                    max_episode_steps=30)
    torch.manual_seed(0)
    policy = Policy(size, int(gymnasium.make(env).action_space.n)).double()
    with Learner(config, policy=policy) as learner:
        estimate = learner.estimate_gradient()
    trajectories = recorded_trajectories(config, policy, draw=0)
    states = torch.cat([states for states, _, _ in trajectories])
    ones = 3 if env == "Blackjack-v1" else 1  # a one per Discrete
    assert set(states.unique().tolist()) == {0.0, 1.0} and (states.sum(1) == ones).all()
    torch.testing.assert_close(estimate, -reference_gradient(policy, trajectories, config.gamma), rtol=1e-6, atol=1e-9)


def test_the_first_observation_is_flat_as_the_policy_sees_it():
    spaces_of_blackjack = env_spaces("Blackjack-v1")
    observation = gymnasium.make("Blackjack-v1").reset(seed=0)[0]
    np.testing.assert_array_equal(spaces_of_blackjack.observation,
                                  spaces.flatten(gymnasium.make("Blackjack-v1").observation_space, observation))


MULTI_ACTIONS = [
    pytest.param("envs.spaces_mdp:MultiDiscreteMDP-v0", lambda: MultiCategoricalPolicy(4, [2, 3], hidden=(6,)),
                 id="multidiscrete"),
    pytest.param("envs.spaces_mdp:MultiBinaryMDP-v0", lambda: BernoulliPolicy(3, 3, hidden=(6,)), id="multibinary"),
]


@pytest.mark.parametrize("env,make_policy", MULTI_ACTIONS)
def test_multi_component_actions_give_the_one_process_gradient(backend, env, make_policy):
    """Independent Categoricals and Bernoullis: the workers' gradient equals the loss written out in one process
    (reward-to-go, standardised, with an entropy bonus: every sum the workers ship)."""
    config = Config(env=env, episodes=23, chunk_episodes=5, envs_per_chunk=3, workers=2, backend=backend, seed=9,
                    gamma=0.9, returns="reward_to_go", standardize=True, entropy=0.05)
    torch.manual_seed(1)
    policy = make_policy().double()
    with Learner(config, policy=policy) as learner:
        estimate = learner.estimate_gradient()
    trajectories = recorded_trajectories(config, policy, draw=0)
    actions = torch.cat([actions for _, actions, _ in trajectories])
    assert actions.shape[1] == (2 if "Discrete" in env else 3)
    assert len(actions.unique(dim=0)) > 3, "the policy explored too few actions for the test to mean much"
    policy_loss, _ = one_process_loss(policy, None, trajectories, config)
    expected = torch.autograd.grad(-policy_loss, list(policy.parameters()))
    torch.testing.assert_close(estimate, torch.cat([g.reshape(-1) for g in expected]), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("env", ["envs.spaces_mdp:MultiDiscreteMDP-v0", "envs.spaces_mdp:MultiBinaryMDP-v0"])
def test_the_default_policy_is_chosen_from_the_action_space(env):
    with Learner(Config(env=env, episodes=4, backend="local")) as learner:
        row = learner.step()
    expected = MultiCategoricalPolicy if "Discrete" in env else BernoulliPolicy
    assert type(learner.policy) is expected and row["episodes"] == 4


def test_eval_of_a_zero_one_reward_task_says_the_success_rate(tmp_path, request):
    """FrozenLake's return is 1 if the episode reached the goal, else 0: its mean return is its success rate."""
    out = tmp_path / "run"
    command = [sys.executable, "-m", "pgdist.cli"]
    trained = subprocess.run([*command, "train", "--env", "FrozenLake-v1", "--episodes", "8", "--iterations", "1",
                              "--backend", "local", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr
    evaluation = subprocess.run([*command, "eval", str(out), "--episodes", "40"], capture_output=True, text=True,
                                timeout=300)
    mean, success = re.fullmatch(r"mean return (\S+) ± \S+ over 40 episodes \(sampled actions\)\n"
                                 r"success rate (\S+): every return is 0 or 1, so the mean return is the share of "
                                 r"episodes that reached the goal\n", evaluation.stdout).groups()
    assert mean == success


@pytest.mark.parametrize("make_policy", [lambda: MultiCategoricalPolicy(4, [2, 3]), lambda: BernoulliPolicy(3, 3)],
                         ids=["multidiscrete", "multibinary"])
def test_torchscript_export_gives_each_components_probabilities(make_policy, tmp_path):
    torch.manual_seed(2)
    policy = make_policy()
    states = torch.randn(16, policy.net[0].in_features)
    exported = torch.jit.load(str(export(policy, states[:2], "torchscript", tmp_path / "policy.pt")))
    probabilities = exported(states)
    torch.testing.assert_close(probabilities, policy(states).base_dist.probs, rtol=0, atol=0)
    if isinstance(policy, MultiCategoricalPolicy):
        assert probabilities.shape == (16, 2, 3) and (probabilities[:, 0, 2] == 0).all()


def test_the_greedy_bits_are_the_likelier_values_and_0_at_a_tie():
    """torch's Bernoulli.mode is nan at p = 1/2 (a fresh or symmetric policy): pgdist's greedy bit is 0 there."""
    policy = BernoulliPolicy(3, 3, hidden=())
    with torch.no_grad():
        policy.net[0].weight.zero_()
        policy.net[0].bias.copy_(torch.tensor([0.0, 2.0, -2.0]))
    greedy = actor(policy, torch.Generator(), greedy=True)
    assert greedy(torch.zeros(2, 3)).tolist() == [[0.0, 1.0, 0.0]] * 2


def test_the_reference_loops_env_gives_the_same_flat_states():
    """make_env (the tutorial's generate_tau) flattens with gymnasium's own spaces.flatten, as the workers do."""
    state = make_env("FrozenLake-v1").reset(seed=0)
    assert state.dtype == torch.float32 and state.tolist() == [1.0] + [0.0] * 15  # the start cell, 0


@pytest.mark.parametrize("recipe,lowest,highest", [("frozenlake", 0.0, 1.0), ("taxi", -2000.0, 20.0)])
def test_the_recipes_take_a_step(recipe, lowest, highest, request):
    """configs/frozenlake.yaml and configs/taxi.yaml load and train one iteration (their headers say what they reach)."""
    config = Config.from_yaml(request.config.rootpath / "configs" / f"{recipe}.yaml")
    with Learner(dataclasses.replace(config, backend="local")) as learner:
        row = learner.step()
    assert row["episodes"] == config.episodes and lowest <= row["return_mean"] <= highest

"""Every env step a chunk takes: theta pinned for a fixed seed (the value main gave before copies that run
dropped episodes stopped being stepped), on both backends; what an iteration cost (``env_steps``)."""

import importlib.util

import numpy as np
import torch
import pytest

from pgdist import Config, Learner
from pgdist.theta import parameters_to_vector

# Taken on main at 493169a (every copy stepped at every lockstep), 2026-12-07; one chunk an iteration,
# so the sum of chunks has one order on either backend. Five copies for more episodes than copies:
# each chunk's copies run episodes it drops. (kept steps per iteration, sum of theta, sum of squares,
# theta's first three numbers)
PINNED = {
    "FrozenLake-v1": ([156, 141, 220], -1.1346149817109108, 7.850801159549528,
                      [-0.2798088788986206, -0.19721531867980957, -0.10707876086235046]),
    "envs.mdp:ChainMDP": ([48, 60, 50], -7.019148470833898, 11.62834084275006,
                          [-0.5685089230537415, -0.682980477809906, -0.16051994264125824]),
    "Hopper-v5": ([273, 294, 392], 2.018208422930911, 13.473217103032841,
                  [-0.0019449181854724884, -0.02716561034321785, 0.024346403777599335]),
}
SETTINGS = {
    "FrozenLake-v1": dict(episodes=24, chunk_episodes=24, lr=0.05),
    "envs.mdp:ChainMDP": dict(episodes=24, chunk_episodes=24, lr=0.05),
    "Hopper-v5": dict(episodes=12, chunk_episodes=12, lr=0.01, baseline="value", returns="reward_to_go",
                      standardize=True),
}
HAS_MUJOCO = importlib.util.find_spec("mujoco") is not None


@pytest.mark.parametrize("env", list(PINNED))
def test_theta_is_pinned_for_a_fixed_seed(env, backend):
    if env == "Hopper-v5" and not HAS_MUJOCO:
        pytest.skip("needs mujoco (the mujoco extra, which the test extra installs)")
    config = Config(env=env, envs_per_chunk=5, hidden=[16], seed=3, backend=backend, **SETTINGS[env])
    with Learner(config) as learner:
        steps = [learner.step()["steps"] for _ in range(3)]
        theta = parameters_to_vector(learner.policy, learner.value).double()
    pinned_steps, total, squares, first = PINNED[env]
    assert steps == pinned_steps
    assert [float(theta.sum()), float((theta**2).sum()), [float(x) for x in theta[:3]]] == [total, squares, first]


@pytest.mark.parametrize("env", ["FrozenLake-v1", "envs.mdp:ChainMDP"])
def test_a_copy_steps_only_for_kept_episodes_where_the_env_steps_copies_apart(env):
    """Each kept episode's steps, and one autoreset for each kept episode a copy starts after its first:
    env_steps = steps + episodes - copies, per chunk."""
    config = Config(env=env, episodes=24, chunk_episodes=8, envs_per_chunk=5, hidden=[16], seed=3, backend="local")
    with Learner(config) as learner:
        for _ in range(2):
            metrics = learner.step()
            assert metrics["env_steps"] == metrics["steps"] + 3 * (8 - 5), metrics


def test_a_vector_env_that_steps_every_copy_counts_every_copy_step():
    """CartPole's numpy vector env steps all its copies at once: every lockstep costs each copy a step."""
    config = Config(env="CartPole-v1", episodes=12, chunk_episodes=12, envs_per_chunk=5, seed=3, backend="local")
    with Learner(config) as learner:
        metrics = learner.step()
    assert metrics["env_steps"] % 5 == 0 and metrics["env_steps"] > metrics["steps"] + 12 - 5, metrics


HAS_ENVPOOL = importlib.util.find_spec("envpool") is not None and HAS_MUJOCO


@pytest.mark.skipif(not HAS_ENVPOOL, reason="needs envpool (the envpool extra) and mujoco")
def test_envpool_steps_a_chunk_s_kept_copies_and_one_seed_gives_one_theta(backend):
    """EnvPool made anew at each chunk with the chunk's seed: the same θ on either backend and for any
    cut of the work, no step of a dropped episode, and the chunk's episodes those of stepping every copy."""
    config = Config(env="Hopper-v5", episodes=12, chunk_episodes=6, envs_per_chunk=4, hidden=[16], lr=0.01, seed=3,
                    vector_env="envpool")
    with Learner(config.replace(backend=backend, workers=2)) as learner:
        metrics = [learner.step() for _ in range(2)]
        theta = parameters_to_vector(learner.policy)
    with Learner(config.replace(backend="local")) as reference:
        for _ in range(2):
            reference.step()
        expected = parameters_to_vector(reference.policy)
    assert all(m["env_steps"] == m["steps"] + 2 * (6 - 4) for m in metrics), metrics
    assert torch.allclose(theta, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("env, vector_env, episodes, copies", [("FrozenLake-v1", "gymnasium", 30, 6),
                                                                 ("Hopper-v5", "envpool", 10, 4)])
def test_stepping_only_the_kept_copies_gives_the_chunk_that_stepping_all_gives(env, vector_env, episodes, copies,
                                                                              monkeypatch):
    """The same chunk with every copy stepped at every lockstep (as before): the same episodes and sums."""
    if vector_env == "envpool" and not HAS_ENVPOOL:
        pytest.skip("needs envpool (the envpool extra) and mujoco")
    from pgdist import worker
    from pgdist.chunks import Chunk
    from pgdist.estimators import Estimator
    from pgdist.policy import make_policy
    from pgdist.envs import env_spaces

    config = Config(env=env, episodes=episodes, envs_per_chunk=copies, hidden=[16], seed=5)
    spaces = env_spaces(config.env)
    policy = make_policy(spaces.observation_shape, spaces.action_space, config.hidden, config.seed)

    def run():
        rollout = worker.RolloutWorker(config.env, policy, Estimator.of(config), copies, vector_env=vector_env)
        chunk = Chunk(index=0, start=0, episodes=episodes, seed=5, draw=0)
        return rollout.run(parameters_to_vector(policy).numpy(), 0, chunk)

    apart = run()
    monkeypatch.setattr(worker, "copies_to_step", lambda resetting, *_: np.ones(len(resetting), dtype=bool))
    every = run()
    assert apart.steps == every.steps and apart.env_steps < every.env_steps
    np.testing.assert_array_equal(apart.gradient_sum, every.gradient_sum)
    assert (apart.return_sum, apart.return_min, apart.return_max, apart.discounted_return_sum) == \
        (every.return_sum, every.return_min, every.return_max, every.discounted_return_sum)


def test_vector_env_envpool_without_envpool_or_for_an_id_it_lacks_is_one_line(monkeypatch, tmp_path, pgdist_here):
    import sys

    monkeypatch.setitem(sys.modules, "envpool", None)  # as if not installed
    code, _, err = pgdist_here("train", "--env", "CartPole-v1", "--vector-env", "envpool", "--out", tmp_path / "run")
    assert code == 2 and not (tmp_path / "run").exists()
    assert err.strip() == (
        'pgdist: error: vector_env=envpool needs EnvPool, which is not installed: pip install "pgdist[envpool]"')
    if HAS_ENVPOOL:
        monkeypatch.delitem(sys.modules, "envpool")
        code, _, err = pgdist_here("train", "--env", "envs.line:LineWalk", "--vector-env", "envpool",
                                   "--out", tmp_path / "r")
        assert code == 2 and "EnvPool has no env 'envs.line:LineWalk'" in err

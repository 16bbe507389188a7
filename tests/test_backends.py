"""The learner against both backends (in-process and Ray actors), one suite for both."""

import copy

import numpy as np
import pytest
import torch

from pgdist import Config, Learner, Policy, StaleResultError, train
from pgdist import gradients as gradients_module
from pgdist.chunks import make_chunks
from pgdist.estimators import Estimator
from pgdist.theta import parameters_to_vector, state_to_vector
from pgdist.worker import RolloutWorker
from replay import float64_policy, recorded_trajectories, reference_gradient

# (chunk_episodes, envs_per_chunk, workers): how N is cut and spread
SPLITS = [(1, 1, 1), (3, 2, 2), (16, 5, 3)]


@pytest.mark.parametrize("episodes", [1, 7, 64])
@pytest.mark.parametrize("chunk_episodes,envs_per_chunk,workers", SPLITS)
def test_gradient_equals_the_tutorials_loss_gradient(backend, episodes, chunk_episodes, envs_per_chunk, workers):
    """Gradient sum / N from the workers == -grad of Eq. 23 by the tutorial's per-step autograd loop."""
    config = Config(
        env="CartPole-v1", episodes=episodes, chunk_episodes=chunk_episodes,
        envs_per_chunk=envs_per_chunk, workers=workers, backend=backend, seed=11,
    )
    policy = float64_policy(4)
    with Learner(config, policy=policy) as learner:
        estimate = learner.estimate_gradient()
    trajectories = recorded_trajectories(config, policy, draw=0)
    assert len(trajectories) == episodes
    expected = -reference_gradient(policy, trajectories, config.gamma)  # Eq. 24: grad J = -grad L
    assert estimate.dtype == torch.float64
    torch.testing.assert_close(estimate, expected, rtol=1e-6, atol=1e-9)


def test_with_an_observation_normaliser_the_gradient_is_the_tutorials(backend):
    """normalize_observations: after a step the normaliser holds the first batch's mu and sigma; the next
    gradient is the tutorial loop's for the policy with that normaliser (fixed within the iteration)."""
    config = Config(env="CartPole-v1", episodes=9, chunk_episodes=4, envs_per_chunk=3, workers=2, backend=backend,
                    seed=4, normalize_observations=True, observation_clip=3.0)
    with Learner(config, policy=float64_policy(4)) as learner:
        before = copy.deepcopy(learner.policy)
        learner.update(learner.sample())
        states = torch.cat([s for s, _, _ in recorded_trajectories(config, before, draw=0)])
        torch.testing.assert_close(learner.policy.normalizer.mean, states.mean(0))
        torch.testing.assert_close(learner.policy.normalizer.std, (states.var(0, unbiased=False) + 1e-8).sqrt())
        estimate = learner.estimate_gradient()  # draw 1, with that normaliser
        policy = learner.policy
    trajectories = recorded_trajectories(config, policy, draw=1)
    assert (policy.normalizer(torch.cat([s for s, _, _ in trajectories])).abs() == 3.0).any(), "nothing was clipped"
    expected = -reference_gradient(policy, trajectories, config.gamma)
    torch.testing.assert_close(estimate, expected, rtol=1e-6, atol=1e-9)


def test_a_chunk_in_passes_of_a_few_steps_gives_the_tutorials_gradient(monkeypatch):
    """The gradient pass takes a chunk's steps FORWARD_PASS_ROWS at a time (a small net's activations
    then stay in the cache); the passes' sums add up to Eq. 23's gradient all the same."""
    passes = []

    def counted(states):
        cut = forward_passes(states)
        passes.append(len(cut))
        return cut

    forward_passes = gradients_module.forward_passes
    monkeypatch.setattr(gradients_module, "FORWARD_PASS_ROWS", 7)
    monkeypatch.setattr(gradients_module, "forward_passes", counted)
    config = Config(env="CartPole-v1", episodes=16, chunk_episodes=16, envs_per_chunk=5, backend="local", seed=11)
    policy = float64_policy(4)
    with Learner(config, policy=policy) as learner:
        estimate = learner.estimate_gradient()
    trajectories = recorded_trajectories(config, policy, draw=0)
    assert passes[0] > 16  # CartPole episodes of some 20 steps, 7 steps a pass: more passes than episodes
    torch.testing.assert_close(estimate, -reference_gradient(policy, trajectories, config.gamma), rtol=1e-6, atol=1e-9)
    assert len(forward_passes(torch.zeros(100_000, 4))) == 100_000 // 7 + 1
    monkeypatch.undo()
    assert len(gradients_module.forward_passes(torch.zeros(100_000, 4))) == 2  # 65,536 steps a pass by default


def test_tutorial_protocol_env_gradient_is_exact(backend):
    config = Config(env="envs.line:LineWalk", episodes=9, chunk_episodes=4, envs_per_chunk=3, workers=2,
                    backend=backend, seed=5)
    policy = float64_policy(1)
    with Learner(config, policy=policy) as learner:
        estimate = learner.estimate_gradient()
    expected = -reference_gradient(policy, recorded_trajectories(config, policy, draw=0), config.gamma)
    torch.testing.assert_close(estimate, expected, rtol=1e-6, atol=1e-9)


def test_every_worker_acts_with_the_new_theta_after_a_step(backend):
    """After step(), each chunk's episodes are those of the new theta, chunk by chunk."""
    config = Config(env="CartPole-v1", episodes=24, chunk_episodes=3, envs_per_chunk=3, workers=2,
                    backend=backend, lr=0.05)
    with Learner(config) as learner:
        old_theta = parameters_to_vector(learner.policy).clone()
        learner.step()
        new_theta = parameters_to_vector(learner.policy).clone()
        assert not torch.equal(old_theta, new_theta)
        gathered = learner.sample().sums  # batch 1, theta version 1
    worker = RolloutWorker(config.env, learner.policy, Estimator.of(config), config.envs_per_chunk)
    chunks = make_chunks(config.episodes, config.chunk_episodes, config.seed, draw=1)

    def total(theta):
        results = [worker.run(theta.numpy(), version, chunk) for version, chunk in
                   ((id(theta), chunk) for chunk in chunks)]
        return sum(r.gradient_sum for r in results)

    np.testing.assert_allclose(gathered.gradient_sum, total(new_theta), rtol=1e-5, atol=1e-6)
    assert not np.allclose(gathered.gradient_sum, total(old_theta), rtol=1e-3)
    assert gathered.version == 1


def test_a_stale_result_is_rejected(backend):
    config = Config(env="CartPole-v1", episodes=4, chunk_episodes=2, backend=backend, workers=1)
    with Learner(config) as learner:
        learner.step()
        old = RolloutWorker(config.env, learner.policy, Estimator.of(config), 2).run(
            parameters_to_vector(learner.policy).numpy(), 0, make_chunks(4, 2, 0, 0)[0]
        )
        with pytest.raises(StaleResultError, match="version 0"):
            learner.check_current(old)


@pytest.mark.parametrize("workers", [1, 2, 3, 8])
def test_one_seed_gives_one_theta_whatever_the_workers(backend, workers):
    """Chunks own their randomness: theta after several steps is the same for any worker count."""
    if backend == "local" and workers > 1:
        pytest.skip("the local backend has one worker")
    config = Config(env="CartPole-v1", episodes=40, chunk_episodes=6, envs_per_chunk=4, lr=0.02,
                    workers=workers, backend=backend, seed=3)
    with Learner(config) as learner:
        for _ in range(3):
            learner.step()
        theta = parameters_to_vector(learner.policy)
    with Learner(config.replace(backend="local")) as reference:
        for _ in range(3):
            reference.step()
    torch.testing.assert_close(theta, parameters_to_vector(reference.policy), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("value_epochs", [1, 4])
def test_normalised_observations_and_gae_give_one_theta_whatever_the_workers(borrowed_actors, value_epochs):
    """The normaliser's statistics come from the chunk sums alone: theta and the statistics are the
    same on 3 Ray workers as in one process (episodes cut at 40 steps: GAE bootstraps them); so are
    V's further rounds over the steps each worker holds."""
    config = Config(env="Pendulum-v1", episodes=12, chunk_episodes=2, envs_per_chunk=2, lr=0.01, workers=3,
                    backend="ray", seed=8, normalize_observations=True, returns="gae", baseline="value",
                    max_episode_steps=40, value_epochs=value_epochs)
    thetas = []
    for backend in ("ray", "local"):
        with Learner(config.replace(backend=backend)) as learner:
            for _ in range(3):
                learner.step()
            thetas.append(state_to_vector(learner.policy, learner.value))
    assert not torch.equal(thetas[0][-6:], torch.tensor([0.0, 0, 0, 1, 1, 1])), "the normaliser never moved"
    torch.testing.assert_close(thetas[0], thetas[1], rtol=1e-5, atol=1e-7)


RESUMED = [dict(), dict(normalize_observations=True, returns="gae", baseline="value"),
           dict(normalize_observations=True, returns="gae", baseline="value", value_epochs=3)]


@pytest.mark.parametrize("options", RESUMED, ids=["plain", "normalised-gae", "value-epochs"])
def test_state_dict_resumes_the_same_run(backend, options):
    config = Config(env="CartPole-v1", episodes=16, chunk_episodes=4, lr=0.02, backend=backend, workers=2, **options)
    with Learner(config) as straight:
        for _ in range(3):
            straight.step()
    with Learner(config) as first:
        first.step()
        state = first.state_dict()
    with Learner(config) as resumed:
        resumed.load_state_dict(state)
        for _ in range(2):
            resumed.step()
    torch.testing.assert_close(state_to_vector(resumed.policy, resumed.value), state_to_vector(straight.policy, straight.value))


def test_the_tutorials_policy_learns_the_line_walk():
    """Random actions score 10 of 20 on LineWalk; the tutorial's own Policy learns to do clearly better.

    On the local backend only: one seed gives one theta on every backend and worker count
    (test_one_seed_gives_one_theta_whatever_the_workers), so Ray would learn the same policy.
    """
    torch.manual_seed(0)
    config = Config(env="envs.line:LineWalk", episodes=64, lr=0.03, chunk_episodes=8, seed=1, backend="local")
    with Learner(config, policy=Policy(1, 2)) as learner:
        returns = [learner.step()["return_mean"] for _ in range(100)]
    assert returns[0] < 12.5
    assert np.mean(returns[-5:]) > 15.0


def test_a_batch_that_reaches_stop_return_is_the_last_and_keeps_its_theta(backend):
    """The policy kept is the one whose episodes reached stop_return, not one stepped past it."""
    config = Config(env="CartPole-v1", episodes=4, chunk_episodes=2, workers=2, backend=backend, lr=0.05)
    with Learner(config) as learner:
        assert not learner.step()["stopped"] and learner.version == 1
    with Learner(Config(**{**config.to_dict(), "stop_return": 0.0})) as learner:  # every batch reaches 0
        theta = parameters_to_vector(learner.policy).clone()
        [metrics] = train(learner)  # the loop, not the Learner, stops at stop_return
        assert metrics["stopped"]
        assert metrics["iteration"] == 1 and metrics["theta_version"] == 0 and learner.version == 0
        assert torch.equal(parameters_to_vector(learner.policy), theta)
        assert metrics["gradient_norm"] > 0

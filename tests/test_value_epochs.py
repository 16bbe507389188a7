"""value_epochs: V's further Adam steps per iteration, each a round of gradient sums over the chunks' held steps."""

import copy

import pytest
import torch

from pgdist import Config, ConfigError, Learner
from pgdist.backends import LocalBackend
from pgdist.estimators import Estimator, rewards_to_go
from pgdist.theta import parameters_to_vector
from pgdist.worker import RolloutWorker

CONFIG = Config(env="Pendulum-v1", episodes=9, chunk_episodes=2, envs_per_chunk=2, lr=0.01, value_lr=0.05,
                gamma=0.9, hidden=(16, 16), returns="reward_to_go", baseline="value", normalize_observations=True,
                max_episode_steps=30, backend="local", seed=2)


def batch_steps(learner: Learner, batch):
    """Every step's state and V target (G_t) of the batch's chunks, replayed by a worker of its own."""
    worker = RolloutWorker(CONFIG.env, learner.policy, Estimator.of(CONFIG), CONFIG.envs_per_chunk, learner.value,
                           max_episode_steps=CONFIG.max_episode_steps)
    worker.load(batch.theta, batch.sums.version)
    states, targets = [], []
    for chunk in batch.chunks:
        episodes = worker.rollout(chunk)
        states.append(episodes.states)
        targets.append(rewards_to_go(episodes.rewards, episodes.timestep, episodes.episode, episodes.count, CONFIG.gamma))
    return torch.cat(states), torch.cat(targets).to(torch.float32)


def test_each_epoch_is_an_adam_step_on_vs_mean_squared_error_over_the_batch():
    """value_epochs=4 is torch.optim.Adam's 4 steps on (1/steps) sum_t (V(s_t) - G_t)^2 over every step of
    the batch, at the iteration's observation normaliser; the policy's step is that of value_epochs=1."""
    config = CONFIG.replace(value_epochs=4)
    with Learner(config) as learner, Learner(CONFIG) as one_epoch:
        learner.step()
        batch = learner.sample()
        one_epoch.load_state_dict(learner.state_dict())
        one_epoch.update(batch)
        value = copy.deepcopy(learner.value)  # V and its normaliser before the update
        reference = torch.optim.Adam(value.parameters(), lr=config.value_lr)
        reference.load_state_dict({"state": {i - len(list(learner.policy.parameters())): s
                                             for i, s in learner.optimizer.state_dict()["state"].items()
                                             if i >= len(list(learner.policy.parameters()))},
                                   "param_groups": [{**reference.param_groups[0], "params": list(range(len(list(value.parameters()))))}]})
        states, targets = batch_steps(learner, batch)
        assert len(states) == batch.sums.steps
        for _ in range(config.value_epochs):
            reference.zero_grad()
            (((value(states).squeeze(-1) - targets) ** 2).sum() / len(states)).backward()
            reference.step()
        learner.update(batch)
        torch.testing.assert_close(parameters_to_vector(learner.value), parameters_to_vector(value), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(parameters_to_vector(learner.policy), parameters_to_vector(one_epoch.policy))
        assert not torch.allclose(parameters_to_vector(learner.value), parameters_to_vector(one_epoch.value))


class SampleOnly:
    """A backend of one's own from before value_epochs: it samples, and has no value_round."""

    workers = 1

    def __init__(self, config, policy, value):
        self.local = LocalBackend(config, policy, value)
        self.closed = False

    def sample(self, theta, version, chunks):
        return self.local.sample(theta, version, chunks)

    def live_workers(self):
        return 1

    def close(self):
        self.closed = True


def test_a_backend_without_value_rounds_is_named_and_closed():
    backends = []
    with pytest.raises(ConfigError, match="value_epochs=2 needs a backend with value_round .* SampleOnly has none"):
        Learner(CONFIG.replace(value_epochs=2), backend=lambda *args: backends.append(SampleOnly(*args)) or backends[-1])
    assert backends[0].closed
    with Learner(CONFIG, backend=SampleOnly) as learner:  # one epoch needs no rounds
        learner.step()


def test_a_worker_holds_the_steps_of_the_latest_sampling_call_only():
    """Sampling again at the same theta (estimate_gradient, say) replaces the held steps instead of adding to them."""
    with Learner(CONFIG.replace(value_epochs=2)) as learner:
        for _ in range(3):
            batch = learner.sample()
        held = learner.backend.worker.held
        assert set(held) == set(batch.chunks) and len(held) == 5
        learner.update(batch)

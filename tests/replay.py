"""Replay a worker's recorded episodes through the tutorial's own ``generate_tau``.

The replayed env returns the recorded states and rewards; the replayed policy is the
real policy whose ``sample()`` returns the recorded action, so ``generate_tau`` computes
ln pi exactly as the tutorial does, step by step with autograd, on the same trajectories.
"""

import torch

from pgdist.chunks import make_chunks
from pgdist.estimators import Estimator
from pgdist.layout import layout
from pgdist.policy import Policy
from pgdist.reference import generate_tau
from pgdist.theta import state_to_vector
from pgdist.worker import RolloutWorker


def float64_policy(observation_size, seed=0, policy_class=Policy):
    torch.manual_seed(seed)
    return policy_class(observation_size, 2 if policy_class is Policy else 1).double()


def recorded_trajectories(config, policy, draw, value=None):
    """The episodes of sampling call ``draw``, run again in this process from the chunks' own seeds."""
    cut = layout(config)
    worker = RolloutWorker(config.env, policy, Estimator.of(config), cut.envs_per_chunk, value,
                           max_episode_steps=config.max_episode_steps)
    worker.load(state_to_vector(policy, value).numpy(), 0)
    trajectories = []
    for chunk in make_chunks(config.episodes, cut.chunk_episodes, config.seed, draw):
        trajectories += split(worker.rollout(chunk))
    return trajectories


def split(episodes):
    """A chunk's flattened Episodes as a list of (states, actions, rewards) per episode."""
    trajectories = []
    for i in range(episodes.count):
        rows = (episodes.episode == i).nonzero().squeeze(-1)
        rows = rows[episodes.timestep[rows].argsort()]
        trajectories.append((episodes.states[rows], episodes.actions[rows], episodes.rewards[rows]))
    return trajectories


class ReplayEnv:
    def __init__(self, states, actions, rewards):
        self.states, self.actions, self.rewards = states, actions, rewards

    def reset(self):
        self.t = 0
        return self.states[0]

    def step(self, action):
        assert action == self.actions[self.t].item(), "the replayed policy took another action"
        self.t += 1
        done = self.t == len(self.actions)
        state = self.states[min(self.t, len(self.states) - 1)]
        return state, self.rewards[self.t - 1].item(), done


class ReplayPolicy:
    def __init__(self, policy, actions):
        self.policy, self.actions = policy, iter(actions)

    def __call__(self, state):
        distribution = self.policy(state)
        action = next(self.actions)
        distribution.sample = lambda: action.reshape(1)
        return distribution


def reference_gradient(policy, trajectories, gamma):
    """The gradient of the tutorial's loss (Eq. 23) over these trajectories, as a flat vector."""
    policy.zero_grad(set_to_none=True)
    loss = 0.0
    for states, actions, rewards in trajectories:
        sum_ln_pi, R = generate_tau(
            ReplayEnv(states, actions, rewards), ReplayPolicy(policy, actions), gamma, dtype=torch.float64
        )
        loss += -(R.detach() * sum_ln_pi)
    loss = loss / len(trajectories)
    loss.backward()
    return torch.cat([p.grad.reshape(-1) for p in policy.parameters()])

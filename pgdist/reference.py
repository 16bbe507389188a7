"""The tutorial's own single-process loop, kept as written: the reference for tests and benchmarks.

Per step it runs the policy with autograd on, then backpropagates the loss of Eq. 23
over all N trajectories. pgdist must give the same gradient on the same trajectories.
"""

from __future__ import annotations

import torch


def generate_tau(env, policy, gamma=0.95, dtype=torch.float32):
    """One trajectory: returns (sum_t ln pi(a_t|s_t), R(tau)) as the tutorial's code does.

    ``dtype`` is R's, float32 in the tutorial; tests comparing in float64 pass float64.
    """
    state = env.reset()
    ln_pi_list = []
    rewards = []
    done = False
    while not done:
        distribution = policy(state.unsqueeze(0))
        action = distribution.sample()
        ln_pi = distribution.log_prob(action)
        state, r, done = env.step(action.item())
        ln_pi_list.append(ln_pi)
        rewards.append(r)
    R = sum([(gamma**t) * r for t, r in enumerate(rewards)])
    R = torch.tensor(R, dtype=dtype)
    sum_ln_pi = torch.stack(ln_pi_list).sum()
    return sum_ln_pi, R


def reference_loss(env, policy, N=10, gamma=0.95):
    """Eq. 23 from N trajectories, built with per-step autograd as in the tutorial."""
    loss = 0.0
    for _ in range(0, N):
        sum_ln_pi, R = generate_tau(env, policy, gamma)
        loss += -(R.detach() * sum_ln_pi)
    return loss / N


def train(env, policy, n_episodes=1000, N=10, lr=1e-3, gamma=0.95):
    """The tutorial's training loop: Adam on Eq. 23, ``n_episodes`` times. Returns each loss."""
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    losses = []
    for _ in range(1, n_episodes + 1):
        optimizer.zero_grad()
        loss = reference_loss(env, policy, N, gamma)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses

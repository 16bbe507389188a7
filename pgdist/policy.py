"""The policy pi_theta(a|s): a torch module whose forward returns a torch.distributions object.

``Policy(1, 2)`` is the tutorial's own network, Linear(1,8)-Tanh-Linear(8,8)-Tanh-Linear(8,2)
with a Categorical over its logits, so that pi outputs the probability of each action
(Eq. 20-22).
"""

from __future__ import annotations

import torch
from gymnasium import spaces
from torch import nn
from torch.distributions import Categorical, Distribution


def mlp(sizes: list[int]) -> nn.Sequential:
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class Policy(nn.Module):
    """Categorical policy over the logits of a tanh MLP (the tutorial's ``Policy``)."""

    def __init__(self, observation_size: int, n_actions: int, hidden=(8, 8)):
        super().__init__()
        self.net = mlp([observation_size, *hidden, n_actions])

    def forward(self, state: torch.Tensor) -> Categorical:
        # A network's logits are always a valid parameter: skip torch's check, which
        # costs as much as the network itself at rollout batch sizes.
        return Categorical(logits=self.net(state), validate_args=False)


def make_policy(observation_size: int, action_space: spaces.Space, hidden, seed: int) -> nn.Module:
    """The default policy for an environment's spaces, its weights drawn from ``seed`` alone."""
    if not isinstance(action_space, spaces.Discrete):
        raise ValueError(f"pgdist's default policy needs a Discrete action space, not {action_space}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Policy(observation_size, int(action_space.n), hidden)


def sample(distribution: Distribution, generator: torch.Generator) -> torch.Tensor:
    """Draw actions from ``distribution`` with ``generator``, never torch's global stream.

    Categorical: the Gumbel-max trick, argmax_a (logit_a + G_a) with G_a = -ln E_a and
    E_a ~ Exp(1), an exact draw from softmax(logits) in a few batched operations.
    """
    if isinstance(distribution, Categorical):
        logits = distribution.logits
        exponential = torch.empty_like(logits).exponential_(generator=generator)
        return (logits - exponential.log()).argmax(-1)
    raise TypeError(f"pgdist cannot sample a {type(distribution).__name__} with its own generator")


def parameters_to_vector(policy: nn.Module) -> torch.Tensor:
    return torch.nn.utils.parameters_to_vector(policy.parameters()).detach()


def vector_to_parameters(theta: torch.Tensor, policy: nn.Module) -> None:
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(theta, policy.parameters())

"""The policy pi_theta(a|s): a torch module whose forward returns a torch.distributions object.

Discrete actions: ``Policy``, a Categorical over logits. Continuous (Box) actions:
``GaussianPolicy``. MultiDiscrete actions: ``MultiCategoricalPolicy``, one Categorical per
component. MultiBinary actions: ``BernoulliPolicy``, one Bernoulli per bit. Each takes the
flat float observation vector (``pgdist.envs.flat_batch``). ``ValueFunction`` is the
learned baseline V(s).

``Policy(1, 2)`` is the tutorial's own network, Linear(1,8)-Tanh-Linear(8,8)-Tanh-Linear(8,2)
with a Categorical over its logits, so that pi outputs the probability of each action
(Eq. 20-22).
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional
from torch.distributions import Bernoulli, Categorical, Distribution, Independent, Normal

from pgdist.convolution import ImagePolicy, ImageValueFunction, is_image
from pgdist.normalization import unwrapped
from pgdist.sampling import bernoulli, gaussian, inverse_cdf, policy_input, sample


def mlp_forward(net: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``net(x)`` for an ``mlp``, the same numbers without the module calls' overhead (the rollout's
    forward pass is a few hundred rows, where that overhead is most of its cost)."""
    for layer in net:
        if type(layer) is nn.Linear:
            x = functional.linear(x, layer.weight, layer.bias)
        elif type(layer) is nn.Tanh:
            x = torch.tanh(x)
        else:
            x = layer(x)
    return x


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

    def act(self, state: torch.Tensor, generator: torch.Generator, rows: torch.Tensor | None = None) -> torch.Tensor:
        """A sample of pi(.|state[rows]) with ``generator``: the same draw, bit for bit, as
        ``sample(self(state[rows]), generator, rows, len(state))``, without building the Categorical."""
        logits = mlp_forward(self.net, state if rows is None else state[rows])
        return inverse_cdf(logits - logits.logsumexp(-1, keepdim=True), generator, rows, len(state))


class GaussianPolicy(nn.Module):
    """Normal over continuous actions: mean from a tanh MLP, a learned log std per action dimension.

    The std does not depend on the state. ln pi is of the sampled action u; the worker clips
    actions to the action space's bounds only on the way into the environment, or, with
    ``bounds`` = (low, high), squashes them into it: low + (tanh(u) + 1) (high - low) / 2
    (``to_env``). The squashed action a has ln pi(a) = ln N(u) - sum ln |da/du|, whose second term
    does not depend on theta: its gradient, the estimator's, is that of ln N(u) either way.
    """

    def __init__(self, observation_size: int, action_size: int, hidden=(8, 8), log_std: float = 0.0,
                 bounds: tuple[np.ndarray, np.ndarray] | None = None):
        super().__init__()
        self.net = mlp([observation_size, *hidden, action_size])
        self.log_std = nn.Parameter(torch.full((action_size,), float(log_std)))
        self.squashed = bounds is not None
        low, high = (torch.as_tensor(np.asarray(bound, dtype=np.float64).reshape(-1)) for bound in bounds or ((), ()))
        self.register_buffer("low", low.float(), persistent=False)  # constants of the action space
        self.register_buffer("high", high.float(), persistent=False)

    def to_env(self, actions: torch.Tensor) -> torch.Tensor:
        """The sampled actions u as the env takes them: squashed into the bounds, or as they are (clipped later)."""
        if not self.squashed:
            return actions
        low, high = self.low.to(actions.dtype), self.high.to(actions.dtype)
        return low + (torch.tanh(actions) + 1) * (high - low) / 2

    def forward(self, state: torch.Tensor) -> Independent:
        mean = self.net(state)
        return Independent(Normal(mean, self.log_std.exp().expand_as(mean), validate_args=False), 1)

    def act(self, state: torch.Tensor, generator: torch.Generator, rows: torch.Tensor | None = None) -> torch.Tensor:
        """A sample of pi(.|state[rows]) with ``generator``: the same draw, bit for bit, as
        ``sample(self(state[rows]), generator, rows, len(state))``, without building the Normal."""
        mean = mlp_forward(self.net, state if rows is None else state[rows])
        return gaussian(mean, self.log_std.exp().expand_as(mean), generator, rows, len(state))


class MultiCategoricalPolicy(nn.Module):
    """Independent Categoricals, one per component of a MultiDiscrete action, from one tanh MLP.

    ln pi(a|s) = sum_k ln pi_k(a_k|s). Components with fewer choices than the largest have
    their missing logits at -inf (probability 0), so that one Independent(Categorical) over
    a (components, choices) grid holds them all.
    """

    def __init__(self, observation_size: int, choices, hidden=(8, 8)):
        super().__init__()
        choices = [int(n) for n in choices]
        self.net = mlp([observation_size, *hidden, sum(choices)])
        self.grid = (len(choices), max(choices))  # (components, choices)
        exists = (torch.arange(max(choices)) < torch.tensor(choices)[:, None]).reshape(-1)
        placement, missing = None, None
        if not exists.all():  # outputs @ placement puts each output in its cell, missing puts -inf in the rest
            placement = torch.eye(len(exists))[exists]
            missing = torch.zeros(len(exists)).masked_fill(~exists, float("-inf"))
        self.register_buffer("placement", placement, persistent=False)
        self.register_buffer("missing", missing, persistent=False)

    def logits(self, outputs: torch.Tensor) -> torch.Tensor:
        """The network's outputs on the (components, choices) grid, -inf where a component has no such choice."""
        if self.placement is not None:
            outputs = outputs @ self.placement + self.missing
        return outputs.reshape(-1, *self.grid)

    def forward(self, state: torch.Tensor) -> Independent:
        return Independent(Categorical(logits=self.logits(self.net(state)), validate_args=False), 1)

    def act(self, state: torch.Tensor, generator: torch.Generator, rows: torch.Tensor | None = None) -> torch.Tensor:
        """A sample of pi(.|state[rows]) with ``generator``, the same draw as ``sample`` (see ``Policy.act``)."""
        logits = self.logits(mlp_forward(self.net, state if rows is None else state[rows]))
        return inverse_cdf(logits - logits.logsumexp(-1, keepdim=True), generator, rows, len(state))


class Bits(Independent):
    """Independent Bernoullis, one per bit, whose mode at p = 1/2 is 0: torch's Bernoulli.mode is nan there."""

    @property
    def mode(self) -> torch.Tensor:
        return (self.base_dist.logits > 0).to(self.base_dist.logits.dtype)


class BernoulliPolicy(nn.Module):
    """Independent Bernoullis, one per bit of a MultiBinary action, their logits from a tanh MLP.

    ln pi(a|s) = sum_k ln pi_k(a_k|s). Actions are floats 0 and 1 (what Bernoulli.log_prob
    takes); the worker gives them to the env as the space's integers.
    """

    def __init__(self, observation_size: int, bits: int, hidden=(8, 8)):
        super().__init__()
        self.net = mlp([observation_size, *hidden, bits])

    def forward(self, state: torch.Tensor) -> Bits:
        return Bits(Bernoulli(logits=self.net(state), validate_args=False), 1)

    def act(self, state: torch.Tensor, generator: torch.Generator, rows: torch.Tensor | None = None) -> torch.Tensor:
        """A sample of pi(.|state[rows]) with ``generator``, the same draw as ``sample`` (see ``Policy.act``)."""
        logits = mlp_forward(self.net, state if rows is None else state[rows])
        return bernoulli(torch.sigmoid(logits), generator, rows, len(state))


class ValueFunction(nn.Module):
    """V(s), the learned baseline of REINFORCE with baseline: a tanh MLP with one output."""

    def __init__(self, observation_size: int, hidden=(8, 8)):
        super().__init__()
        self.net = mlp([observation_size, *hidden, 1])

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return self.net(state)


def make_policy(observation_shape: int | tuple[int, ...], action_space: spaces.Space, hidden, seed: int,
                log_std: float = 0.0, init: str = "default", bound_actions: str = "clip") -> nn.Module:
    """The default policy for an environment's spaces, its weights drawn from ``seed`` alone.

    ``observation_shape`` is what the policy receives per row: a vector's size (the tutorial's
    MLP of ``hidden`` units) or an image's shape (``convolution.ImagePolicy``). ``log_std``: a
    Gaussian policy's initial log std; ``init``: "default" (torch's) or "orthogonal" (``orthogonal``);
    ``bound_actions``: how a Gaussian policy's actions meet a Box's bounds, "clip" or "tanh" (``GaussianPolicy``).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        shape = _shape(observation_shape)
        if isinstance(action_space, (spaces.Discrete, spaces.Box)) and is_image(shape):
            return ImagePolicy(shape, action_space, log_std)
        size = int(np.prod(shape))
        if isinstance(action_space, spaces.Discrete):
            policy = Policy(size, int(action_space.n), hidden)
        elif isinstance(action_space, spaces.Box):
            bounds = (action_space.low, action_space.high) if bound_actions == "tanh" else None
            policy = GaussianPolicy(size, int(np.prod(action_space.shape)), hidden, log_std, bounds)
        elif isinstance(action_space, spaces.MultiDiscrete):
            policy = MultiCategoricalPolicy(size, action_space.nvec.reshape(-1), hidden)
        elif isinstance(action_space, spaces.MultiBinary):
            policy = BernoulliPolicy(size, int(np.prod(action_space.shape)), hidden)
        else:
            raise ValueError(f"pgdist's default policies take Discrete, Box, MultiDiscrete or MultiBinary actions, "
                             f"not {action_space}")
        if init == "orthogonal":
            orthogonal(policy.net, last_gain=0.01)
        return policy


def make_value_function(observation_shape: int | tuple[int, ...], hidden, seed: int, init: str = "default") -> nn.Module:
    """V(s) for observations of this shape (a vector's size or an image's shape), drawn from ``seed`` alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        if is_image(_shape(observation_shape)):
            return ImageValueFunction(_shape(observation_shape))
        value = ValueFunction(int(np.prod(observation_shape)), hidden)
        if init == "orthogonal":
            orthogonal(value.net, last_gain=1.0)
        return value


def orthogonal(net: nn.Sequential, last_gain: float) -> None:
    """Orthogonal weights and zero biases, gain sqrt(2) but for the last layer's ``last_gain`` (0.01 for a
    policy's outputs, 1 for V's): the initialisation of OpenAI Baselines' PPO, SB3's and CleanRL's."""
    linears = [layer for layer in net if isinstance(layer, nn.Linear)]
    for i, layer in enumerate(linears):
        nn.init.orthogonal_(layer.weight, gain=last_gain if i == len(linears) - 1 else np.sqrt(2))
        nn.init.zeros_(layer.bias)


def _shape(observation_shape: int | tuple[int, ...]) -> tuple[int, ...]:
    return (int(observation_shape),) if np.ndim(observation_shape) == 0 else tuple(observation_shape)


OWN_POLICIES = (Policy, GaussianPolicy, MultiCategoricalPolicy, BernoulliPolicy)


def env_action_map(policy: nn.Module):
    """From a lockstep's sampled actions (an array) to what the env takes, where the policy squashes them
    (its ``to_env``, behind a normaliser too); None where they go as they are."""
    inner = unwrapped(policy)
    if not getattr(inner, "squashed", False):
        return None
    return lambda actions: inner.to_env(torch.from_numpy(actions)).numpy()


def has_own_act(policy: nn.Module) -> bool:
    """Whether ``policy.act`` draws what ``sample(policy(states))`` draws: one of pgdist's own policies
    (its forward not overridden), or such a policy behind an observation normaliser."""
    inner = unwrapped(policy)
    return type(inner).forward in tuple(own.forward for own in OWN_POLICIES)


def actor(policy: nn.Module, generator: torch.Generator, greedy: bool = False):
    """The rollout's (states, rows) -> actions for those rows (default all): pi's mode if ``greedy``,
    else a sample drawn with ``generator`` (noise for every row of states, see ``sample``).

    pgdist's own policies (their forward not overridden) draw straight from their network's
    output (``act``); any other module goes through the distribution its forward returns.
    Both give the same actions from the same generator.
    """
    if greedy:
        return lambda states, rows=None: policy(states if rows is None else states[rows]).mode
    if has_own_act(policy):
        return lambda states, rows=None: policy.act(states, generator, rows)
    return lambda states, rows=None: sample(policy(states if rows is None else states[rows]), generator, rows, len(states))


class PolicyError(TypeError):
    """A policy pgdist cannot train; the message says what its forward pass must return."""


SAMPLED = ("a Categorical (Discrete actions), an Independent(Normal) (Box), an Independent(Categorical) "
           "(MultiDiscrete) or an Independent(Bernoulli) (MultiBinary)")


def check_policy(policy: nn.Module, observation: np.ndarray, action_space: spaces.Space, env_name: str) -> None:
    """A forward pass on the env's first observation: pi must return a distribution pgdist can sample.

    pgdist samples each chunk's actions with the chunk's own generator (``sample``), which
    it can do for the distributions it knows; anything else fails here, when the Learner is
    built, rather than deep inside a worker at the first rollout.
    """
    parameters = list(policy.parameters())
    if not parameters:
        raise PolicyError("the policy has no parameters for pgdist to train")
    states = policy_input(observation[np.newaxis], parameters[0].dtype)
    try:
        with torch.no_grad():
            distribution = policy(states)
    except Exception as error:
        raise PolicyError(
            f"the policy's forward pass on {env_name}'s first observation (shape {tuple(states.shape)}) raised "
            f"{type(error).__name__}: {' '.join(str(error).split())}"
        ) from None
    name = type(distribution).__name__
    if not isinstance(distribution, Distribution):
        raise PolicyError(f"the policy returned a {name}; its forward must return a torch.distributions object, {SAMPLED}")
    try:
        actions = sample(distribution, torch.Generator().manual_seed(0))
    except TypeError:
        raise PolicyError(f"the policy returned a {name}; pgdist samples {SAMPLED} with each chunk's own generator") from None
    expected = (1, *action_shape(action_space))
    if tuple(actions.shape) != expected:
        raise PolicyError(f"the policy's actions have shape {tuple(actions.shape)[1:]} for one observation; "
                          f"{env_name}'s action space {action_space} needs {expected[1:]}")


def action_shape(action_space: spaces.Space) -> tuple[int, ...]:
    """The shape of one action as a policy samples it: () for Discrete, else one number per component."""
    if isinstance(action_space, spaces.Discrete):
        return ()
    return (int(np.prod(action_space.shape)),)

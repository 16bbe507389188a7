"""From an environment's name to environments.

A name is a gymnasium id (``"CartPole-v1"``) or ``"module:Class"`` for a class in the
tutorial's protocol::

    reset() -> state                     # a torch tensor, numpy array or number
    step(action) -> (state, reward, done)

Such a class declares its actions with a class attribute ``n_actions`` (discrete) or
``action_space`` (a gymnasium space). If its ``reset`` accepts ``seed=``, pgdist passes
one at the first reset of a chunk; later resets continue the environment's own stream.

Workers step many copies in lockstep through ``make_vector_env``. Both kinds follow
gymnasium's next-step autoreset: the step after an episode's last one resets that copy
(its action is ignored, its reward is 0) and returns the new episode's first state.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from dataclasses import dataclass

import gymnasium
import numpy as np
import torch
from gymnasium import spaces


@dataclass(frozen=True)
class EnvSpaces:
    """What a policy needs to know of an environment."""

    observation_size: int
    action_space: spaces.Space


def load_env_class(name: str):
    """The class named by ``"module:Class"``, or None if the name is a gymnasium id."""
    module_name, colon, class_name = name.partition(":")
    if not colon or not class_name.isidentifier():
        return None
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"cannot import module {module_name!r} ({error})") from None
    env_class = getattr(module, class_name, None)
    if not inspect.isclass(env_class):
        if gymnasium.registry.get(name) is not None or hasattr(module, "register"):
            return None  # gymnasium's own "module:EnvId" form
        raise ValueError(f"module {module_name!r} has no class {class_name!r}")
    if not hasattr(env_class, "n_actions") and not hasattr(env_class, "action_space"):
        raise ValueError(
            f"{name} declares no actions: give the class an attribute n_actions (discrete) "
            "or action_space (a gymnasium space)"
        )
    return env_class


def check_env_name(name: str) -> None:
    """Raise ValueError if ``name`` is neither an importable class nor a gymnasium id."""
    if not isinstance(name, str) or not name:
        raise ValueError("expected a gymnasium id or 'module:Class'")
    if load_env_class(name) is None:
        try:
            gymnasium.spec(name)
        except gymnasium.error.Error as error:
            raise ValueError(f"gymnasium does not know it ({error})") from None


def env_spaces(name: str) -> EnvSpaces:
    env_class = load_env_class(name)
    if env_class is None:
        env = gymnasium.make(name)
        try:
            if not isinstance(env.observation_space, spaces.Box):
                raise ValueError(f"{name}: pgdist needs Box observations, not {env.observation_space}")
            return EnvSpaces(int(np.prod(env.observation_space.shape)), env.action_space)
        finally:
            env.close()
    state = env_class().reset()
    return EnvSpaces(_as_array(state).size, _action_space(env_class))


def make_env(name: str):
    """One environment in the tutorial's protocol, its states torch tensors (for the reference loop)."""
    env_class = load_env_class(name)
    return TutorialEnv(env_class()) if env_class else TutorialEnv(GymnasiumEnv(name))


def make_vector_env(name: str, num_envs: int):
    env_class = load_env_class(name)
    if env_class is not None:
        return ProtocolVectorEnv(env_class, num_envs)
    return GymnasiumVectorEnv(name, num_envs)


def import_root(name: str) -> str | None:
    """The folder a ``module:Class`` env's top package lives in, if it is not an installed package.

    Ray workers do not share the driver's working directory or ``sys.path``; the Ray
    backend ships this folder's package to them so that the class imports there too.
    """
    module_name = name.partition(":")[0]
    if load_env_class(name) is None:
        return None
    top = sys.modules[module_name.split(".")[0]]
    path = getattr(top, "__file__", None)
    if path is None or "site-packages" in path:
        return None
    return os.path.dirname(path) if os.path.basename(path) == "__init__.py" else path


def _action_space(env_class) -> spaces.Space:
    if hasattr(env_class, "action_space"):
        return env_class.action_space
    return spaces.Discrete(int(env_class.n_actions))


def _as_array(state) -> np.ndarray:
    if isinstance(state, torch.Tensor):
        state = state.detach().cpu().numpy()
    return np.asarray(state, dtype=np.float64).reshape(-1)


def _accepts_seed(method) -> bool:
    try:
        return "seed" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


class GymnasiumEnv:
    """A gymnasium env in the tutorial's protocol (done = terminated or truncated)."""

    def __init__(self, name: str):
        self.env = gymnasium.make(name)
        self.action_space = self.env.action_space

    def reset(self, seed: int | None = None):
        state, _ = self.env.reset(seed=seed)
        return state

    def step(self, action):
        state, reward, terminated, truncated, _ = self.env.step(action)
        return state, float(reward), bool(terminated or truncated)


class TutorialEnv:
    """States as float32 torch tensors, as the tutorial's ``generate_tau`` expects them."""

    def __init__(self, env):
        self.env = env
        self.seedable = _accepts_seed(env.reset)

    def reset(self, seed: int | None = None):
        state = self.env.reset(seed=seed) if self.seedable else self.env.reset()
        return torch.as_tensor(_as_array(state), dtype=torch.float32)

    def step(self, action):
        state, reward, done = self.env.step(action)
        return torch.as_tensor(_as_array(state), dtype=torch.float32), float(reward), bool(done)


def clip_to(action_space: spaces.Space, actions: np.ndarray) -> np.ndarray:
    """Continuous actions clipped to the space's bounds, on their way into the env only.

    The policy's ln pi is of the action it sampled; the clipping is part of the environment.
    """
    if isinstance(action_space, spaces.Box):
        return np.clip(actions, action_space.low, action_space.high).astype(action_space.dtype)
    return actions


class GymnasiumVectorEnv:
    """``gymnasium.make_vec``: the env's own vector implementation where it has one."""

    def __init__(self, name: str, num_envs: int):
        self.env = gymnasium.make_vec(name, num_envs=num_envs)
        self.num_envs = num_envs
        self.action_space = self.env.single_action_space

    def reset(self, seed: int) -> np.ndarray:
        states, _ = self.env.reset(seed=seed)
        return states.reshape(self.num_envs, -1)

    def step(self, actions: np.ndarray):
        states, rewards, terminated, truncated, _ = self.env.step(clip_to(self.action_space, actions))
        return states.reshape(self.num_envs, -1), rewards, terminated | truncated


class ProtocolVectorEnv:
    """A list of tutorial-protocol environments stepped in lockstep."""

    def __init__(self, env_class, num_envs: int):
        self.envs = [env_class() for _ in range(num_envs)]
        self.num_envs = num_envs
        self.seedable = _accepts_seed(self.envs[0].reset)
        self.action_space = _action_space(env_class)
        self.discrete = isinstance(self.action_space, spaces.Discrete)
        self.resetting = np.zeros(num_envs, dtype=bool)

    def reset(self, seed: int) -> np.ndarray:
        self.resetting[:] = False
        if self.seedable:
            return np.stack([_as_array(env.reset(seed=seed + i)) for i, env in enumerate(self.envs)])
        return np.stack([_as_array(env.reset()) for env in self.envs])

    def step(self, actions: np.ndarray):
        actions = clip_to(self.action_space, actions)
        states, rewards = [], np.zeros(self.num_envs)
        dones = np.zeros(self.num_envs, dtype=bool)
        for i, env in enumerate(self.envs):
            if self.resetting[i]:
                state = env.reset()
            else:
                action = actions[i].item() if self.discrete else actions[i]
                state, rewards[i], dones[i] = env.step(action)
            states.append(_as_array(state))
        self.resetting = dones.copy()
        return np.stack(states), rewards, dones

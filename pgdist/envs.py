"""From an environment's name to environments.

A name is a gymnasium id (``"CartPole-v1"``) or ``"module:Class"`` for a class in the
tutorial's protocol::

    reset() -> state                     # a torch tensor, numpy array or number
    step(action) -> (state, reward, done)

Such a class declares its actions with a class attribute ``n_actions`` (discrete) or
``action_space`` (a gymnasium space). If its ``reset`` accepts ``seed=``, pgdist passes
one at the first reset of a chunk; later resets continue the environment's own stream.

Workers step many copies in lockstep through ``pgdist.vector_envs``.

Every episode ends within ``max_episode_steps``: a gymnasium env's own TimeLimit by
default, else pgdist's cap (``DEFAULT_MAX_EPISODE_STEPS``), which cuts the episode there
(truncation). The estimate stays exact and unbiased for the capped MDP, whose episodes
are the first ``max_episode_steps`` steps of the env's. An env that cannot be used
(a space pgdist does not support, a package missing) or that misbehaves (raises, returns
NaN, changes its observation's shape) raises ``EnvError``, one line saying what and where.

Observations reach every policy as one flat float vector per copy: a Box's numbers, a
Discrete's one-hot, a MultiDiscrete's one-hot per component, a MultiBinary's bits, and a
Tuple or Dict of these concatenated, as gymnasium's ``spaces.flatten`` lays them out
(``flat_batch`` does it for a whole lockstep at once). Actions go into the env in the
space's own form (``env_actions``).
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium
import numpy as np
import torch
from gymnasium import spaces

from pgdist.config import DEFAULT_MAX_EPISODE_STEPS
from pgdist.convolution import is_image

FLAT_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
ACTION_SPACES = (spaces.Discrete, spaces.Box, spaces.MultiDiscrete, spaces.MultiBinary)


class EnvError(RuntimeError):
    """An environment that cannot be used, or that raised or returned what no policy can learn from.

    ``message`` is the one line to show; it survives a backend that wraps the error in its
    own (Ray's RayTaskError prints the worker's whole traceback as its ``str``).
    """

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class EnvSpaces:
    """What a policy needs to know of an environment."""

    observation_size: int
    action_space: spaces.Space
    observation: np.ndarray  # the env's first observation as a policy receives it: the Learner checks a policy on it

    @property
    def observation_shape(self) -> tuple[int, ...]:
        """What the policy receives per row: (size,) for a vector, an image's own shape."""
        return self.observation.shape


def load_env_class(name: str):
    """The class named by ``"module:Class"``, or None if the name is a gymnasium id."""
    module_name, colon, class_name = name.partition(":")
    if not colon or not class_name.isidentifier():
        return None
    module = _imported(module_name)
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
    """An EnvError naming ``name`` if it is neither an importable class nor a gymnasium id."""
    try:
        if load_env_class(name) is None:
            try:
                gymnasium_spec(name)
            except gymnasium.error.Error as error:
                raise ValueError(f"gymnasium does not know it ({error})") from None
    except ValueError as error:
        raise EnvError(f"env={name!r}: {error}") from None


def gymnasium_spec(name: str) -> gymnasium.envs.registration.EnvSpec:
    """gymnasium's spec of an id, importing the module of a ``"module:EnvId"`` first, as gymnasium.make does."""
    module_name, colon, env_id = name.rpartition(":")
    if colon:
        _imported(module_name)
    elif env_id.partition("/")[0] in PACKAGED_NAMESPACES:
        _register_namespace(env_id.partition("/")[0])
    return gymnasium.spec(env_id)


PACKAGED_NAMESPACES = {  # namespace: (the module that registers its ids, its function that does, pgdist's extra)
    "ALE": ("ale_py", None, "atari"),  # ale-py registers them when imported
    "MinAtar": ("minatar.gym", "register_envs", "minatar"),  # a plugin, which gymnasium >= 1.0 no longer loads
}


def _register_namespace(namespace: str) -> None:
    """Register the ids of a namespace that a package provides, or a ValueError saying what to install."""
    module_name, register, extra = PACKAGED_NAMESPACES[namespace]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ValueError(
            f'needs a package that is not installed: {namespace}/ ids need {module_name.split(".")[0]} '
            f'(pip install "pgdist[{extra}]")'
        ) from None
    if register and not any(env_id.startswith(f"{namespace}/") for env_id in gymnasium.registry):
        getattr(module, register)()


def _imported(module_name: str):
    """The module, or a ValueError: a name that is no module's, or a module whose own code failed."""
    try:
        return importlib.import_module(module_name)
    except Exception as error:
        raise ValueError(f"cannot import module {module_name!r} ({described(error)})") from None


def env_spaces(name: str) -> EnvSpaces:
    """The spaces of ``name``'s env, or an EnvError saying what pgdist does not support or what to install.

    The learner calls this before it starts any worker, so a bad env fails in the driver.
    """
    check_env_name(name)
    env_class = load_env_class(name)
    if env_class is not None:
        env = _created(name, env_class)
        state = as_flat_array(_called(name, "reset", env.reset))
        return EnvSpaces(state.size, _supported_actions(name, action_space_of(env_class)), state)
    if is_atari(name):
        return _vector_spaces(name)
    env = _created(name, gymnasium.make, name)
    try:
        observations = _supported_observations(name, env.observation_space)
        actions = _supported_actions(name, env.action_space)
        state, _ = _called(name, "reset", env.reset, seed=0)
        return EnvSpaces(spaces.flatdim(observations), actions, observed(observations, state))
    finally:
        env.close()


def _vector_spaces(name: str) -> EnvSpaces:
    """The spaces of an env whose vector implementation is all pgdist uses (ale-py's AtariVectorEnv,
    whose preprocessed frames are not its single env's): one copy of it, reset with seed 0."""
    env = _created(name, atari_vector_env, name, 1, None)
    try:
        actions = _supported_actions(name, env.single_action_space)
        states, _ = _called(name, "reset", env.reset, seed=0)
        state = observation_rows(env.single_observation_space)(states)[0]
        return EnvSpaces(state.size, actions, state)
    finally:
        env.close()


def observed(space: spaces.Space, state) -> np.ndarray:
    """One observation as the worker hands it to a policy: an image in its own shape and dtype,
    anything else flattened as ``flat_batch`` flattens it."""
    if is_image(space.shape):
        return np.asarray(state, dtype=space.dtype)
    return spaces.flatten(space, state).astype(np.float64)


def _supported_observations(name: str, space: spaces.Space) -> spaces.Space:
    """The observation space if pgdist can flatten it (``flat_batch``) or keep it as an image, else an EnvError."""
    if not _flattens(space):
        raise EnvError(
            f"env {name}: pgdist does not support {type(space).__name__} observations ({space}), only Box, "
            "Discrete, MultiDiscrete, MultiBinary, or a Tuple or Dict of these"
        )
    return space


def _flattens(space: spaces.Space) -> bool:
    if isinstance(space, spaces.Tuple):
        return all(_flattens(part) for part in space.spaces)
    if isinstance(space, spaces.Dict):
        return all(_flattens(part) for part in space.spaces.values())
    return isinstance(space, FLAT_SPACES)


def _supported_actions(name: str, action_space: spaces.Space) -> spaces.Space:
    """The action space if pgdist's policies can act in it, else an EnvError."""
    if not isinstance(action_space, ACTION_SPACES):
        raise EnvError(
            f"env {name}: pgdist does not support {type(action_space).__name__} actions ({action_space}), "
            "only Discrete, Box, MultiDiscrete or MultiBinary"
        )
    return action_space


def _created(name: str, make, *args):
    """``make(*args)``, its failure an EnvError saying what to install where a package is missing."""
    try:
        return make(*args)
    except (gymnasium.error.DependencyNotInstalled, ImportError) as error:
        raise EnvError(f"env {name} needs a package that is not installed: {_one_line(error)}") from error
    except Exception as error:
        raise EnvError(f"env {name}: creating it raised {described(error)}") from error


def _called(name: str, what: str, method, *args, **kwargs):
    try:
        return method(*args, **kwargs)
    except Exception as error:
        raise EnvError(f"env {name}: {what} raised {described(error)}") from error


def described(error: BaseException) -> str:
    return f"{type(error).__name__}: {_one_line(error)}"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def time_limit(name: str, max_episode_steps: int | None) -> tuple[int, bool]:
    """The episode length cap in force for ``name``, and whether it is pgdist's (not the env's own).

    A gymnasium env keeps its own TimeLimit unless ``max_episode_steps`` is given; an env
    without one (every tutorial-protocol env) is cut at ``DEFAULT_MAX_EPISODE_STEPS``.
    """
    if max_episode_steps is not None:
        return max_episode_steps, True
    if load_env_class(name) is None:
        own = gymnasium_spec(name).max_episode_steps
        if own is not None:
            return own, False
    return DEFAULT_MAX_EPISODE_STEPS, True


def make_env(name: str, max_episode_steps: int | None = None):
    """One environment in the tutorial's protocol, its states torch tensors (for the reference loop)."""
    env_class = load_env_class(name)
    cap, _ = time_limit(name, max_episode_steps)
    return TutorialEnv(env_class() if env_class else GymnasiumEnv(name, cap), cap)


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


def action_space_of(env_class) -> spaces.Space:
    if hasattr(env_class, "action_space"):
        return env_class.action_space
    return spaces.Discrete(int(env_class.n_actions))


def as_flat_array(state) -> np.ndarray:
    if isinstance(state, torch.Tensor):
        state = state.detach().cpu().numpy()
    return np.asarray(state, dtype=np.float64).reshape(-1)


def accepts_seed(method) -> bool:
    try:
        return "seed" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


class GymnasiumEnv:
    """A gymnasium env in the tutorial's protocol (done = terminated or truncated), its states flat
    as the workers' (``spaces.flatten``)."""

    def __init__(self, name: str, max_episode_steps: int | None = None):
        self.env = gymnasium.make(name, max_episode_steps=max_episode_steps)
        self.action_space = self.env.action_space

    def reset(self, seed: int | None = None):
        state, _ = self.env.reset(seed=seed)
        return spaces.flatten(self.env.observation_space, state)

    def step(self, action):
        state, reward, terminated, truncated, _ = self.env.step(action)
        return spaces.flatten(self.env.observation_space, state), float(reward), bool(terminated or truncated)


class TutorialEnv:
    """States as float32 torch tensors, as the tutorial's ``generate_tau`` expects them; episodes cut at the cap."""

    def __init__(self, env, max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS):
        self.env = env
        self.seedable = accepts_seed(env.reset)
        self.max_episode_steps = max_episode_steps
        self.elapsed = 0

    def reset(self, seed: int | None = None):
        self.elapsed = 0
        state = self.env.reset(seed=seed) if self.seedable else self.env.reset()
        return torch.as_tensor(as_flat_array(state), dtype=torch.float32)

    def step(self, action):
        state, reward, done = self.env.step(action)
        self.elapsed += 1
        done = bool(done) or self.elapsed >= self.max_episode_steps
        return torch.as_tensor(as_flat_array(state), dtype=torch.float32), float(reward), done


def env_actions(action_space: spaces.Space, actions: np.ndarray) -> np.ndarray:
    """A lockstep's actions (one row per copy, as the policy sampled them) in the space's own form.

    Box actions are clipped to the space's bounds on their way into the env only: the
    policy's ln pi is of the action it sampled, the clipping is part of the environment.
    A (Multi)Discrete policy picks choice k of a component, which is the space's ``start + k``;
    MultiBinary's Bernoulli samples (floats 0 and 1) become the space's integers.
    """
    if isinstance(action_space, spaces.Box):
        return np.clip(actions, action_space.low, action_space.high).astype(action_space.dtype)
    if isinstance(action_space, spaces.MultiDiscrete):
        return actions.reshape(len(actions), *action_space.shape) + action_space.start
    if isinstance(action_space, spaces.MultiBinary):
        return actions.astype(action_space.dtype).reshape(len(actions), *action_space.shape)
    if isinstance(action_space, spaces.Discrete) and action_space.start:
        return actions + action_space.start
    return actions


def observation_rows(space: spaces.Space) -> Callable[[object], np.ndarray]:
    """From a lockstep's observations to one row per copy: images as they come (their shape and
    dtype kept: uint8 frames stay uint8 until the policy's forward pass), anything else flat."""
    if is_image(space.shape):
        return lambda states: states
    return flat_batch(space)


def flat_batch(space: spaces.Space) -> Callable[[object], np.ndarray]:
    """From a lockstep's observations as a gymnasium vector env batches them, to one flat row per copy.

    Row i is ``spaces.flatten(space, observation_i)`` (a float32 for a one-hot or a bit), made
    for all copies at once with numpy indexing: a loop over the copies would cost more than
    the env's step.
    """
    if isinstance(space, spaces.Discrete):
        return lambda states: _one_hot(np.asarray(states).reshape(-1, 1) - space.start, np.array([0]), int(space.n))
    if isinstance(space, spaces.MultiDiscrete):
        sizes = space.nvec.reshape(-1)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        starts = space.start.reshape(-1)
        return lambda states: _one_hot(np.asarray(states).reshape(len(states), -1) - starts, offsets, int(sizes.sum()))
    if isinstance(space, spaces.MultiBinary):
        return lambda states: np.asarray(states, dtype=np.float32).reshape(len(states), -1)
    if isinstance(space, spaces.Tuple):
        parts = [flat_batch(part) for part in space.spaces]
        return lambda states: np.concatenate([flat(s) for flat, s in zip(parts, states)], axis=1)
    if isinstance(space, spaces.Dict):
        parts = {key: flat_batch(part) for key, part in space.spaces.items()}
        return lambda states: np.concatenate([flat(states[key]) for key, flat in parts.items()], axis=1)
    return lambda states: states.reshape(len(states), -1)


def _one_hot(indices: np.ndarray, offsets: np.ndarray, size: int) -> np.ndarray:
    """Rows of ``size`` zeros with a one at ``offsets[k] + indices[i, k]`` for each component k."""
    rows = np.zeros((len(indices), size), dtype=np.float32)
    rows[np.arange(len(indices))[:, None], offsets + indices] = 1.0
    return rows


ATARI_VECTOR_ENV = "ale_py.vector_env:AtariVectorEnv"
ATARI_THREADS = 1  # a worker owns one core (Ray gives each actor one CPU): ALE's threads would take others'


def is_atari(name: str) -> bool:
    """Whether ``name`` is an ale-py id (``ALE/Breakout-v5``), stepped through its AtariVectorEnv."""
    return load_env_class(name) is None and gymnasium_spec(name).vector_entry_point == ATARI_VECTOR_ENV


def atari_vector_env(name: str, num_envs: int, max_episode_steps: int | None):
    """ale-py's AtariVectorEnv: its own C++ preprocessing (grayscale, 84x84, max-pool over skipped
    frames, 4 frames stacked: uint8 (4, 84, 84) observations), frameskip 4, sticky actions 0.25 as the
    id registers them, rewards unclipped (the return is the game's score, the loss's R).

    One thread (``ATARI_THREADS``) and no pinning: each Ray worker owns one core and steps its chunk's
    copies there; pinned threads would all land on the same core offset in every worker. The copies
    are seeded seed, seed + 1, ... by ``reset(seed=...)``, each its own ALE: stepping them in one
    thread or many gives the same frames. ``max_episode_steps`` (pgdist's cap, in agent steps) becomes
    ALE's frame limit, frameskip frames a step.
    """
    spec = gymnasium_spec(name)
    options = {"num_threads": ATARI_THREADS, "thread_affinity_offset": -1, "reward_clipping": False}
    if max_episode_steps is not None:
        options["max_num_frames_per_episode"] = max_episode_steps * spec.kwargs.get("frameskip", 4)
    return gymnasium.make_vec(name, num_envs=num_envs, vectorization_mode="vector_entry_point", **options)

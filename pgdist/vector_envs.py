"""Many copies of an environment stepped in lockstep: what a rollout worker steps.

``make_vector_env`` gives gymnasium's own vector env for a gymnasium id (ale-py's AtariVectorEnv
for an ``ALE/`` id) and a list of copies for a tutorial-protocol class. Both kinds follow
gymnasium's next-step autoreset: the step after an episode's last one resets that copy (its
action is ignored, its reward is 0) and returns the new episode's first state. ``step`` returns
(states, rewards, terminated, truncated) as gymnasium does, ``truncated`` marking the episodes a time
limit cut (the env's own or pgdist's cap; ``capped``: whether the cap is pgdist's) and the states of
the copies that ended their episode being its final ones; an env that raises, or whose observation
changes shape, is an EnvError saying at which step.

Where the copies are separate envs (gymnasium's SyncVectorEnv, so MuJoCo, Box2D and a user's own
gymnasium env; tutorial-protocol classes), ``step(actions, active)`` steps only the ``active``
copies (``steps_copies_apart``): the others are neither stepped nor reset, and report their last
state, reward 0 and not done. Vector envs that step all their copies at once (CartPole's numpy
one, ale-py's) step every copy whatever ``active`` says. ``vector_env="envpool"`` steps a gymnasium
id's copies with EnvPool's C++ env of that id instead (``EnvPoolVectorEnv``).
"""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import concatenate, create_empty_array, iterate

from pgdist.config import DEFAULT_MAX_EPISODE_STEPS
from pgdist.envs import (
    EnvError,
    accepts_seed,
    action_space_of,
    as_flat_array,
    atari_vector_env,
    described,
    env_actions,
    gymnasium_spec,
    is_atari,
    load_env_class,
    observation_rows,
    time_limit,
)


def make_vector_env(name: str, num_envs: int, max_episode_steps: int | None = None, vector_env: str = "gymnasium"):
    """``num_envs`` copies of ``name``'s env in lockstep, each episode within its cap (``envs.time_limit``)."""
    env_class = load_env_class(name)
    cap, capped = time_limit(name, max_episode_steps)
    if env_class is not None:
        return ProtocolVectorEnv(env_class, num_envs, cap)
    if vector_env == "envpool":
        return EnvPoolVectorEnv(name, num_envs, cap if capped else None)
    return GymnasiumVectorEnv(name, num_envs, cap if capped else None)


def check_vector_env(name: str, vector_env: str) -> None:
    """An EnvError, before any worker starts, where ``vector_env`` cannot step ``name``'s env."""
    if vector_env != "envpool":
        return
    try:
        import envpool
    except ImportError:
        raise EnvError('vector_env=envpool needs EnvPool, which is not installed: pip install "pgdist[envpool]"') from None
    if load_env_class(name) is not None or name not in envpool.list_all_envs():
        raise EnvError(f"EnvPool has no env {name!r} (vector_env=envpool): it steps gymnasium ids it implements "
                       "itself, such as Hopper-v5 or HalfCheetah-v5; set vector_env: gymnasium")


def where_in_episode(step: int) -> str:
    """Where in an episode a step is: 0 is its reset, t >= 1 its t-th step."""
    return "at the reset of an episode" if step == 0 else f"at step {step} of an episode"


class CheckedEnv(gymnasium.Wrapper):
    """One copy of a gymnasium env in a SyncVectorEnv: what it raises, and an observation of another
    shape than its space's, become an EnvError saying at which step of its episode."""

    def __init__(self, env: gymnasium.Env):
        super().__init__(env)
        self.elapsed = 0

    def reset(self, **kwargs):
        self.elapsed = 0
        state, info = self._checked(self.env.reset, kwargs)
        return state, info

    def step(self, action):
        self.elapsed += 1
        return self._checked(self.env.step, action)

    def _checked(self, method, argument):
        try:
            outcome = method(**argument) if isinstance(argument, dict) else method(argument)
        except Exception as error:
            raise EnvError(f"{method.__name__} raised {described(error)} {where_in_episode(self.elapsed)}") from error
        expected = self.observation_space.shape  # None for a Tuple or Dict, which has no shape of its own
        if expected is not None and np.shape(outcome[0]) != expected:
            raise EnvError(
                f"observation has shape {np.shape(outcome[0])}, not its space's {expected}, "
                f"{where_in_episode(self.elapsed)}"
            )
        return outcome


class GymnasiumVectorEnv:
    """``gymnasium.make_vec``: the env's own vector implementation where it has one.

    ``max_episode_steps`` is pgdist's cap (gymnasium's TimeLimit), or None to keep the env's own.

    A SyncVectorEnv's copies are stepped here one by one, as its own ``step`` steps them (next-step
    autoreset, the same calls on each copy in the same order), so that ``active`` can leave some out.
    """

    def __init__(self, name: str, num_envs: int, max_episode_steps: int | None = None):
        self.seeds = 2**32  # reset seeds are taken modulo this
        self.copies = None  # the separate envs, where the vector env is a SyncVectorEnv
        if is_atari(name):
            self.env = atari_vector_env(name, num_envs, max_episode_steps)
            self.seeds = 2**31 - num_envs  # ALE seeds its copies seed, seed + 1, ... as C ints
        else:
            options = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
            if gymnasium_spec(name).vector_entry_point is None:
                options["wrappers"] = [CheckedEnv]  # its copies are separate envs: check each
            self.env = gymnasium.make_vec(name, num_envs=num_envs, **options)
            if isinstance(self.env, gymnasium.vector.SyncVectorEnv):
                self.copies = self.env.envs
        self.num_envs = num_envs
        self.action_space = self.env.single_action_space
        self.rows = observation_rows(self.env.single_observation_space)
        self.capped = max_episode_steps is not None
        self.steps_copies_apart = self.copies is not None
        if self.steps_copies_apart:
            self.resetting = np.zeros(num_envs, dtype=bool)  # its next step is an autoreset
            # each copy's last observation: a Box's as the rows of one array, rewritten where copies stepped;
            # any other space's in a list, batched at each step
            self.boxed = type(self.env.single_observation_space) is spaces.Box
            self.last = None

    def reset(self, seed: int) -> np.ndarray:
        states, _ = vector_call(self.env.reset, seed=seed % self.seeds)
        if self.steps_copies_apart:
            self.last = np.array(states) if self.boxed else list(iterate(self.env.observation_space, states))
            self.resetting[:] = False
        return self.rows(states)

    def step(self, actions: np.ndarray, active: np.ndarray | None = None):
        actions = env_actions(self.action_space, actions)
        if self.steps_copies_apart:
            return self._step_copies(actions, np.ones(self.num_envs, dtype=bool) if active is None else active)
        states, rewards, terminated, truncated, _ = vector_call(self.env.step, actions)
        return self._outcome(states, rewards, terminated, truncated)

    def _step_copies(self, actions, active: np.ndarray):
        """SyncVectorEnv's step for the ``active`` copies; the others keep their state and autoreset."""
        rewards = np.zeros(self.num_envs)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        copy_actions = list(iterate(self.env.action_space, actions))
        for i in np.flatnonzero(active):
            if self.resetting[i]:
                self.last[i], _ = vector_call(self.copies[i].reset)
            else:
                self.last[i], rewards[i], terminated[i], truncated[i], _ = vector_call(self.copies[i].step,
                                                                                        copy_actions[i])
        self.resetting = np.where(active, terminated | truncated, self.resetting)
        space = self.env.single_observation_space
        # new arrays: a chunk keeps each lockstep's states
        states = self.last.copy() if self.boxed else concatenate(space, self.last, create_empty_array(space, self.num_envs))
        return self._outcome(states, rewards, terminated, truncated)

    def _outcome(self, states, rewards: np.ndarray, terminated: np.ndarray, truncated: np.ndarray):
        return self.rows(states), rewards, terminated, truncated & ~terminated


def vector_call(method, *args, **kwargs):
    """A vector env's (or its copy's) method, what it raises as an EnvError naming the method."""
    try:
        return method(*args, **kwargs)
    except EnvError:
        raise
    except Exception as error:
        raise EnvError(f"{method.__name__} raised {described(error)}") from error


class EnvPoolVectorEnv:
    """EnvPool's C++ env of a gymnasium id, on one thread (a worker is one CPU), its copies stepped apart.

    EnvPool seeds its copies when the pool is made (copy i with seed + i), so each reset, a chunk's
    start, makes the pool anew with the chunk's seed: the chunk owns its randomness as with gymnasium.
    Its autoreset is next-step, as gymnasium's; ``step(actions, active)`` sends only the active copies
    (EnvPool's ``env_id``), and the others keep their last state. Its episodes are EnvPool's own
    (a reimplementation of the task), not gymnasium's step for step.
    """

    steps_copies_apart = True
    seeds = 2**31  # EnvPool's seed is a C int

    def __init__(self, name: str, num_envs: int, max_episode_steps: int | None = None):
        import envpool

        options = dict(num_envs=num_envs, batch_size=num_envs, num_threads=1,
                       **({} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}))
        self.make = lambda seed: envpool.make_gymnasium(name, seed=seed, **options)
        self.env = None  # the pool, made at each reset
        spec = envpool.make_spec(name, **options)  # the spaces, of a single copy, without making a pool
        self.num_envs = num_envs
        self.action_space = spec.gymnasium_action_space
        self.rows = observation_rows(spec.gymnasium_observation_space)
        self.capped = max_episode_steps is not None
        self.last = None  # each copy's last state, a batch
        self.every = np.arange(num_envs, dtype=np.int32)

    def reset(self, seed: int) -> np.ndarray:
        if self.env is not None:
            self.env.close()
        self.env = vector_call(self.make, seed % self.seeds)
        states, _ = vector_call(self.env.reset)
        self.last = np.array(states)
        return self.rows(self.last.copy())  # a chunk keeps each lockstep's states: never the array stepped into

    def step(self, actions: np.ndarray, active: np.ndarray | None = None):
        actions = env_actions(self.action_space, actions)
        ids = self.every if active is None else self.every[active]
        rewards = np.zeros(self.num_envs)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        if len(ids):
            states, step_rewards, step_terminated, step_truncated, info = vector_call(
                self.env.step, actions[ids], ids)
            stepped = info["env_id"]
            self.last[stepped] = states
            rewards[stepped], terminated[stepped], truncated[stepped] = step_rewards, step_terminated, step_truncated
        return self.rows(self.last.copy()), rewards, terminated, truncated & ~terminated


class ProtocolVectorEnv:
    """A list of tutorial-protocol environments stepped in lockstep, each episode cut at ``max_episode_steps``.

    ``step`` returns (states, rewards, terminated, truncated), ``truncated`` marking the episodes the cap cut.
    A copy that raises, or whose state changes size, is an EnvError saying at which step of its episode.
    """

    def __init__(self, env_class, num_envs: int, max_episode_steps: int = DEFAULT_MAX_EPISODE_STEPS):
        self.envs = [env_class() for _ in range(num_envs)]
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self.seedable = accepts_seed(self.envs[0].reset)
        self.action_space = action_space_of(env_class)
        self.discrete = isinstance(self.action_space, spaces.Discrete)
        self.resetting = np.zeros(num_envs, dtype=bool)
        self.elapsed = np.zeros(num_envs, dtype=np.int64)  # steps of each copy's episode so far
        self.observation_size = None  # the size of the first state: every later one must have it
        self.states = []  # each copy's last state

    def reset(self, seed: int) -> np.ndarray:
        self.resetting[:] = False
        self.elapsed[:] = 0
        seeds = [{"seed": seed + i} if self.seedable else {} for i in range(self.num_envs)]
        self.states = [self._state(i, self._call(i, "reset", **seeds[i])) for i in range(self.num_envs)]
        return np.stack(self.states)

    steps_copies_apart = True
    capped = True  # every episode within pgdist's cap: the protocol has no time limit of its own

    def step(self, actions: np.ndarray, active: np.ndarray | None = None):
        """Step the ``active`` copies (all by default); the others keep their last state and autoreset."""
        actions = env_actions(self.action_space, actions)
        active = np.ones(self.num_envs, dtype=bool) if active is None else active
        rewards = np.zeros(self.num_envs)
        dones = np.zeros(self.num_envs, dtype=bool)
        for i in np.flatnonzero(active):
            if self.resetting[i]:
                self.elapsed[i] = 0
                state = self._call(i, "reset")
            else:
                self.elapsed[i] += 1
                action = actions[i].item() if self.discrete else actions[i]
                state, rewards[i], dones[i] = self._call(i, "step", action)
            self.states[i] = self._state(i, state)
        truncated = active & ~dones & ~self.resetting & (self.elapsed >= self.max_episode_steps)
        self.resetting = np.where(active, dones | truncated, self.resetting)
        return np.stack(self.states), rewards, dones, truncated

    def _call(self, i: int, method: str, *args, **kwargs):
        try:
            return getattr(self.envs[i], method)(*args, **kwargs)
        except Exception as error:
            raise EnvError(f"{method} raised {described(error)} {where_in_episode(self.elapsed[i])}") from error

    def _state(self, i: int, state) -> np.ndarray:
        state = as_flat_array(state)
        if self.observation_size is None:
            self.observation_size = state.size
        elif state.size != self.observation_size:
            raise EnvError(
                f"observation has {state.size} numbers, not {self.observation_size} as before, "
                f"{where_in_episode(self.elapsed[i])}"
            )
        return state

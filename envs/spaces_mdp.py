"""Small stochastic MDPs with MultiDiscrete and MultiBinary actions, whose trajectories can all be enumerated.

gymnasium has no small env with these action spaces; the tests need some whose exact
J(theta) and grad J they can compute, as envs.mdp.ChainMDP gives for Discrete actions.
Importing this module registers them with gymnasium, so that
``envs.spaces_mdp:MultiDiscreteMDP-v0`` makes one in any process (Ray workers included).

Two hidden states; at most ``horizon`` steps. An action is a vector of numbers c (a
MultiDiscrete's values, start included, or a MultiBinary's bits). From state s it earns
WEIGHTS[s] . c; then the episode ends with probability END[sum(c) % 2], or goes on to the
state (s + sum(c)) % 2 with probability STAY and to the other state otherwise. The
observation shows the state through a composite space (a Dict, a Tuple), so that the
policy sees it as gymnasium's ``spaces.flatten`` lays it out.
"""

import itertools

import gymnasium
import numpy as np
from gymnasium import spaces

INITIAL = (0.6, 0.4)
WEIGHTS = ((1.0, -0.5, 0.3), (-0.8, 0.6, 0.4))
END = (0.3, 0.6)
STAY = 0.8


class SpacesMDP(gymnasium.Env):
    """The MDP of the module docstring; subclasses choose the observation and action spaces."""

    horizon = 2
    initial = INITIAL

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = int(self.np_random.choice(2, p=INITIAL))
        self.t = 0
        return self.observe(self.state), {}

    def step(self, action):
        outcomes = self.outcomes(self.state, action, self.t)
        _, next_state, reward = outcomes[self.np_random.choice(len(outcomes), p=[p for p, _, _ in outcomes])]
        self.t += 1
        if next_state is None:
            return self.observe(self.state), reward, True, False, {}
        self.state = next_state
        return self.observe(self.state), reward, False, False, {}

    @classmethod
    def outcomes(cls, state, action, t):
        """Every (probability, next state or None if the episode ends, reward) of taking ``action``."""
        numbers = np.asarray(action, dtype=np.float64).reshape(-1)
        reward = float(np.dot(WEIGHTS[state][: len(numbers)], numbers))
        if t + 1 >= cls.horizon:
            return [(1.0, None, reward)]
        total = int(numbers.sum())
        end = END[total % 2]
        moved = (state + total) % 2
        return [(end, None, reward), ((1.0 - end) * STAY, moved, reward), ((1.0 - end) * (1.0 - STAY), 1 - moved, reward)]


class MultiDiscreteMDP(SpacesMDP):
    """MultiDiscrete actions with uneven sizes and a start; the state observed as a Dict of a Discrete and a MultiBinary."""

    action_space = spaces.MultiDiscrete([2, 3], start=[0, -1])
    observation_space = spaces.Dict({"state": spaces.Discrete(2), "bits": spaces.MultiBinary(2)})

    @staticmethod
    def observe(state):
        return {"state": state, "bits": np.array([state, 1 - state], dtype=np.int8)}

    @classmethod
    def choices(cls):
        """Every action, as a policy samples it (each component's choice from 0) and as step takes it."""
        for picked in itertools.product(*(range(n) for n in cls.action_space.nvec)):
            yield np.array(picked), np.array(picked) + cls.action_space.start


class MultiBinaryMDP(SpacesMDP):
    """MultiBinary actions of 3 bits; the state observed as a Tuple of a Discrete (start 1) and a Box."""

    action_space = spaces.MultiBinary(3)
    observation_space = spaces.Tuple((spaces.Discrete(2, start=1), spaces.Box(-1.0, 1.0, shape=(1,))))

    @staticmethod
    def observe(state):
        return (state + 1, np.array([0.5 - state], dtype=np.float32))

    @classmethod
    def choices(cls):
        """Every action, as a policy samples it (floats 0 and 1) and as step takes it (integers)."""
        for bits in itertools.product((0, 1), repeat=3):
            yield np.array(bits, dtype=np.float64), np.array(bits, dtype=np.int8)


gymnasium.register("MultiDiscreteMDP-v0", entry_point=MultiDiscreteMDP)
gymnasium.register("MultiBinaryMDP-v0", entry_point=MultiBinaryMDP)

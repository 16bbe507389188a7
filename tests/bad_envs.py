"""Small environments that misbehave, one way each, for tests/test_bad_envs.py.

Tutorial-protocol classes (``tests.bad_envs:NanReward``) and gymnasium.Env classes that
this module registers when it is imported, so that ``tests.bad_envs:BadLine-nan_reward-v0``
makes them in any process (gymnasium's ``module:EnvId`` form), Ray workers included.
Each behaves like ``envs.line.LineWalk`` until its fault at step ``FAULT_STEP`` of an
episode, and notes every fault in ``FAULT_LOG`` so that a test can count the attempts.
"""

import hashlib
import os
import tempfile

import gymnasium
import numpy as np
import torch
from gymnasium import spaces

from envs.line import LineWalk
from envs.mdp import ChainMDP

FAULT_STEP = 7
FAULT_LOG = os.path.join(
    tempfile.gettempdir(), "pgdist-bad-envs-" + hashlib.sha1(__file__.encode()).hexdigest()[:8]
)  # one per checkout, shared by the test and the Ray workers it starts


def note_fault() -> None:
    with open(FAULT_LOG, "a") as log:
        log.write(f"{os.getpid()}\n")


def faults() -> int:
    try:
        with open(FAULT_LOG) as log:
            return len(log.readlines())
    except FileNotFoundError:
        return 0


class Faulty(LineWalk):
    """LineWalk with a fault at step FAULT_STEP of each episode, made by ``fault(state, reward)``."""

    def step(self, action):
        state, reward, done = super().step(action)
        if self.t == FAULT_STEP:
            note_fault()
            state, reward = self.fault(state, reward)
        return state, reward, done


class NanReward(Faulty):
    def fault(self, state, reward):
        return state, float("nan")


class InfiniteObservation(Faulty):
    def fault(self, state, reward):
        return torch.full_like(state, -float("inf")), reward  # -inf wherever the walk stands


class GrowingObservation(Faulty):
    def fault(self, state, reward):
        return np.array([float(state[0]), 0.0]), reward


class RaisingStep(Faulty):
    def fault(self, state, reward):
        raise RuntimeError("the simulator lost its state")


class RaisingReset(LineWalk):
    """Its first reset works (pgdist's probe of the spaces, a chunk's first episode); the next one raises."""

    def __init__(self):
        super().__init__()
        self.resets = 0

    def reset(self, seed=None):
        self.resets += 1
        if self.resets > 1:
            note_fault()
            raise OSError("cannot open the level file")
        return super().reset(seed)


class Endless(LineWalk):
    """LineWalk without its horizon: no episode ever ends on its own."""

    def step(self, action):
        state, reward, _ = super().step(action)
        return state, reward, False


class EndlessChainMDP(ChainMDP):
    """ChainMDP without its horizon: every step may end the episode or go on, as its first steps do.

    Cut at 3 steps it is ChainMDP itself: the capped MDP's trajectories have ChainMDP's distribution.
    """

    def step(self, action):
        outcomes = self.outcomes(self.state, action, 0)
        _, next_state, reward = outcomes[self.rng.choice(len(outcomes), p=[p for p, _, _ in outcomes])]
        self.t += 1
        if next_state is None:
            return self.observe(self.state), reward, True
        self.state = next_state
        return self.observe(self.state), reward, False


class TupleActions(LineWalk):
    action_space = spaces.Tuple((spaces.Discrete(2), spaces.Discrete(3)))


class TextActions(LineWalk):
    action_space = spaces.Text(4)


GYM_FAULTS = ("nan_reward", "inf_observation", "growing_observation", "raise")


class GymLine(gymnasium.Env):
    """LineWalk as a gymnasium.Env with a Box observation and one of GYM_FAULTS at step FAULT_STEP."""

    observation_space = spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float64)
    action_space = spaces.Discrete(2)

    def __init__(self, fault=None, endless=False):
        self.walk = LineWalk()
        self.fault = fault
        self.endless = endless

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.walk.reset(seed=int(self.np_random.integers(2**31))).numpy().astype(np.float64), {}

    def step(self, action):
        state, reward, done = self.walk.step(int(action))
        state = state.numpy().astype(np.float64)
        if self.walk.t == FAULT_STEP and self.fault:
            note_fault()
            if self.fault == "nan_reward":
                reward = float("nan")
            elif self.fault == "inf_observation":
                state = np.full_like(state, -np.inf)
            elif self.fault == "growing_observation":
                state = np.array([state[0], 0.0])
            elif self.fault == "raise":
                raise RuntimeError("the simulator lost its state")
        return state, reward, done and not self.endless, False, {}


class TextObservation(GymLine):
    observation_space = spaces.Text(5)


class SequenceObservation(GymLine):
    observation_space = spaces.Sequence(spaces.Box(-1.0, 1.0, shape=(2,)))


class GraphObservation(GymLine):
    observation_space = spaces.Graph(spaces.Box(-1.0, 1.0, shape=(2,)), spaces.Discrete(3))


class DictWithText(GymLine):
    observation_space = spaces.Dict({"x": spaces.Box(-np.inf, np.inf, shape=(1,)), "name": spaces.Text(5)})


# none with a TimeLimit: pgdist's cap is the only one
for fault in GYM_FAULTS:
    gymnasium.register(f"BadLine-{fault}-v0", entry_point=GymLine, kwargs={"fault": fault})
gymnasium.register("EndlessLine-v0", entry_point=GymLine, kwargs={"endless": True})
for unsupported in (TextObservation, SequenceObservation, GraphObservation, DictWithText):
    gymnasium.register(f"{unsupported.__name__}-v0", entry_point=unsupported)

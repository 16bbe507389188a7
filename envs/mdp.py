"""A small stochastic MDP whose trajectories can all be enumerated.

Two states, observed one-hot; two actions; at most three steps. From state s, action a
earns REWARD[s][a], then the episode ends with probability END[s][a], or moves to state
s' with probability (1 - END[s][a]) * NEXT[s][a][s']. The start state is drawn from
INITIAL. The exact J(theta) and its gradient follow from ``outcomes`` (Eq. 7, 13, 17);
the tests compare pgdist's Monte Carlo estimate against them.
"""

import numpy as np

INITIAL = (0.7, 0.3)
REWARD = ((1.0, 0.0), (-0.5, 2.0))
END = ((0.2, 0.5), (0.4, 0.1))
NEXT = (((0.3, 0.7), (0.8, 0.2)), ((0.5, 0.5), (0.1, 0.9)))


class ChainMDP:
    n_actions = 2
    horizon = 3
    initial = INITIAL

    def __init__(self):
        self.rng = np.random.default_rng()
        self.state = 0
        self.t = 0

    @staticmethod
    def observe(state):
        return np.eye(2)[state]

    @staticmethod
    def choices():
        """Every action, as a policy samples it and as step takes it (the same here)."""
        return [(action, action) for action in range(ChainMDP.n_actions)]

    @staticmethod
    def outcomes(state, action, t):
        """Every (probability, next state or None if the episode ends, reward) of taking ``action``."""
        reward = REWARD[state][action]
        if t + 1 >= ChainMDP.horizon:
            return [(1.0, None, reward)]
        end = END[state][action]
        return [(end, None, reward)] + [
            ((1.0 - end) * p, s, reward) for s, p in enumerate(NEXT[state][action])
        ]

    def reset(self, seed=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.state = int(self.rng.choice(2, p=INITIAL))
        self.t = 0
        return self.observe(self.state)

    def step(self, action):
        outcomes = self.outcomes(self.state, action, self.t)
        probabilities = [p for p, _, _ in outcomes]
        _, next_state, reward = outcomes[self.rng.choice(len(outcomes), p=probabilities)]
        self.t += 1
        if next_state is None:
            return self.observe(self.state), reward, True
        self.state = next_state
        return self.observe(self.state), reward, False

"""A one-step continuous bandit whose J(theta) and grad J are known in closed form.

The state s is -1 or +1, equally likely, observed as one number. The action a is a real
number; the reward is -(a - 0.5 s)^2 and the episode ends. For a Gaussian policy with mean
mu(s) and std sigma, J = E_s[-(mu(s) - 0.5 s)^2 - sigma^2]; the tests differentiate that.
"""

import numpy as np
from gymnasium import spaces

TARGET_SLOPE = 0.5


class TargetBandit:
    action_space = spaces.Box(-10.0, 10.0, shape=(1,), dtype=np.float64)

    def __init__(self):
        self.rng = np.random.default_rng()
        self.state = 1.0

    def reset(self, seed=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.state = float(self.rng.choice((-1.0, 1.0)))
        return np.array([self.state])

    def step(self, action):
        reward = -float((np.asarray(action).reshape(-1)[0] - TARGET_SLOPE * self.state) ** 2)
        return np.array([self.state]), reward, True

"""A walker on a line: the tutorial's setting of a one-element state and two actions.

The state is the walker's position x, started uniformly in [-1, 1]. Action 0 steps
left by 0.1, action 1 steps right. A step toward the origin (left when x > 0, right
when x <= 0) earns reward 1, a step away earns 0. An episode lasts 20 steps, so a
random policy scores 10 on average and the best policy 20. The tutorial's ``Policy``
(Linear(1, 8) ... Linear(8, 2)) learns it unchanged.
"""

import numpy as np
import torch


class LineWalk:
    n_actions = 2
    horizon = 20
    step_size = 0.1

    def __init__(self):
        self.rng = np.random.default_rng()
        self.x = 0.0
        self.t = 0

    def reset(self, seed=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.x = float(self.rng.uniform(-1.0, 1.0))
        self.t = 0
        return torch.tensor([self.x])

    def step(self, action):
        toward_origin = 0 if self.x > 0 else 1
        reward = 1.0 if action == toward_origin else 0.0
        self.x += self.step_size if action == 1 else -self.step_size
        self.t += 1
        return torch.tensor([self.x]), reward, self.t >= self.horizon

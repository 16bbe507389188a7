"""Tiny image environments for the convolutional policy, no extra needed.

A dark uint8 image with one bright pixel in its left or right half; the reward is 1 for the
action naming that half (Discrete), or -(a - side)^2 with side = -1 or +1 (Box). Episodes
last ``STEPS`` steps. Importing this module registers the ids, so that
``tests.image_envs:SideImage-v0`` names one (gymnasium's "module:EnvId" form).
"""

import gymnasium
import numpy as np
from gymnasium import spaces

STEPS = 4


class SideImage(gymnasium.Env):
    def __init__(self, shape=(10, 10, 1), continuous=False):
        self.observation_space = spaces.Box(0, 255, shape=shape, dtype=np.uint8)
        self.action_space = spaces.Box(-1, 1, shape=(1,)) if continuous else spaces.Discrete(2)
        self.continuous = continuous
        self.channels_last = int(np.argmin(shape)) == 2

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._drawn(), {}

    def step(self, action):
        if self.continuous:
            reward = -float((np.asarray(action).item() - (2 * self.side - 1)) ** 2)
        else:
            reward = float(int(action) == self.side)
        self.t += 1
        return self._drawn(), reward, self.t >= STEPS, False, {}

    def _drawn(self) -> np.ndarray:
        """A new image: the bright pixel somewhere in a random half (``self.side``: 0 left, 1 right)."""
        image = np.zeros(self.observation_space.shape, dtype=np.uint8)
        height, width = image.shape[:2] if self.channels_last else image.shape[1:]
        self.side = int(self.np_random.integers(2))
        row = int(self.np_random.integers(height))
        column = int(self.np_random.integers(width // 2)) + self.side * (width // 2)
        if self.channels_last:
            image[row, column, :] = 255
        else:
            image[:, row, column] = 255
        return image


gymnasium.register("SideImage-v0", entry_point=SideImage)  # (10, 10, 1): channels last, MinAtar's trunk
gymnasium.register("SideImageWide-v0", entry_point=SideImage, kwargs={"shape": (2, 36, 36)})  # the Atari trunk
gymnasium.register("SideImageBox-v0", entry_point=SideImage, kwargs={"continuous": True})

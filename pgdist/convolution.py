"""pi_theta(a|s) and V(s) for image observations: a small convolutional network, then the heads of policy.py.

An image is a Box observation of rank 3, channels first (C, H, W) or last (H, W, C), whichever
dimension is smallest. uint8 frames reach the network as they are stored (a quarter of
float32's memory for a chunk's steps) and are scaled to [0, 1] by 1/255 in its forward pass.

The trunk follows the DQN papers, sized for a CPU core:
- images of 36 pixels a side or more: the network of Mnih et al. 2013 (conv 16 8x8 stride 4,
  conv 32 4x4 stride 2, 256 units): NatureCNN's shape (Mnih et al. 2015) at half its
  multiply-adds (3.1M against 6.9M per 84x84x4 frame), which rollout and backward both pay;
- smaller images (MinAtar's 10x10, the tests'): MinAtar's own network (Young & Tian 2019,
  one conv 16 3x3, 128 units), since an 8x8 stride-4 kernel does not fit them.
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.distributions import Categorical, Independent, Normal

SMALLEST_ATARI_SIDE = 36  # the 8x8/4 then 4x4/2 convolutions leave 3x3 of a 36x36 image


def is_image(shape: tuple[int, ...] | None) -> bool:
    """Whether observations of this shape are images (kept in their shape, not flattened); a
    Tuple or Dict space has no shape."""
    return shape is not None and len(shape) == 3


def channels_last(shape: tuple[int, ...]) -> bool:
    """(H, W, C) rather than (C, H, W): the channels are the smallest dimension, as in SB3's rule."""
    return int(np.argmin(shape)) == 2


def scaled(states: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """A batch of images as the network's input: channels first, uint8 scaled by 1/255, in ``dtype``."""
    images = states.to(dtype)
    if states.dtype == torch.uint8:
        images = images / 255
    return images.permute(0, 3, 1, 2) if channels_last(shape) else images


def trunk(shape: tuple[int, ...]) -> tuple[nn.Sequential, int]:
    """The convolutional layers and one hidden layer for images of ``shape``; its output width."""
    channels, height, width = (shape[2], shape[0], shape[1]) if channels_last(shape) else shape
    if min(height, width) >= SMALLEST_ATARI_SIDE:
        convolutions = [nn.Conv2d(channels, 16, 8, stride=4), nn.ReLU(), nn.Conv2d(16, 32, 4, stride=2), nn.ReLU()]
        hidden = 256
    else:
        convolutions = [nn.Conv2d(channels, 16, 3), nn.ReLU()]
        hidden = 128
    features = nn.Sequential(*convolutions, nn.Flatten())
    with torch.no_grad():
        size = features(torch.zeros(1, channels, height, width)).shape[1]
    return nn.Sequential(*convolutions, nn.Flatten(), nn.Linear(size, hidden), nn.ReLU()), hidden


class ImagePolicy(nn.Module):
    """A Categorical over logits (Discrete actions) or a Normal with a learned log std per action
    dimension (Box actions), from the convolutional trunk's features.

    The last layer starts at 1/100 of torch's default weights, so that pi starts near uniform
    (near the std of 1 for Box actions) whatever the images look like.
    """

    def __init__(self, shape: tuple[int, ...], action_space: spaces.Space, log_std: float = 0.0):
        super().__init__()
        self.shape = tuple(shape)
        self.trunk, hidden = trunk(self.shape)
        discrete = isinstance(action_space, spaces.Discrete)
        outputs = int(action_space.n) if discrete else int(np.prod(action_space.shape))
        self.head = nn.Linear(hidden, outputs)
        with torch.no_grad():
            self.head.weight.mul_(0.01)
            self.head.bias.zero_()
        self.log_std = None if discrete else nn.Parameter(torch.full((outputs,), float(log_std)))

    def forward(self, states: torch.Tensor) -> Categorical | Independent:
        output = self.head(self.trunk(scaled(states, self.shape, self.head.weight.dtype)))
        if self.log_std is None:
            return Categorical(logits=output, validate_args=False)
        return Independent(Normal(output, self.log_std.exp().expand_as(output), validate_args=False), 1)


class ImageValueFunction(nn.Module):
    """V(s) of an image: the convolutional trunk and one output."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)
        self.trunk, hidden = trunk(self.shape)
        self.head = nn.Linear(hidden, 1)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(scaled(states, self.shape, self.head.weight.dtype)))

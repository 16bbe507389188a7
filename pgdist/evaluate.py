"""Evaluation: run a policy for some episodes in this process and return each episode's return."""

from __future__ import annotations

import numpy as np
import torch

from pgdist.backends import one_torch_thread
from pgdist.chunks import Chunk
from pgdist.config import Config
from pgdist.estimators import Estimator
from pgdist.layout import MAX_ENVS
from pgdist.theta import state_to_vector
from pgdist.worker import RolloutWorker


def evaluate(config: Config, policy: torch.nn.Module, episodes: int, greedy: bool = False, seed: int = 12345) -> np.ndarray:
    """Undiscounted returns of ``episodes`` episodes, actions sampled from pi or, if ``greedy``, its mode.

    One copy of the env per episode (up to MAX_ENVS) unless envs_per_chunk says otherwise: an
    evaluation waits for its episodes, not for a throughput. It keeps the rewards, not the states
    (100 Atari episodes would hold gigabytes of frames).
    """
    width = min(config.envs_per_chunk or MAX_ENVS, episodes)
    worker = RolloutWorker(config.env, policy, Estimator.of(config), width, greedy=greedy,
                           max_episode_steps=config.max_episode_steps, keep_states=False)
    worker.load(state_to_vector(policy).numpy(), version=0)
    with one_torch_thread():
        trajectories = worker.rollout(Chunk(index=0, start=0, episodes=episodes, seed=seed, draw=0))
    return trajectories.undiscounted_returns().numpy()

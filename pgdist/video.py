"""A video of a policy acting: ``pgdist eval RUN --video FILE``.

A few episodes of one copy of the environment, rendered with gymnasium's ``rgb_array``
mode, written as one file (its format from the name: .mp4, .gif, ...) by moviepy, the
library gymnasium's own RecordVideo writes with. Actions are sampled from pi with a
seeded generator, as in evaluation; ``greedy`` takes the most probable one.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium
import numpy as np
import torch
from gymnasium import spaces

from pgdist.envs import env_actions, load_env_class
from pgdist.policy import actor, env_action_map


class VideoError(Exception):
    """A video that cannot be made here; the message says why and what to install."""


def record_video(env_name: str, policy: torch.nn.Module, path: Path, episodes: int = 3,
                 greedy: bool = False, seed: int = 12345) -> tuple[Path, list[float]]:
    """Render ``episodes`` episodes of ``policy`` into ``path``; returns the path and each episode's return."""
    try:
        from moviepy import ImageSequenceClip
    except ImportError:
        raise VideoError("videos need the video extra: pip install 'pgdist[video]'") from None
    if load_env_class(env_name) is not None:
        raise VideoError(f"{env_name} is a tutorial-protocol class, which has no rgb_array rendering; "
                         "videos are made of gymnasium environments")
    env = gymnasium.make(env_name, render_mode="rgb_array")
    if "rgb_array" not in env.metadata.get("render_modes", []):
        env.close()
        raise VideoError(f"{env_name} cannot render rgb_array frames (its modes: {env.metadata.get('render_modes')})")
    act = actor(policy, torch.Generator().manual_seed(seed), greedy)  # as the rollout worker acts
    to_env = env_action_map(policy)
    dtype = next(policy.parameters()).dtype
    frames, returns = [], []
    try:
        for episode in range(episodes):
            state, _ = env.reset(seed=seed + episode)
            frames.append(_render(env, env_name))
            done, score = False, 0.0
            while not done:
                with torch.no_grad():
                    action = act(torch.as_tensor(spaces.flatten(env.observation_space, state), dtype=dtype).reshape(1, -1))
                action = env_actions(env.action_space, action.numpy() if to_env is None else to_env(action.numpy()))[0]
                state, reward, terminated, truncated, _ = env.step(action if action.ndim else action.item())
                score += float(reward)
                done = terminated or truncated
                frames.append(_render(env, env_name))
            returns.append(score)
        fps = env.metadata.get("render_fps") or 30
    finally:
        env.close()
    clip = ImageSequenceClip(frames, fps=fps)
    if Path(path).suffix == ".gif":
        clip.write_gif(str(path), logger=None)
    else:
        clip.write_videofile(str(path), logger=None)
    return Path(path), returns


def _render(env, env_name: str) -> np.ndarray:
    try:
        return env.render()
    except gymnasium.error.DependencyNotInstalled as error:
        raise VideoError(f"{env_name} cannot render here: {error}") from None

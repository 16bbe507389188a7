"""How an iteration's N episodes are laid out: chunks of how many episodes, on how many env copies.

The layout is a pure function of the configuration (N, the env's episode cap, and the
overrides ``chunk_episodes``/``envs_per_chunk``), never of the workers: chunks own their
randomness, so one seed gives one theta for any number of workers only if every run cuts N
the same way (DESIGN.md, "Chunks own their randomness").

The rule, derived from a sweep on 2 cores (docs/benchmarks.md, "Defaults that scale"):

- A lockstep of the vector env and the policy costs a fixed part ``a`` plus a part ``b`` per
  copy, so a worker is fastest on few, large chunks: up to MAX_CHUNK episodes a chunk gets
  faster per step as it grows (the fixed part is shared by more copies).
- N is cut into equal chunks of at most MAX_CHUNK episodes, and into FEW_CHUNKS where N allows
  chunks of MIN_CHUNK episodes or more: on 2 workers, 2 chunks of N/2 beat 4 of N/4 by 15-45%
  at every N measured, as a chunk's steps get cheaper the larger it is. So large N leaves
  N / MAX_CHUNK chunks, enough for that many workers; smaller N makes 2 chunks, and more workers
  than chunks are told how to feed them (``Learner.tell_idle_workers``).
- A chunk waits for its last kept episode while its other copies run episodes it drops; a
  chunk of E episodes on W copies takes about (E/W)(L+1) + T locksteps (L the mean episode
  length, T the tail), each costing a + bW, least at W = sqrt((L+1) a E / (T b)): the copies
  grow as the square root of the chunk, ``COPIES_PER_ROOT`` * sqrt(E), at most MAX_ENVS.
- A worker holds its chunk's steps until the gradient pass: at most MAX_CHUNK_STEPS steps
  (chunk episodes times the env's episode cap), so a worker's memory is bounded by its chunk,
  whatever N.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pgdist.config import Config
from pgdist.envs import time_limit

FEW_CHUNKS = 2
MIN_CHUNK = 500
MAX_CHUNK = 16384
COPIES_PER_ROOT = 32
MAX_ENVS = 4096
MAX_CHUNK_STEPS = 2**23  # about 8 million steps of a chunk held at once


@dataclass(frozen=True)
class Layout:
    chunk_episodes: int  # episodes per chunk (the last chunk of N may have fewer)
    envs_per_chunk: int  # env copies a worker steps in lockstep for a chunk

    def chunks(self, episodes: int) -> int:
        return -(-episodes // self.chunk_episodes)


def layout(config: Config) -> Layout:
    """The configuration's layout: its overrides where set, else the rule's choice for its N and env."""
    cap, _ = time_limit(config.env, config.max_episode_steps)
    chunk_episodes = config.chunk_episodes or rule_chunk_episodes(config.episodes, cap, config.episodes_max is not None)
    return Layout(chunk_episodes, config.envs_per_chunk or rule_envs_per_chunk(chunk_episodes))


def rule_chunk_episodes(episodes: int, episode_cap: int, adaptive: bool = False) -> int:
    """N in equal chunks: N / MAX_CHUNK of them (fewer episodes where the cap would hold more than
    MAX_CHUNK_STEPS steps), or FEW_CHUNKS where N allows MIN_CHUNK episodes each, or fewer.

    Adaptive N (``adaptive``) measures the noise scale from two chunks or more.
    """
    largest = max(1, min(MAX_CHUNK, MAX_CHUNK_STEPS // episode_cap))
    few = min(FEW_CHUNKS, 1 << (max(1, episodes // MIN_CHUNK).bit_length() - 1))  # a power of two
    chunks = max(-(-episodes // largest), few, 2 if adaptive else 1)
    return -(-episodes // min(chunks, episodes))


def rule_envs_per_chunk(chunk_episodes: int) -> int:
    """COPIES_PER_ROOT * sqrt(chunk_episodes), at most one per episode and MAX_ENVS."""
    return min(chunk_episodes, MAX_ENVS, math.ceil(COPIES_PER_ROOT * math.sqrt(chunk_episodes)))

"""Backends hand a batch's chunks to rollout workers and yield their results as they finish.

Both have the same verbs: ``sample(theta, version, chunks)``, ``live_workers()`` and
``close()``, and, for ``value_epochs`` > 1, ``value_round(theta, version, value_theta,
chunks)``. The local backend runs one worker in this process, with no Ray at all;
``pgdist.ray.RayBackend`` runs workers as Ray actors (``pgdist.ray`` is the one package
that imports ray).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from pgdist.chunks import Chunk, ChunkResult, ValueGradient
from pgdist.config import Config
from pgdist.estimators import Estimator
from pgdist.layout import layout
from pgdist.worker import RolloutWorker


class ClusterError(ConnectionError):
    """A Ray cluster that cannot be reached or joined; the message says what to check."""


class WorkerError(ClusterError):
    """The workers cannot finish a batch: none is left or comes back, or a chunk ends or hangs
    every worker that runs it. The message names the chunk and the iteration where there is one."""


class LocalBackend:
    """One rollout worker in the driver's process.

    A chunk here is never timed out (``chunk_timeout``): a Python call that hangs in an
    environment's ``step`` cannot be interrupted from its own process and leave it sound.
    """

    workers = 1

    def __init__(self, config: Config, policy: torch.nn.Module, value: torch.nn.Module | None):
        self.worker = RolloutWorker(
            config.env, policy, Estimator.of(config), layout(config).envs_per_chunk, value,
            **worker_options(config),
        )

    def sample(self, theta: np.ndarray, version: int, chunks: list[Chunk]) -> Iterator[ChunkResult]:
        for chunk in chunks:
            yield self.run(theta, version, chunk)

    def run(self, theta: np.ndarray, version: int, chunk: Chunk) -> ChunkResult:
        with one_torch_thread():
            return self.worker.run(theta, version, chunk)

    def value_round(self, theta: np.ndarray, version: int, value_theta: np.ndarray,
                    chunks: list[Chunk]) -> Iterator[ValueGradient]:
        """A further round of V's fit: each chunk's V gradient sum at ``value_theta``, over its held steps."""
        for chunk in chunks:
            yield self.value_gradient(theta, version, value_theta, chunk)

    def value_gradient(self, theta: np.ndarray, version: int, value_theta: np.ndarray, chunk: Chunk) -> ValueGradient:
        with one_torch_thread():
            return self.worker.value_gradient(theta, version, value_theta, chunk)

    def live_workers(self) -> int:
        return 1

    def close(self) -> None:
        pass


def worker_options(config: Config) -> dict:
    """The keyword arguments of every rollout worker of a run, besides env, policy, estimator, width and V."""
    return {"max_episode_steps": config.max_episode_steps, "vector_env": config.vector_env,
            "hold_steps": config.value_epochs > 1}


@contextmanager
def one_torch_thread():
    """Run as a Ray actor runs: a rollout's small batches, and the learner's elementwise update of theta,
    are fastest on one torch thread. On two, each op that torch splits waits for the second thread, and
    where another process holds the other cores that wait is a scheduler slice: Hopper's Adam
    step took 37 ms on two threads beside a busy core, 1.1 ms on one (2-core VM, 2026-12-07)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)

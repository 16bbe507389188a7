"""The Ray backend: rollout workers as Ray actors. The only module of pgdist that imports ray.

Per batch: theta goes into the object store once (``ray.put``), every actor reads that
copy; chunks go to actors as actors become free (``ray.wait``); a chunk whose actor died
is handed to another, and gives the same episodes there (chunks own their randomness).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import numpy as np
import psutil
import ray
import torch

from pgdist.backends import LocalBackend
from pgdist.config import Config
from pgdist.envs import import_root
from pgdist.ray_startup import start_ray
from pgdist.worker import Chunk, ChunkResult, RolloutWorker

IN_FLIGHT = 2  # chunks queued per actor, so that an actor never waits on the driver


class RayRolloutWorker(RolloutWorker):
    def __init__(self, *args, **kwargs):
        torch.set_num_threads(1)
        super().__init__(*args, **kwargs)

    def node(self) -> str:
        return ray.get_runtime_context().get_node_id()


class RayBackend:
    """Rollout workers as Ray actors.

    On a local instance it started itself, the backend makes the learner's own process one
    of the ``workers`` (it would otherwise wait on the actors): ``workers - 1`` actors, and
    chunks run here until the actors are up. In a cluster (``address``) or in a Ray instance
    the caller started, every worker is an actor.
    """

    def __init__(self, config: Config, policy: torch.nn.Module, value: torch.nn.Module | None):
        children = set(psutil.Process().children())
        self.started_ray = start_ray(config.address, _runtime_env(config.env))
        # the processes of the local instance it started, if it did: close() waits for them
        self.local_instance = set(psutil.Process().children()) - children if self.started_ray == "local" else set()
        try:
            cpus = ray.cluster_resources().get("CPU", 1.0)
            self.workers = config.workers or max(1, int(cpus))
            self.local_worker = None
            if self.started_ray == "local" and self.workers >= 2:
                self.local_worker = LocalBackend(config, policy, value)
            actor = ray.remote(RayRolloutWorker).options(
                num_cpus=min(1.0, cpus / self.workers),
                scheduling_strategy="SPREAD",
            )
            self.actors = [
                actor.remote(config.env, policy, config.estimator, config.envs_per_chunk, value,
                             max_episode_steps=config.max_episode_steps)
                for _ in range(self.workers - (self.local_worker is not None))
            ]
            # with a worker here, chunks go to an actor once it is up: it answers this call
            self.starting = {actor.node.remote(): actor for actor in self.actors} if self.local_worker else {}
        except BaseException:
            self.close()
            raise

    def sample(self, theta: np.ndarray, version: int, chunks: list[Chunk]) -> Iterator[ChunkResult]:
        theta_ref = ray.put(theta)
        queue = deque(chunks)
        running = {}  # object ref -> (actor, chunk)
        for_here = 1 if self.local_worker else 0  # chunks the actors leave in the queue for this process

        def hand_out():  # keep each actor that is up IN_FLIGHT chunks deep, round robin
            actors = self._up()
            for _ in range(IN_FLIGHT):
                for actor in actors:
                    busy = sum(a == actor for a, _ in running.values())
                    if len(queue) > for_here and busy < IN_FLIGHT:
                        chunk = queue.popleft()
                        running[actor.run.remote(theta_ref, version, chunk)] = (actor, chunk)

        hand_out()
        while queue or running:
            if self.local_worker and queue:
                yield self.local_worker.run(theta, version, queue.popleft())
                finished = ray.wait(list(running), num_returns=len(running), timeout=0)[0] if running else []
            else:
                finished = ray.wait(list(running), num_returns=1)[0]
            for ref in finished:
                actor, chunk = running.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayActorError:
                    self._lose(actor)
                    queue.appendleft(chunk)  # it owns its randomness: the same episodes elsewhere
                else:
                    yield result
            hand_out()

    def _up(self) -> list:
        """The actors that can take chunks: all of them, unless chunks can run here meanwhile."""
        if self.starting:
            done, _ = ray.wait(list(self.starting), num_returns=len(self.starting), timeout=0)
            for ref in done:
                del self.starting[ref]
        starting = list(self.starting.values())
        return [actor for actor in self.actors if actor not in starting]

    def nodes(self) -> list[str]:
        """The node each actor runs on."""
        return ray.get([actor.node.remote() for actor in self.actors])

    def close(self) -> None:
        for actor in getattr(self, "actors", []):
            ray.kill(actor)
        self.actors = []
        if self.started_ray:
            processes = [*self.local_instance, *(q for p in self.local_instance for q in _children(p))]
            ray.shutdown()
            psutil.wait_procs(processes, timeout=10)  # the actors' processes too: the raylet leaves them exiting
            self.started_ray = None

    def _lose(self, actor) -> None:
        if actor in self.actors:
            self.actors.remove(actor)
        if not self.actors and self.local_worker is None:
            raise RuntimeError("every rollout worker has died; see the Ray logs for why")


def _children(process: psutil.Process) -> list[psutil.Process]:
    try:
        return process.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _runtime_env(env: str) -> dict | None:
    """Ship a ``module:Class`` env's package to the workers if it is not installed there.

    Ray uploads local folders only for a whole job, so this goes to ``ray.init``.
    """
    root = import_root(env)
    return {"py_modules": [root]} if root else None

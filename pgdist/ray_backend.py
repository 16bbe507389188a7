"""The Ray backend: rollout workers as Ray actors. The only module of pgdist that imports ray.

Per batch: theta goes into the object store once (``ray.put``), every actor reads that
copy; chunks go to actors as actors become free (``ray.wait``); a chunk whose actor died
is handed to another, and gives the same episodes there (chunks own their randomness).
"""

from __future__ import annotations

import logging
import os
import socket
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import psutil
import ray
import torch
from ray._private import ray_constants
from ray._private.node import Node

from pgdist.config import Config
from pgdist.envs import import_root
from pgdist.backends import ClusterError, LocalBackend
from pgdist.worker import Chunk, ChunkResult, RolloutWorker

IN_FLIGHT = 2  # chunks queued per actor, so that an actor never waits on the driver
# Right after starting its object store, the raylet connects to it and, if the store is not
# listening yet, tries again after raylet_client_connect_timeout_milliseconds (1 s by default):
# about every other local start here lost that second. Retry every 0.1 s, within the same 10 s.
LOCAL_SYSTEM_CONFIG = {"raylet_client_connect_timeout_milliseconds": 100, "raylet_client_num_connect_attempts": 100}


class RayRolloutWorker(RolloutWorker):
    def __init__(self, *args):
        torch.set_num_threads(1)
        super().__init__(*args)

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
        self.local_instance = set(psutil.Process().children()) - children  # if it started one: its processes
        try:
            cpus = ray.cluster_resources().get("CPU", 1.0)
            self.workers = config.workers or max(1, int(cpus))
            self.local_worker = None
            if self.local_instance and self.workers >= 2:
                self.local_worker = LocalBackend(config, policy, value)
            actor = ray.remote(RayRolloutWorker).options(
                num_cpus=min(1.0, cpus / self.workers),
                scheduling_strategy="SPREAD",
            )
            self.actors = [
                actor.remote(config.env, policy, config.estimator, config.envs_per_chunk, value)
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
            self.started_ray = False

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


def start_ray(address: str | None, runtime_env: dict | None = None) -> bool:
    """Connect to a cluster, or start a local instance listening on loopback only.

    Returns whether this call started or joined Ray (and so must shut it down). Where
    Ray was already initialised by the caller, its runtime_env is the caller's.
    """
    if ray.is_initialized():
        return False
    options = dict(
        include_dashboard=False, logging_level=logging.WARNING, log_to_driver=True, runtime_env=runtime_env
    )
    if address is None and not os.environ.get("RAY_ADDRESS"):
        with _loopback_only(), _for_one_run(), _without_token_notice():
            ray.init(**options, _system_config=LOCAL_SYSTEM_CONFIG)
    else:
        if address and address != "auto" and "://" not in address:
            _check_reachable(address)
        try:
            ray.init(address=address, **options)
        except ConnectionError as error:
            hint = ""
            if os.environ.get("RAY_AUTH_MODE") != "token":
                hint = "; a cluster started with token authentication also needs RAY_AUTH_MODE=token and its token"
            raise ClusterError(f"could not join the Ray cluster at {address or os.environ['RAY_ADDRESS']}{hint}") from error
    return True


def _check_reachable(address: str) -> None:
    """Fail in seconds, not after Ray's long retries, when nothing listens at ``address``."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"--address {address!r} is not HOST:PORT (for example 10.0.0.1:6379)")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as error:
        raise ClusterError(
            f"cannot reach a Ray cluster at {address} ({error.strerror or error}); start one there with "
            "'ray start --head --port=6379', or check --address"
        ) from None


def cluster_nodes(address: str) -> list[tuple[str, float]]:
    """(address, CPUs) of each live node of the cluster at ``address``."""
    started = start_ray(address)
    try:
        return [(node["NodeManagerAddress"], node["Resources"].get("CPU", 0.0)) for node in ray.nodes() if node["Alive"]]
    finally:
        if started:
            ray.shutdown()


@contextmanager
def _loopback_only():
    """Keep a local Ray instance on 127.0.0.1 (RAY-NOTES.md).

    On Linux Ray advertises and listens on the machine's network address. It picks
    loopback only where ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, a setting it reads when
    ray is imported: here, already. So this sets it for the processes ``ray.init``
    starts and for the driver's constant, and restores both once Ray is up.
    """
    previous_env = os.environ.get(ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR)
    previous_constant = ray_constants.ENABLE_RAY_CLUSTER
    os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = previous_constant
        if previous_env is None:
            del os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR]
        else:
            os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = previous_env


@contextmanager
def _for_one_run():
    """Start a local instance without the two processes that serve a long-lived cluster.

    Even with ``include_dashboard=False``, ``ray.init`` starts an API server (left with
    only its usage-statistics module) and waits for it before it starts the raylet, and
    it starts the autoscaler's monitor, which on ``ray.shutdown`` reports to a GCS that
    is already gone until Ray kills it after a one-second timeout. An instance that lives
    for one pgdist run has no jobs submitted to it and never scales. Measured here
    (2 cores): ray.init 2.9 -> 2.3 s, ray.shutdown 1.4 -> 0.2 s. Users who want Ray's
    dashboard call ``ray.init()`` (or ``ray start --head``) themselves.
    """
    skipped = {name: getattr(Node, name) for name in ("start_api_server", "start_monitor") if hasattr(Node, name)}
    for name in skipped:
        setattr(Node, name, _not_started)
    try:
        yield
    finally:
        for name, method in skipped.items():
            setattr(Node, name, method)


def _not_started(self, **options) -> None:
    pass


@contextmanager
def _without_token_notice():
    """Keep Ray's notice that token authentication is on off a local run's terminal.

    The notice is for clusters others can reach; the instance pgdist starts listens on
    loopback only, for one run. Token authentication itself stays on.
    """
    notice = logging.getLogger("ray._private.authentication.authentication_token_setup")
    quiet = logging.Filter()
    quiet.filter = lambda record: not record.getMessage().startswith("Token authentication is enabled")
    notice.addFilter(quiet)
    try:
        yield
    finally:
        notice.removeFilter(quiet)


def _runtime_env(env: str) -> dict | None:
    """Ship a ``module:Class`` env's package to the workers if it is not installed there.

    Ray uploads local folders only for a whole job, so this goes to ``ray.init``.
    """
    root = import_root(env)
    return {"py_modules": [root]} if root else None

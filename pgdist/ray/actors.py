"""The rollout actors: the Ray actor that runs a run's chunks, and which actors are up.

The actor (``RayRolloutWorker``) is the plain ``RolloutWorker`` made remote; ``Actors`` follows
them through Ray's restarts for one run of ``pgdist.ray.backend.RayBackend``.
"""

from __future__ import annotations

import time

import numpy as np
import ray
import torch

from pgdist.chunks import Chunk, ChunkResult, ValueGradient
from pgdist.worker import RolloutWorker

# A call to an actor that Ray is restarting fails at once; it is called again this often until it
# answers. (Ray's own retries, max_task_retries on the call, would print a line at each try.)
CALL_AGAIN = 0.5


class RayRolloutWorker:
    """A Ray actor that runs the chunks of one run at a time.

    The run's rollout worker is built from the run's arguments (env, policy, estimator, ...) on
    its first call, and again whenever a call comes from another run. So actors serve one Learner
    after another (``RayWorkers``), and one that Ray restarts (an empty ``__init__``) takes up its
    run again from the first call it gets. ``run`` is a one-item list holding the reference to the
    run's arguments: in a list, Ray hands the actor the reference, not the value on every call.
    """

    def __init__(self):
        torch.set_num_threads(1)
        self.run_id = None
        self.worker = None

    def setup(self, run: list) -> str:
        """Build ``run``'s rollout worker unless this actor has it already; the node it runs on."""
        [arguments] = run
        if arguments.hex() != self.run_id:
            args, kwargs = ray.get(arguments)
            self.worker = RolloutWorker(*args, **kwargs)
            self.run_id = arguments.hex()
        return self.node()

    def run(self, run: list, theta: np.ndarray, version: int, chunk: Chunk) -> ChunkResult:
        self.setup(run)
        return self.worker.run(theta, version, chunk)

    def value_gradient(self, run: list, theta: np.ndarray, version: int, value_theta: np.ndarray,
                       chunk: Chunk) -> ValueGradient:
        self.setup(run)
        return self.worker.value_gradient(theta, version, value_theta, chunk)

    def node(self) -> str:
        return ray.get_runtime_context().get_node_id()


class Actors:
    """The rollout actors, and which of them are up: answered a call since they last (re)started.

    Ray restarts a dead actor (``max_restarts``). A call to an actor while Ray restarts it fails at
    once, so one found restarting is called again every CALL_AGAIN seconds until it answers; one
    that Ray has given up on (its restarts used up) is dropped.
    """

    def __init__(self, actors: list, run: list):
        self.lent = list(actors)  # what the backend borrowed, to give back at close
        self.actors = list(actors)
        self.run = run  # [reference to the run's arguments], what each actor sets itself up from
        self.calls = {}  # the call each actor that is not up answers once it is: ref -> actor
        self.restarting = {}  # actor -> when it was last found restarting
        for actor in self.actors:
            self.call(actor)

    def call(self, actor) -> None:
        """Give ``actor`` chunks again once it answers this call: it is starting, or died and restarts,
        or it comes from a pool and ran another run's chunks last."""
        self.calls[actor.setup.remote(self.run)] = actor

    def restart(self, actor) -> None:
        ray.kill(actor, no_restart=False)  # Ray restarts it as after any death
        self.restarting[actor] = time.monotonic()

    def answered(self, ready: set) -> None:
        for ref in [ref for ref in self.calls if ref in ready]:
            actor = self.calls.pop(ref)
            try:
                ray.get(ref)
            except ray.exceptions.ActorUnavailableError:
                self.restarting[actor] = time.monotonic()
            except ray.exceptions.RayActorError:
                self.actors.remove(actor)  # dead for good

    def up(self) -> list:
        """The actors that can take chunks now."""
        for actor, found in list(self.restarting.items()):
            if time.monotonic() - found >= CALL_AGAIN:
                del self.restarting[actor]
                self.call(actor)
        if self.calls:
            self.answered(set(ray.wait(list(self.calls), num_returns=len(self.calls), timeout=0)[0]))
        waiting = [*self.calls.values(), *self.restarting]
        return [actor for actor in self.actors if actor not in waiting]

    def next_call(self) -> float | None:
        """Seconds until a restarting actor is called again, if any is."""
        if not self.restarting:
            return None
        return max(0.0, min(self.restarting.values()) + CALL_AGAIN - time.monotonic())

    def wait_until_up(self, timeout: float) -> None:
        """Return once every actor is up, or after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while len(self.up()) < len(self.actors) and time.monotonic() < deadline:
            if self.calls:
                ray.wait(list(self.calls), num_returns=1, timeout=self.next_call())
            else:
                time.sleep(self.next_call())

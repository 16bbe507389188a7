"""The Ray backend: the chunks of a sampling call handed to rollout actors, and the pool of
actors (``RayWorkers``) that Learners borrow.

Per sampling call: theta goes into the object store once (``ray.put``), every actor reads that
copy; chunks go to actors as actors become free (``ray.wait``); a chunk whose actor died
is handed to another, and gives the same episodes there (chunks own their randomness).
A further round of V's fit (``value_epochs``) hands each chunk to the worker holding its steps.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator

import numpy as np
import psutil
import ray
import torch

from pgdist.backends import LocalBackend, WorkerError, worker_options
from pgdist.chunks import Chunk, ChunkResult, ValueGradient
from pgdist.config import Config
from pgdist.dispatch import Dispatch, died_message, hung_message
from pgdist.estimators import Estimator
from pgdist.layout import layout
from pgdist.ray.actors import Actors, RayRolloutWorker
from pgdist.ray.startup import runtime_env, start_ray

IN_FLIGHT = 2  # chunks queued per actor, so that an actor never waits on the driver
# Ray restarts a dead actor up to this many times in a run: enough for a node lost and back a
# few times, or a rare OOM kill; an actor that dies more often than that (a host that kills
# whatever runs there) is dropped instead of churning.
ACTOR_RESTARTS = 10
DEATHS_PER_CHUNK = 3  # a chunk that ends this many workers has an env that crashes its process: stop
TIMEOUTS_PER_CHUNK = 2  # a chunk that hangs a second worker has an env stuck in step: stop
# How long a dispatch waits for an actor to come up when no worker can run its chunks. Starting
# or restarting an actor can take minutes on a cluster (a node rebooting, a runtime_env being
# installed), far longer than a chunk should run, so this is not chunk_timeout.
START_TIMEOUT = 600.0


class RayBackend:
    """Rollout workers as Ray actors.

    On a local instance it started itself, the backend makes the learner's own process one
    of the ``workers`` (it would otherwise wait on the actors): ``workers - 1`` actors, and
    chunks run here until the actors are up. In a cluster (``address``) or in a Ray instance
    the caller started, every worker is an actor.

    Its actors come from a ``RayWorkers``: the one given (``lender``) or open in a ``with`` block,
    whose actors it gives back at close, else one of its own, which it ends at close.

    An actor that dies (killed, out of memory, its node gone) is restarted by Ray and takes
    chunks again once it is up (``Actors``). Calls are never retried by Ray
    (``max_task_retries=0``): the chunks of a dead actor come back here at once and go to
    other workers.
    """

    def __init__(self, config: Config, policy: torch.nn.Module, value: torch.nn.Module | None,
                 lender: RayWorkers | None = None):
        self.lender = lender or RayWorkers.default
        self.own_lender = self.lender is None  # actors of its own: started here, ended at close()
        self.started_ray, self.local_instance = None, set()
        if self.own_lender:
            children = set(psutil.Process().children())
            self.started_ray = start_ray(config.address, runtime_env(config.env))
            # the processes of the local instance it started, if it did: close() waits for them
            self.local_instance = set(psutil.Process().children()) - children if self.started_ray == "local" else set()
        self.chunk_timeout = config.chunk_timeout
        self.pool = Actors([], [])
        self.dispatch = None  # the latest call's: its chunks' workers hold their steps for V's fit
        self.theta_ref = None  # (version, reference) of the latest sampling call's theta in the object store
        try:
            cpus = ray.cluster_resources().get("CPU", 1.0)
            self.cpus = max(1, int(cpus))
            # by default one worker per CPU, but no more than N's chunks: a worker without one would only
            # start and idle (on its own instance, this process and one actor, as this process runs chunks)
            cut = layout(config)
            chunks = cut.chunks(config.episodes_max or config.episodes)
            self.workers = config.workers or min(self.cpus, max(chunks, 2 if self.started_ray == "local" else 1))
            if not self.own_lender and config.workers is None:
                self.workers = min(self.workers, self.lender.size)
            self.local_worker = None
            if self.started_ray == "local" and self.workers >= 2:
                self.local_worker = LocalBackend(config, policy, value)
            actors = self.workers - (self.local_worker is not None)
            if self.own_lender:
                self.lender = RayWorkers(actors, num_cpus=min(1.0, cpus / self.workers))
            arguments = ((config.env, policy, Estimator.of(config), cut.envs_per_chunk, value), worker_options(config))
            self.pool = Actors(self.lender.lend(actors), [ray.put(arguments)])
        except BaseException:
            self.close()
            raise

    @property
    def actors(self) -> list:
        """Every actor that Ray has not given up on, up or (re)starting."""
        return self.pool.actors

    def sample(self, theta: np.ndarray, version: int, chunks: list[Chunk]) -> Iterator[ChunkResult]:
        self.theta_ref = (version, ray.put(theta))
        theta_ref, run = self.theta_ref[1], self.pool.run
        dispatch = Dispatch(lambda actor, chunk: actor.run.remote(run, theta_ref, version, chunk), version, chunks,
                            self.chunk_timeout, START_TIMEOUT)
        yield from self._run(dispatch, lambda chunk: self.local_worker.run(theta, version, chunk))

    def value_round(self, theta: np.ndarray, version: int, value_theta: np.ndarray,
                    chunks: list[Chunk]) -> Iterator[ValueGradient]:
        """A further round of V's fit: each chunk's V gradient sum at ``value_theta``, from the worker that
        holds its steps (the one that ran it last); a chunk whose worker is lost runs again elsewhere."""
        theta_ref = self.theta_ref[1] if self.theta_ref and self.theta_ref[0] == version else ray.put(theta)
        value_ref, run = ray.put(value_theta), self.pool.run
        holders = self.dispatch.ran if self.dispatch is not None and self.dispatch.version == version else {}
        dispatch = Dispatch(lambda actor, chunk: actor.value_gradient.remote(run, theta_ref, version, value_ref, chunk),
                            version, chunks, self.chunk_timeout, START_TIMEOUT, holders)
        yield from self._run(dispatch, lambda chunk: self.local_worker.value_gradient(theta, version, value_theta, chunk))

    def _run(self, dispatch: Dispatch, here) -> Iterator:
        """Run a dispatch's chunks on the actors and, with ``here(chunk)``, in this process; yield each result."""
        self.dispatch = dispatch
        while dispatch.queue or dispatch.running:
            up = self._hand_out(dispatch)
            chunk = dispatch.take_for_here(up) if self.local_worker else None
            if chunk is not None:
                yield here(chunk)
            self._check_progress(dispatch, up)
            yield from self._gather(dispatch, timeout=0 if chunk is not None else self._wait_time(dispatch))
            for actor in dispatch.hung():
                self._restart_hung(dispatch, actor)

    def _hand_out(self, dispatch: Dispatch) -> list:
        """Keep each actor that is up IN_FLIGHT chunks deep, round robin, leaving a chunk for this process;
        the actors that are up."""
        actors = self.pool.up()
        reserved = 1 if self.local_worker and dispatch.has_chunk_for_here(actors) else 0
        for _ in range(IN_FLIGHT):
            for actor in actors:
                if len(dispatch.queue) > reserved and dispatch.busy(actor) < IN_FLIGHT:
                    dispatch.submit(actor, actors)
        return actors

    def _gather(self, dispatch: Dispatch, timeout: float | None) -> Iterator[ChunkResult]:
        """Wait up to ``timeout`` for a chunk or an actor coming up; take all that are ready, in order."""
        refs = [*dispatch.running, *self.pool.calls]
        if not refs:
            time.sleep(timeout or 0.0)  # only actors to call again: not before their time
            return
        if not ray.wait(refs, num_returns=1, timeout=timeout)[0]:
            return
        ready = set(ray.wait(refs, num_returns=len(refs), timeout=0)[0])
        self.pool.answered(ready)
        for ref in (ref for ref in refs if ref in ready and ref in dispatch.running):
            actor = dispatch.running[ref][0]
            try:
                result = ray.get(ref)
            except ray.exceptions.RayActorError:
                dispatch.lose(actor, dispatch.deaths, DEATHS_PER_CHUNK, died_message)
                self.pool.call(actor)
            else:
                dispatch.finish(ref)
                yield result

    def _restart_hung(self, dispatch: Dispatch, actor) -> None:
        """Its chunk goes to another actor; the actor is killed, and so restarted by Ray."""
        chunk = dispatch.lose(actor, dispatch.timeouts, TIMEOUTS_PER_CHUNK, hung_message)
        warnings.warn(
            f"{dispatch.name(chunk)} ran for more than {self.chunk_timeout:g} s (chunk_timeout) on an actor: "
            "restarting that actor and running the chunk once more on an actor",
            stacklevel=4,
        )
        self.pool.restart(actor)

    def _check_progress(self, dispatch: Dispatch, up: list) -> None:
        """Fail when no worker can run the queued chunks: none left, or none up within START_TIMEOUT."""
        if dispatch.running or (self.local_worker and dispatch.has_chunk_for_here(up)) or not dispatch.queue:
            dispatch.stalled_since = None
            return
        if not self.actors:
            raise WorkerError(
                f"no rollout worker is left to run {dispatch.name(dispatch.queue[0])}: every actor died and "
                f"was restarted {ACTOR_RESTARTS} times (see the Ray logs for why)"
            )
        if dispatch.stalled_since is None:
            dispatch.stalled_since = time.monotonic()
        elif time.monotonic() - dispatch.stalled_since > START_TIMEOUT:
            raise WorkerError(
                f"no rollout worker came up within {START_TIMEOUT:g} s to run "
                f"{dispatch.name(dispatch.queue[0])}: {len(self.actors)} actor(s) are waiting to be (re)started; "
                "their node may be gone or the cluster short of CPUs (see the Ray logs)"
            )

    def _wait_time(self, dispatch: Dispatch) -> float | None:
        """Until a chunk may have hung, the wait for workers is over, or a restarting actor is called again."""
        waits = [wait for wait in (dispatch.wait_time(), self.pool.next_call()) if wait is not None]
        return min(waits, default=None)

    def live_workers(self) -> int:
        """The workers that can run chunks now: the actors that are up, and this process if it is one."""
        return len(self.pool.up()) + (self.local_worker is not None)

    def nodes(self) -> list[str]:
        """The node each actor runs on, once every actor is up."""
        self.pool.wait_until_up(START_TIMEOUT)
        return ray.get([actor.node.remote() for actor in self.actors])

    def close(self) -> None:
        if self.dispatch is not None and not self.own_lender:  # chunks left on actors that stay: drop them
            for ref in self.dispatch.running:
                ray.cancel(ref)
        if self.lender is not None:
            self.lender.take_back(self.pool.lent, self.pool.actors)
            if self.own_lender:
                self.lender.close()
        self.pool = Actors([], [])
        if self.started_ray:
            processes = [*self.local_instance, *(q for p in self.local_instance for q in _children(p))]
            ray.shutdown()
            psutil.wait_procs(processes, timeout=10)  # the actors' processes too: the raylet leaves them exiting
            self.started_ray = None


class RayWorkers:
    """Rollout actors that outlive a Learner: Learners borrow them in turn, and no actor starts twice.

        with RayWorkers(4) as workers:      # in the Ray instance this process has joined or started
            for lr in (1e-3, 3e-3):
                with Learner(config.replace(lr=lr), backend=workers) as learner:
                    learner.step()

    While the ``with`` block runs, it is also ``RayWorkers.default``: every Learner whose config
    says ``backend: ray`` borrows from it without being told. A Learner borrows ``config.workers``
    actors (when unset, one per CPU of the cluster, at most ``size``), starting those not yet
    started; the env's module must be importable where they run. Their state is the
    run's alone (each rebuilds its rollout worker from a new run's first call, see
    ``RayRolloutWorker``), so a Learner's theta is the same on borrowed actors as on new ones.
    Idle actors keep the CPUs they reserve (``num_cpus``, by default the cluster's CPUs shared
    among ``size``), so actors started outside the pool may wait for them: pass ``num_cpus=0``
    to reserve none. An actor that Ray gave up on during a run (its ``ACTOR_RESTARTS`` used up)
    leaves the pool, and a new one starts in its place when a run needs it. A ``RayBackend`` given none, with no
    ``with RayWorkers()`` block open, makes one of its own for its run and ends it with the run.
    """

    default = None  # the pool of the innermost open ``with RayWorkers()`` block, if any

    def __init__(self, size: int | None = None, address: str | None = None, num_cpus: float | None = None):
        self.started_ray = start_ray(address)
        cpus = ray.cluster_resources().get("CPU", 1.0)
        self.size = size if size is not None else max(1, int(cpus))
        self.num_cpus = num_cpus if num_cpus is not None else min(1.0, cpus / max(1, self.size))
        self.idle = []  # started and not lent, oldest first
        self.lent = set()
        self.outer = None

    def __call__(self, config: Config, policy: torch.nn.Module, value: torch.nn.Module | None) -> RayBackend:
        """A backend on these actors: ``Learner(config, backend=workers)``."""
        return RayBackend(config, policy, value, lender=self)

    def __enter__(self) -> RayWorkers:
        self.outer, RayWorkers.default = RayWorkers.default, self
        return self

    def __exit__(self, *exc_info) -> None:
        RayWorkers.default = self.outer
        self.close()

    def lend(self, count: int) -> list:
        """``count`` actors for one run: idle ones first, new ones for the rest."""
        if count > self.size - len(self.lent):
            raise ValueError(f"a run asks for {count} Ray workers and this RayWorkers pool has "
                             f"{self.size - len(self.lent)} of its {self.size} free: raise its size")
        actor = ray.remote(RayRolloutWorker).options(
            num_cpus=self.num_cpus, scheduling_strategy="SPREAD", max_restarts=ACTOR_RESTARTS, max_task_retries=0
        )
        actors = self.idle[:count] + [actor.remote() for _ in range(count - len(self.idle[:count]))]
        del self.idle[:count]
        self.lent.update(actors)
        return actors

    def take_back(self, lent: list, alive: list) -> None:
        """The actors of a finished run; those Ray gave up on during it are dropped."""
        self.lent.difference_update(lent)
        self.idle += [actor for actor in lent if actor in alive]

    def close(self) -> None:
        for actor in [*self.idle, *self.lent]:
            ray.kill(actor)
        self.idle, self.lent = [], set()
        if self.started_ray:
            ray.shutdown()
            self.started_ray = None


def _children(process: psutil.Process) -> list[psutil.Process]:
    try:
        return process.children(recursive=True)
    except psutil.NoSuchProcess:
        return []

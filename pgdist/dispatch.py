"""One sampling call's chunks on the Ray backend's actors: which are queued, which run where,
since when, and what each has done to the workers (died with them, hung them).

Bookkeeping only, without ray: ``pgdist.ray.backend`` waits on the calls and decides what to
do; this module knows what was handed out and what must run again.
"""

from __future__ import annotations

import math
import time
from collections import Counter

from pgdist.backends import WorkerError
from pgdist.chunks import Chunk


HERE = "the learner's process"  # a chunk's worker when the learner's own process ran it


class Dispatch:
    """One sampling call's chunks: those queued, those running on actors (in the order handed out),
    when each busy actor began its current chunk, and what each chunk has done to the workers.

    Chunks own their randomness: one that comes back from a lost actor is queued again and gives the
    same episodes elsewhere. The chunk a worker was running when it died or hung is ``suspect``: it
    runs on actors only, never in the learner's process, which it could kill or hang for good.

    A round of V's fit (``value_epochs``) is a dispatch too, whose ``holders`` say which worker holds
    each chunk's steps (the ``ran`` of the call before): a chunk goes to its holder while that one is
    up, else to any worker, which runs it again at the iteration's theta.
    """

    def __init__(self, call, version: int, chunks: list[Chunk], chunk_timeout: float, start_timeout: float,
                 holders: dict | None = None):
        self.call = call  # (actor, chunk) -> the reference of the actor's call on the chunk
        self.version = version
        self.chunk_timeout = chunk_timeout
        self.start_timeout = start_timeout  # how long the queued chunks may wait for a worker to come up
        self.queue = list(chunks)
        self.holders = holders  # chunk index -> the worker holding its steps (an actor or HERE); None: any
        self.ran = {}  # chunk index -> the worker that finished it (an actor or HERE)
        self.running = {}  # object ref -> (actor, chunk)
        self.began = {}  # actor -> when its oldest running chunk began (as seen here)
        self.deaths = Counter()  # chunk index -> workers that died running it
        self.timeouts = Counter()  # chunk index -> workers it hung
        self.suspect = set()  # indices of chunks that have died or hung on a worker
        self.stalled_since = None  # since when no worker could run the queued chunks

    def name(self, chunk: Chunk) -> str:
        return f"chunk {chunk.index} (episodes {chunk.start}-{chunk.start + chunk.episodes - 1}) of iteration {self.version + 1}"

    def busy(self, actor) -> int:
        return sum(a == actor for a, _ in self.running.values())

    def may_run(self, worker, chunk: Chunk, up: list) -> bool:
        """Whether ``worker`` (an actor, or HERE) may take ``chunk`` now: never a suspect chunk here; in a
        round of V's fit, a chunk whose holder is another worker that is up (or is HERE) waits for it."""
        if worker is HERE and chunk.index in self.suspect:
            return False
        if self.holders is None:
            return True
        holder = self.holders.get(chunk.index)
        return holder is worker or (holder is not HERE and holder not in up)

    def has_chunk_for_here(self, up: list) -> bool:
        return any(self.may_run(HERE, chunk, up) for chunk in self.queue)

    def take_for_here(self, up: list) -> Chunk | None:
        """The first queued chunk the learner's own process may run (not a suspect one)."""
        for position, chunk in enumerate(self.queue):
            if self.may_run(HERE, chunk, up):
                self.ran[chunk.index] = HERE
                return self.queue.pop(position)
        return None

    def submit(self, actor, up: list) -> None:
        """To ``actor``: the first suspect chunk it may run if any (only actors may run one), else the first it may run."""
        mine = [i for i, chunk in enumerate(self.queue) if self.may_run(actor, chunk, up)]
        if not mine:
            return
        position = next((i for i in mine if self.queue[i].index in self.suspect), mine[0])
        chunk = self.queue.pop(position)
        if not self.busy(actor):
            self.began[actor] = time.monotonic()
        self.running[self.call(actor, chunk)] = (actor, chunk)

    def finish(self, ref) -> None:
        actor, chunk = self.running.pop(ref)
        self.ran[chunk.index] = actor
        self.began.pop(actor)
        if self.busy(actor):
            self.began[actor] = time.monotonic()  # it starts its next chunk now (at the latest)

    def lose(self, actor, counts: Counter, limit: int, failure) -> Chunk:
        """Queue ``actor``'s chunks again, the one it was running first; fail if that one did this ``limit`` times."""
        refs = [ref for ref, (a, _) in self.running.items() if a == actor]
        chunks = [self.running.pop(ref)[1] for ref in refs]
        self.began.pop(actor, None)
        culprit = chunks[0]  # results come in the order handed out: the oldest is the one it was running
        counts[culprit.index] += 1
        if counts[culprit.index] >= limit:
            raise WorkerError(failure(self, culprit, counts[culprit.index]))
        self.suspect.add(culprit.index)
        self.queue[:0] = chunks
        return culprit

    def hung(self) -> list:
        """The actors whose current chunk has run longer than chunk_timeout."""
        now = time.monotonic()
        return [actor for actor, began in list(self.began.items()) if now - began > self.chunk_timeout]

    def wait_time(self) -> float | None:
        """How long to wait for results before a chunk may have hung or the wait for workers is over."""
        deadlines = [began + self.chunk_timeout for began in self.began.values()]
        if self.stalled_since is not None:
            deadlines.append(self.stalled_since + self.start_timeout)
        if not deadlines or math.isinf(min(deadlines)):
            return None
        return max(0.0, min(deadlines) - time.monotonic())


def died_message(dispatch: Dispatch, chunk: Chunk, times: int) -> str:
    return (
        f"{dispatch.name(chunk)} ended the process of every worker that ran it ({times} times): its "
        "environment likely crashes (see the Ray logs for how the workers exited)"
    )


def hung_message(dispatch: Dispatch, chunk: Chunk, times: int) -> str:
    return (
        f"{dispatch.name(chunk)} hung on {times} workers: each ran it for more than {dispatch.chunk_timeout:g} s "
        "(chunk_timeout); an environment stuck in step? (raise chunk_timeout if its chunks take that long)"
    )

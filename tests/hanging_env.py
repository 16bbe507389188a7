"""LineWalk whose step hangs for good once the test arms it: a chunk stuck in an environment.

``arm(pid)`` makes the next step of process ``pid`` (of any process if None) hang; that process
takes the arming away, so it happens once. While ``ALWAYS`` exists, every step of every process hangs.
"""

import os
import tempfile
import threading

from envs.line import LineWalk

ARMED = os.path.join(tempfile.gettempdir(), "pgdist-hanging-env-armed")
ALWAYS = os.path.join(tempfile.gettempdir(), "pgdist-hanging-env-always")


def arm(pid: int | None = None) -> None:
    with open(ARMED, "w") as file:
        file.write("" if pid is None else str(pid))


def disarm() -> None:
    for path in (ARMED, ALWAYS):
        if os.path.exists(path):
            os.remove(path)


def _armed_here() -> bool:
    try:
        with open(ARMED) as file:
            target = file.read().strip()
    except FileNotFoundError:
        return False
    if target and int(target) != os.getpid():
        return False
    try:
        os.remove(ARMED)  # exactly one process wins the removal, and hangs
    except FileNotFoundError:
        return False
    return True


class HangingLineWalk(LineWalk):
    def step(self, action):
        if os.path.exists(ALWAYS) or _armed_here():
            threading.Event().wait()
        return super().step(action)

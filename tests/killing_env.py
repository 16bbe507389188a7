"""LineWalk that SIGKILLs its own process at a reset once the test arms it: a worker killed mid-batch,
as the OOM killer or a crashing environment would.

``arm(kills)`` lays ``kills`` tokens; a reset that takes one (exactly one process wins each removal)
kills its process. While ``ALWAYS`` exists, every reset does: an environment that crashes every time.
"""

import glob
import os
import signal
import tempfile

from envs.line import LineWalk

TOKENS = os.path.join(tempfile.gettempdir(), "pgdist-killing-env-token-")
ALWAYS = os.path.join(tempfile.gettempdir(), "pgdist-killing-env-always")


def arm(kills: int) -> None:
    for token in range(kills):
        open(f"{TOKENS}{token}", "w").close()


def tokens_left() -> list[str]:
    return glob.glob(f"{TOKENS}*")


def disarm() -> None:
    for path in [*tokens_left(), ALWAYS]:
        if os.path.exists(path):
            os.remove(path)


def _took_a_token() -> bool:
    for token in tokens_left():
        try:
            os.remove(token)
        except FileNotFoundError:
            continue
        return True
    return False


class KillingLineWalk(LineWalk):
    def reset(self, seed=None):
        if os.path.exists(ALWAYS) or _took_a_token():
            os.kill(os.getpid(), signal.SIGKILL)
        return super().reset(seed)

"""LineWalk that ends its own process at a reset once the test arms it: a worker lost mid-batch."""

import os
import tempfile

from envs.line import LineWalk

ARMED = os.path.join(tempfile.gettempdir(), "pgdist-dying-env-armed")


class DyingLineWalk(LineWalk):
    def reset(self, seed=None):
        try:
            os.remove(ARMED)  # exactly one process wins the removal, and dies
        except FileNotFoundError:
            return super().reset(seed)
        os._exit(1)

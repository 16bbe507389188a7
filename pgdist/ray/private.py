"""The one place pgdist reaches into Ray's private API: the shortcuts of a local start.

On the Ray versions they were checked against (``CHECKED_RAY``), a local instance starts
with five shortcuts, the first three about 1.5 s of every training command on 2 cores:

1. the loopback setting is applied even after ray was imported, by setting the module
   constant Ray read it into (``ray._private.ray_constants``) while ``ray.init`` runs;
2. no API server and no autoscaler monitor (``ray._private.node.Node`` methods made
   no-ops while ``ray.init`` runs): an instance that lives for one run has no jobs
   submitted to it and never scales, yet ``ray.init`` waits about 1 s for the API server
   and ``ray.shutdown`` about 1 s for the monitor. Measured here: init 2.9 -> 2.3 s,
   shutdown 1.4 -> 0.2 s. Users who want the dashboard call ``ray.init()`` themselves;
3. the raylet retries connecting to its own object store every 0.1 s instead of every
   1 s (``_system_config``), which about every other start here lost a second to;
4. the actors run at this process's niceness (``worker_niceness`` 0: the raylet leaves the
   one they inherit), not Ray's default of 15: on a local instance this process is one of
   the workers, and an actor at 15 loses its core to every process at 0 (this one's Ray
   threads, the raylet, the GCS) while an iteration waits for its chunk. A run started
   under ``nice`` keeps its actors as nice as itself;
5. the node's dashboard agent runs in Ray's minimal mode (``--minimal``, as with ``pip install ray``
   rather than ``ray[default]``): ``ray._private.utils.get_dashboard_dependency_error`` reports the
   dashboard's extras missing while ``ray.init`` runs. The raylet waits for its agents before the
   node is up, and the full agent (metrics export, the dashboard's node modules) serves a dashboard
   that an instance started with ``include_dashboard=False`` does not have; the driver also skips
   importing the dashboard's dependencies. The runtime env agent (``py_modules``) is untouched.
   Measured here (2026-12-08, 8 pairs of a 6-iteration CartPole train on 2 workers): the whole
   command's CPU 0.92x (6.2 against 7.2 s), its wall time 0.94x (8.3 against 9.2 s); ``ray.init``
   alone took 3.0 s either way.

On any other Ray version, or with ``PGDIST_PLAIN_RAY_START=1`` in the environment, the
local instance starts with a plain ``ray.init``; the loopback setting then reaches Ray
through the environment, set before ray is first imported (``learner.make_backend``),
so a process that imported ray before pgdist gets Ray's own choice of address there.
tests/test_ray_startup.py fails loudly when the private names move in a checked version.
"""

from __future__ import annotations

import logging
import os
from contextlib import ExitStack, contextmanager

import ray
from ray._private import ray_constants
from ray._private import utils as ray_utils
from ray._private.node import Node

CHECKED_RAY = ("2.60",)  # major.minor versions whose private API the shortcuts were checked against
PLAIN_START_VARIABLE = "PGDIST_PLAIN_RAY_START"
SKIPPED_SERVICES = ("start_api_server", "start_monitor")
AGENT_MODE_CHECK = "get_dashboard_dependency_error"  # in ray._private.utils: None starts the full agent
LOCAL_SYSTEM_CONFIG = {
    "raylet_client_connect_timeout_milliseconds": 100,
    "raylet_client_num_connect_attempts": 100,
    "worker_niceness": 0,
}
# Ray's message when a node's raylet does not register with the GCS within its fixed 30 s
# (ray._private.node.Node.__init__): a start on a loaded machine that is worth one more try
REGISTRATION_MISSED = "The current node timed out during startup"


def shortcuts_apply(version: str = ray.__version__) -> bool:
    """Whether the local start may take the private shortcuts: a checked Ray, and no plain start asked for."""
    if os.environ.get(PLAIN_START_VARIABLE, "") not in ("", "0"):
        return False
    return ".".join(version.split(".")[:2]) in CHECKED_RAY


@contextmanager
def local_start(options: dict):
    """Around ``ray.init`` of a local instance: the shortcuts where they apply (``options`` gains the
    system config), and the token notice kept off the terminal either way."""
    with ExitStack() as stack:
        stack.enter_context(_without_token_notice())
        if shortcuts_apply():
            stack.enter_context(_loopback_constant())
            stack.enter_context(_without_services())
            stack.enter_context(_minimal_agent())
            # a copy each start: Ray writes its object spilling config into the dict it is given, and a
            # second start that passed it back would have Ray warn of an "unstable API" pgdist never used
            options["_system_config"] = dict(LOCAL_SYSTEM_CONFIG)
        yield


@contextmanager
def _loopback_constant():
    """Shortcut 1: the loopback setting for the processes ``ray.init`` starts and for this one's constant."""
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
def _replaced(owner, replacements: dict):
    """``owner``'s attributes named in ``replacements`` set to their values while the block runs, then restored."""
    originals = {name: getattr(owner, name) for name in replacements}
    for name, value in replacements.items():
        setattr(owner, name, value)
    try:
        yield
    finally:
        for name, value in originals.items():
            setattr(owner, name, value)


def _without_services():
    """Shortcut 2: the API server and the autoscaler monitor are not started."""
    return _replaced(Node, dict.fromkeys(SKIPPED_SERVICES, _not_started))


def _not_started(self, **options) -> None:
    pass


def _minimal_agent():
    """Shortcut 5: the dashboard agent in Ray's minimal mode, as where the dashboard's extras are not installed."""
    return _replaced(ray_utils, {AGENT_MODE_CHECK: _extras_left_out})


def _extras_left_out() -> ImportError:
    return ImportError("pgdist's local instance has no dashboard: its node agent runs minimal")


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

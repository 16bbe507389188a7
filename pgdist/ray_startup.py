"""Starting or joining Ray for a run: the one place pgdist reaches into Ray's private API.

A run joins the cluster at ``address`` (or ``RAY_ADDRESS``), or an instance the caller
started with ``ray.init``, or starts a local instance of its own that lives for the run.
That local instance listens on loopback only (RAY-NOTES.md item 2): Ray keeps a
single-node instance on 127.0.0.1 where ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, a
setting it reads when ray is imported.

On the Ray versions it was checked against (``CHECKED_RAY``), the local start takes
four shortcuts through Ray's private API, the first three about 1.5 s of every training
command on 2 cores:

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
   under ``nice`` keeps its actors as nice as itself.

On any other Ray version, or with ``PGDIST_PLAIN_RAY_START=1`` in the environment, the
local instance starts with a plain ``ray.init``; the loopback setting then reaches Ray
through the environment, set before ray is first imported (``learner.make_backend``),
so a process that imported ray before pgdist gets Ray's own choice of address there.
tests/test_ray_startup.py fails loudly when the private names move in a checked version.
"""

from __future__ import annotations

import logging
import os
import socket
from contextlib import ExitStack, contextmanager

import ray
from ray._private import ray_constants
from ray._private.node import Node

from pgdist.backends import ClusterError

CHECKED_RAY = ("2.60",)  # major.minor versions whose private API the shortcuts were checked against
PLAIN_START_VARIABLE = "PGDIST_PLAIN_RAY_START"
SKIPPED_SERVICES = ("start_api_server", "start_monitor")
LOCAL_SYSTEM_CONFIG = {
    "raylet_client_connect_timeout_milliseconds": 100,
    "raylet_client_num_connect_attempts": 100,
    "worker_niceness": 0,
}


def shortcuts_apply(version: str = ray.__version__) -> bool:
    """Whether the local start may take the private shortcuts: a checked Ray, and no plain start asked for."""
    if os.environ.get(PLAIN_START_VARIABLE, "") not in ("", "0"):
        return False
    return ".".join(version.split(".")[:2]) in CHECKED_RAY


def start_ray(address: str | None, runtime_env: dict | None = None) -> str | None:
    """Join a cluster, or start a local instance on loopback only.

    Returns what this call did, and so must undo with ``ray.shutdown()``: ``"local"`` (it
    started an instance of its own) or ``"cluster"`` (it joined one); None where Ray was
    already initialised by the caller, whose runtime_env then applies.
    """
    if ray.is_initialized():
        return None
    options = dict(
        include_dashboard=False, logging_level=logging.WARNING, log_to_driver=True, runtime_env=runtime_env
    )
    if address is None and not os.environ.get("RAY_ADDRESS"):
        with ExitStack() as stack:
            stack.enter_context(_without_token_notice())
            if shortcuts_apply():
                stack.enter_context(_loopback_constant())
                stack.enter_context(_without_services())
                options["_system_config"] = LOCAL_SYSTEM_CONFIG
            ray.init(address="local", **options)
        return "local"
    if address and address != "auto" and "://" not in address:
        _check_reachable(address)
    try:
        ray.init(address=address, **options)
    except ConnectionError as error:
        hint = ""
        if os.environ.get("RAY_AUTH_MODE") != "token":
            hint = "; a cluster started with token authentication also needs RAY_AUTH_MODE=token and its token"
        raise ClusterError(f"could not join the Ray cluster at {address or os.environ['RAY_ADDRESS']}{hint}") from error
    return "cluster"


def cluster_nodes(address: str) -> list[tuple[str, float]]:
    """(address, CPUs) of each live node of the cluster at ``address``."""
    started = start_ray(address)
    try:
        return [(node["NodeManagerAddress"], node["Resources"].get("CPU", 0.0)) for node in ray.nodes() if node["Alive"]]
    finally:
        if started:
            ray.shutdown()


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
def _without_services():
    """Shortcut 2: the API server and the autoscaler monitor are not started."""
    originals = {name: getattr(Node, name) for name in SKIPPED_SERVICES}
    for name in SKIPPED_SERVICES:
        setattr(Node, name, _not_started)
    try:
        yield
    finally:
        for name, method in originals.items():
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

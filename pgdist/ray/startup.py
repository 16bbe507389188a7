"""Starting or joining Ray for a run.

A run joins the cluster at ``address`` (or ``RAY_ADDRESS``), or an instance the caller
started with ``ray.init``, or starts a local instance of its own that lives for the run.
That local instance listens on loopback only (RAY-NOTES.md item 2): Ray keeps a
single-node instance on 127.0.0.1 where ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, a
setting it reads when ray is imported. The shortcuts of a local start through Ray's
private API are in ``pgdist.ray.private``.

Ray gives a new node's raylet a fixed 30 s to register with the GCS; on a loaded machine a
local start can miss it. The local start then ends what it half started (by PID) and tries
once more.
"""

from __future__ import annotations

import logging
import os
import socket
import warnings

import psutil
import ray

from pgdist.backends import ClusterError
from pgdist.envs import import_root
from pgdist.ray.private import REGISTRATION_MISSED, local_start

LOCAL_STARTS = 2  # tries of a local start whose raylet missed Ray's registration wait
END_GRACE_S = 2.0  # from SIGTERM to SIGKILL for the processes of a start that missed it


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
        _start_local(options)
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


def _start_local(options: dict) -> None:
    """``ray.init`` of a local instance, once more if its raylet missed the registration wait."""
    for start in range(1, LOCAL_STARTS + 1):
        before = {process.pid for process in _descendants()}
        try:
            with local_start(options):
                ray.init(address="local", **options)
            return
        except Exception as error:
            if REGISTRATION_MISSED not in str(error):
                raise
            ray.shutdown()
            _end([process for process in _descendants() if process.pid not in before])
            if start == LOCAL_STARTS:
                raise ClusterError(
                    f"a local Ray instance did not start: its raylet missed Ray's 30 s registration wait "
                    f"{LOCAL_STARTS} times; the machine is too loaded to start Ray now (free some CPU, or "
                    "start Ray yourself with 'ray start --head' and pass --address)"
                ) from None
            warnings.warn("the local Ray instance's raylet missed Ray's 30 s registration wait (a loaded "
                          "machine): ended its processes, starting it once more", stacklevel=3)


def _descendants() -> list[psutil.Process]:
    return psutil.Process().children(recursive=True)


def _end(processes: list[psutil.Process]) -> None:
    """Terminate ``processes``, and kill those still there after END_GRACE_S (a raylet that never registered
    outlives a SIGTERM by 10 s or more: its drain waits on a GCS that does not know it)."""
    for process in processes:
        try:
            process.terminate()
        except psutil.NoSuchProcess:
            pass
    for process in psutil.wait_procs(processes, timeout=END_GRACE_S)[1]:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(processes, timeout=5)


def cluster_nodes(address: str) -> list[tuple[str, float]]:
    """(address, CPUs) of each live node of the cluster at ``address``."""
    started = start_ray(address)
    try:
        return [(node["NodeManagerAddress"], node["Resources"].get("CPU", 0.0)) for node in ray.nodes() if node["Alive"]]
    finally:
        if started:
            ray.shutdown()


def runtime_env(env: str) -> dict | None:
    """Ship a ``module:Class`` env's package to the workers if it is not installed there.

    Ray uploads local folders only for a whole job, so this goes to ``ray.init``.
    """
    root = import_root(env)
    return {"py_modules": [root]} if root else None


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

"""pgdist/ray_startup.py: the private shortcuts of a local start, gated on the Ray versions they were checked on.

If one of these fails after a Ray upgrade, Ray's internals moved: check the shortcuts
against the new Ray before adding it to CHECKED_RAY. Until then pgdist takes the plain path.
"""

import inspect
import os
import subprocess
import sys
import textwrap

import pytest
import ray
from ray._private import ray_constants
from ray._private.node import Node

from pgdist.ray_startup import CHECKED_RAY, PLAIN_START_VARIABLE, SKIPPED_SERVICES, shortcuts_apply


def test_only_checked_ray_versions_take_the_shortcuts(monkeypatch):
    monkeypatch.delenv(PLAIN_START_VARIABLE, raising=False)
    checked = CHECKED_RAY[0]
    assert shortcuts_apply(f"{checked}.0") and shortcuts_apply(f"{checked}.3")
    assert not shortcuts_apply("2.61.0") and not shortcuts_apply("3.0.0") and not shortcuts_apply("2.6.0")
    monkeypatch.setenv(PLAIN_START_VARIABLE, "1")
    assert not shortcuts_apply(f"{checked}.0")


@pytest.mark.skipif(not shortcuts_apply(ray.__version__), reason=f"Ray {ray.__version__} takes the plain path")
def test_the_private_names_the_shortcuts_use_are_where_they_were():
    for name in SKIPPED_SERVICES:
        method = getattr(Node, name, None)
        assert callable(method), f"ray._private.node.Node.{name} is gone in Ray {ray.__version__}"
        assert list(inspect.signature(method).parameters)[0] == "self"
    assert ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR == "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
    assert isinstance(ray_constants.ENABLE_RAY_CLUSTER, bool)


# ray is not imported before the Learner: on the plain path, pgdist sets the loopback setting before it is
START = textwrap.dedent(
    """
    import json, os
    import psutil
    from pgdist import Config, Learner
    from tests.listening import is_loopback, listening_addresses
    with Learner(Config(env="CartPole-v1", episodes=4, workers=2)) as learner:
        learner.step()
        me = psutil.Process()
        services = {os.path.basename(part) for child in me.children(recursive=True)
                    for part in child.cmdline() if part.endswith(".py")}  # dashboard.py, monitor.py, ...
        print(json.dumps({"loopback": all(map(is_loopback, listening_addresses(me))), "services": sorted(services)}))
    """
)


@pytest.mark.parametrize("plain", [False, True], ids=["shortcuts", "plain"])
def test_a_local_start_listens_on_loopback_only_on_either_path(plain, request):
    if not plain and not shortcuts_apply(ray.__version__):
        pytest.skip(f"Ray {ray.__version__} takes the plain path")
    env = {key: value for key, value in os.environ.items() if key not in ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_ADDRESS")}
    env[PLAIN_START_VARIABLE] = "1" if plain else "0"
    result = subprocess.run([sys.executable, "-c", START], capture_output=True, text=True, timeout=180,
                            cwd=request.config.rootpath, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = __import__("json").loads(result.stdout.splitlines()[-1])
    assert report["loopback"], report
    started_monitor = "monitor.py" in report["services"]
    assert started_monitor == plain, report["services"]  # the shortcut path starts no autoscaler monitor


NICENESS = """
import json, os
import ray
from pgdist.ray_startup import start_ray

start_ray(None)

@ray.remote
def niceness():
    return os.nice(0)

print(json.dumps({"driver": os.nice(0), "worker": ray.get(niceness.remote())}))
ray.shutdown()
"""


@pytest.mark.skipif(not shortcuts_apply(ray.__version__), reason=f"Ray {ray.__version__} takes the plain path")
def test_a_local_instance_s_workers_are_as_nice_as_the_run(request):
    """Not Ray's default of 15 (this process works beside them), and not less nice than a run under nice."""
    env = {key: value for key, value in os.environ.items() if key not in ("RAY_ADDRESS", PLAIN_START_VARIABLE)}
    for _ in range(2):  # at nice 3 beside the suite's other processes, its raylet may miss Ray's fixed 30 s
        result = subprocess.run([sys.executable, "-c", NICENESS], capture_output=True, text=True, timeout=180,
                                cwd=request.config.rootpath, env=env, preexec_fn=lambda: os.nice(3))
        if "The current node timed out during startup" not in result.stderr:
            break
    assert result.returncode == 0, result.stderr[-3000:]
    report = __import__("json").loads(result.stdout.splitlines()[-1])
    assert report == {"driver": os.nice(0) + 3, "worker": os.nice(0) + 3}, report

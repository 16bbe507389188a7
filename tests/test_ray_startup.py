"""pgdist/ray/private.py and startup.py: the private shortcuts of a local start, gated on the Ray versions they were checked on.

If one of these fails after a Ray upgrade, Ray's internals moved: check the shortcuts
against the new Ray before adding it to CHECKED_RAY. Until then pgdist takes the plain path.
"""

import ast
import importlib
import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import ray
from ray._private import ray_constants
from ray._private.node import Node

from pgdist.ray.private import AGENT_MODE_CHECK, CHECKED_RAY, PLAIN_START_VARIABLE, SKIPPED_SERVICES, shortcuts_apply


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
    from ray._private import services, utils

    assert callable(getattr(utils, AGENT_MODE_CHECK, None)), f"ray._private.utils.{AGENT_MODE_CHECK} is gone"
    # the raylet's agent command asks the module attribute at each start, and goes minimal on an error
    agent_command = inspect.getsource(services.start_raylet)
    assert f"ray._private.utils.{AGENT_MODE_CHECK}() is not None" in agent_command
    assert '"--minimal"' in agent_command


# ray is not imported before the Learner: on the plain path, pgdist sets the loopback setting before it is
START = textwrap.dedent(
    """
    import json, os
    import psutil
    from pgdist import Config, Learner
    from tests.listening import is_loopback, listening_addresses
    with Learner(Config(env="CartPole-v1", episodes=4, workers=2)) as learner:
        learner.step()
        import ray
        worker = ray.get(ray.remote(lambda: os.nice(0)).remote())
        me = psutil.Process()
        children = me.children(recursive=True)
        services = {os.path.basename(part) for child in children
                    for part in child.cmdline() if part.endswith(".py")}  # dashboard.py, monitor.py, ...
        # the raylet's command line holds the command it starts its dashboard agent with
        agent_minimal = any("--minimal" in part for child in children if child.name() == "raylet"
                            for part in child.cmdline())
        print(json.dumps({"loopback": all(map(is_loopback, listening_addresses(me))), "services": sorted(services),
                          "driver": os.nice(0), "worker": worker, "agent_minimal": agent_minimal}))
    """
)


@pytest.mark.parametrize("plain", [False, True], ids=["shortcuts", "plain"])
def test_a_local_start_listens_on_loopback_only_on_either_path(plain, request):
    """Both paths listen on loopback only; the shortcuts start no autoscaler monitor and a minimal dashboard
    agent, and their actors run as nice as the run (here nice 3: not Ray's default of 15, as this process
    works beside them)."""
    if not plain and not shortcuts_apply(ray.__version__):
        pytest.skip(f"Ray {ray.__version__} takes the plain path")
    env = {key: value for key, value in os.environ.items() if key not in ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_ADDRESS")}
    env[PLAIN_START_VARIABLE] = "1" if plain else "0"
    result = subprocess.run([sys.executable, "-c", START], capture_output=True, text=True, timeout=180,
                            cwd=request.config.rootpath, env=env, preexec_fn=lambda: os.nice(3))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["loopback"], report
    started_monitor = "monitor.py" in report["services"]
    assert started_monitor == plain, report["services"]  # the shortcut path starts no autoscaler monitor
    assert report["agent_minimal"] == (not plain), report  # ray[default] is installed: the plain path's agent is full
    assert report["driver"] == os.nice(0) + 3, report
    if not plain:
        assert report["worker"] == os.nice(0) + 3, report


# Ray's own registration loop (ray._private.node.Node.__init__), made to miss its 30 s wait in the first
# MISSES starts: the raylet's node info is not found, and node.py's clock jumps past the wait meanwhile.
MISSED_REGISTRATION = """
import json, sys, time, warnings
import psutil
import ray
from ray._private import node, services

MISSES = 2
state = {"starts": 0, "offset": 0.0, "half_started": []}
start_ray_processes, get_node = node.Node.start_ray_processes, services.get_node


def counted_start(self, *args, **kwargs):
    state["starts"] += 1
    return start_ray_processes(self, *args, **kwargs)


def missed_get_node(*args, **kwargs):
    if state["starts"] <= MISSES:  # a global: read at each call
        state["half_started"] += [p.pid for p in psutil.Process().children(recursive=True)]
        state["offset"] += 31.0
        raise RuntimeError("the raylet has not registered (provoked by the test)")
    return get_node(*args, **kwargs)


class Clock:
    def __getattr__(self, name):
        return getattr(time, name)

    def monotonic(self):
        return time.monotonic() + state["offset"]


node.Node.start_ray_processes, services.get_node, node.time = counted_start, missed_get_node, Clock()
from pgdist.cli import main
from pgdist.ray import start_ray

# two misses: the command's one line; then, in the same process, a start that misses once and starts again
code = main(["train", "--env", "CartPole-v1", "--episodes", "4", "--iterations", "1", "--out", sys.argv[1]])
failed = {"code": code, "starts": state["starts"], "left": [p for p in set(state["half_started"]) if psutil.pid_exists(p)]}
state.update(starts=0, half_started=[])
MISSES = 1
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    started = start_ray(None)
left = [pid for pid in set(state["half_started"]) if psutil.pid_exists(pid)]
answer = ray.get(ray.remote(lambda: 42).remote())
print(json.dumps({"failed": failed, "started": started, "starts": state["starts"],
                  "half_started": len(set(state["half_started"])), "left": left, "answer": answer,
                  "warnings": [str(w.message) for w in caught]}))
ray.shutdown()
"""


def test_a_local_start_whose_raylet_misses_ray_s_registration_wait_starts_once_more(request, tmp_path):
    """Missed twice, the command is one line and leaves no Ray process; missed once, the start ends what it
    half started and starts again, as quietly as the first (Ray wrote into the system config it was given:
    handed the same dict again, it warned of an "unstable API")."""
    env = {key: value for key, value in os.environ.items() if key not in ("RAY_ADDRESS", "PYTEST_CURRENT_TEST")}
    result = subprocess.run([sys.executable, "-c", MISSED_REGISTRATION, str(tmp_path / "run")], capture_output=True,
                            text=True, timeout=240, cwd=request.config.rootpath, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["failed"] == {"code": 2, "starts": 2, "left": []}, report
    errors = [line for line in result.stderr.splitlines() if line.startswith("pgdist: error:")]
    assert errors == [
        "pgdist: error: a local Ray instance did not start: its raylet missed Ray's 30 s registration wait 2 times; "
        "the machine is too loaded to start Ray now (free some CPU, or start Ray yourself with 'ray start --head' "
        "and pass --address)"], result.stderr
    assert "Traceback" not in result.stderr and "unstable" not in result.stderr, result.stderr
    assert report["started"] == "local" and report["starts"] == 2 and report["answer"] == 42, report
    assert report["half_started"] > 0 and report["left"] == [], report  # the first start's processes, ended
    [notice] = [w for w in report["warnings"] if "registration" in w]
    assert "starting it once more" in notice


def test_only_the_ray_package_imports_ray():
    """DESIGN.md: one package imports ray; the old module names are aliases that import it."""
    root = Path(__file__).parent.parent / "pgdist"
    importers = set()
    for path in root.rglob("*.py"):
        for statement in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in statement.names] if isinstance(statement, ast.Import) else \
                [statement.module or ""] if isinstance(statement, ast.ImportFrom) and statement.level == 0 else []
            if any(name == "ray" or name.startswith("ray.") for name in names):
                importers.add(path.relative_to(root).parts[0])
    assert importers == {"ray"}, importers


@pytest.mark.parametrize("old, names", [("pgdist.ray_backend", ["RayBackend", "RayWorkers", "IN_FLIGHT"]),
                                        ("pgdist.ray_startup", ["start_ray", "cluster_nodes"])])
def test_the_old_module_names_still_work_and_say_where_to_import_from(old, names):
    import pgdist.ray

    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match="import from pgdist.ray"):
        module = importlib.import_module(old)
    assert all(getattr(module, name) is getattr(pgdist.ray, name) for name in names)

"""pgdist on a real two-node Ray cluster (two network namespaces, tests/netns_cluster.py), and cluster.yaml.

The cluster is started once for the module. Drivers and ``ray job submit`` run inside
the head's namespace, where the only addresses are 10.77.0.x and loopback. The cluster
tests skip where ``ip netns`` is refused or ray is missing; the cluster.yaml tests need
neither.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import click
import jsonschema
import pytest
import torch
import yaml

from pgdist.policy import Policy
from pgdist.runs import read_metrics

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(HERE) not in sys.path:  # netns_cluster sits beside this file, whatever pytest's import mode
    sys.path.insert(0, str(HERE))

from netns_cluster import ClusterUnavailable, NetnsCluster  # noqa: E402

# A package that is installed nowhere: workers on the other node can import it only if
# pgdist ships it (runtime_env py_modules on ray.init) or Ray ships a job's working dir.
SHIPPED_PACKAGE = "pgdist_cluster_envs"
SHIPPED_ENV = f"{SHIPPED_PACKAGE}.line:LineWalk"

# Runs each item of argv[1], a JSON list of {"config": ..., "env_module": ..., "pauses": [...]},
# with a Learner and writes what it saw to argv[2] as JSON: the Ray node of every actor,
# the file each actor imports "env_module" from (if given), the return and the live workers of
# each iteration, theta before and after training, the actors at the end and their nodes.
# A pause {"after": k, "ready": path, "go": path} stops before iteration k, creates `ready`
# and waits for `go` (the test kills or starts a node in between); with "up": true it then
# waits until every actor is up again.
DRIVER = '''
import importlib, json, os, sys, time
import torch

torch.set_num_threads(1)
import pgdist

runs, out = json.loads(sys.argv[1]), sys.argv[2]


def module_file(worker, name):
    return importlib.import_module(name).__file__


reports = []
for run in runs:
    config = pgdist.Config(**run["config"])
    pauses = {pause["after"]: pause for pause in run.get("pauses", [])}
    report = {}
    with pgdist.Learner(config) as learner:
        report["theta_start"] = pgdist.theta.parameters_to_vector(learner.policy).tolist()
        if config.backend == "ray":
            import ray

            report["nodes"] = learner.backend.nodes()
            if run.get("env_module"):
                calls = [actor.__ray_call__.remote(module_file, run["env_module"]) for actor in learner.backend.actors]
                report["env_files"] = ray.get(calls)
        report["returns"], report["workers"] = [], []
        for iteration in range(config.iterations):
            pause = pauses.get(iteration)
            if pause:
                open(pause["ready"], "w").close()
                deadline = time.monotonic() + 120
                while not os.path.exists(pause["go"]) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if pause.get("up"):
                    learner.backend.nodes()
            metrics = learner.step()
            report["returns"].append(metrics["return_mean"])
            report["workers"].append(metrics["workers"])
        if config.backend == "ray":
            report["actors"] = len(learner.backend.actors)
            report["nodes_at_end"] = learner.backend.nodes()
        report["theta"] = torch.nn.utils.parameters_to_vector(learner.policy.parameters()).detach().tolist()
    reports.append(report)
with open(out, "w") as file:
    json.dump(reports, file)
'''


# --------------------------------------------------------------------------- cluster.yaml


def load_cluster_yaml() -> dict:
    with open(REPO / "cluster.yaml") as file:
        return yaml.safe_load(file)


def prepared(config: dict) -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(config)
    validate_config(config)
    return config


def test_cluster_yaml_passes_rays_own_validation():
    config = prepared(load_cluster_yaml())
    assert config["provider"]["type"] == "local"
    assert config["auth"]["ssh_user"]
    assert config["provider"]["head_ip"] and config["provider"]["worker_ips"]
    [node_type] = config["available_node_types"].values()
    assert node_type["min_workers"] == node_type["max_workers"] == len(config["provider"]["worker_ips"])

    setup = " && ".join(config["setup_commands"])
    assert "constraints.txt" in setup and (REPO / "constraints.txt").exists()
    assert "pip install" in setup and "~/pgdist" in setup
    assert config["file_mounts"]["~/pgdist"] == "."
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    starts = [
        command
        for command in config["head_start_ray_commands"] + config["worker_start_ray_commands"]
        if "ray start" in command
    ]
    assert len(starts) == 2
    assert all("RAY_AUTH_MODE=token" in command for command in starts), starts
    assert "--head" in starts[0] and "--dashboard-host=127.0.0.1" in starts[0]
    assert "$RAY_HEAD_IP:6379" in starts[1]


MISTAKES = {
    "unknown-key": (lambda config: config.update(worker_nodes_typo=[]), jsonschema.ValidationError),
    "commands-not-a-list": (
        lambda config: config.update(head_start_ray_commands="ray start --head"),
        jsonschema.ValidationError,
    ),
    "ssh-user-not-text": (lambda config: config["auth"].update(ssh_user=5), jsonschema.ValidationError),
    "local-without-head-ip": (lambda config: config["provider"].pop("head_ip"), click.ClickException),
}


@pytest.mark.parametrize("mistake, error", MISTAKES.values(), ids=MISTAKES.keys())
def test_rays_validation_catches_a_broken_cluster_yaml(mistake, error):
    """The check above can fail: Ray rejects cluster.yaml with one mistake in it."""
    config = copy.deepcopy(load_cluster_yaml())
    mistake(config)
    with pytest.raises(error):
        prepared(config)


# --------------------------------------------------------------------------- the cluster


@pytest.fixture(scope="module")
def netns_cluster():
    cluster = NetnsCluster()
    try:
        cluster.start()
    except ClusterUnavailable as reason:
        pytest.skip(f"cannot run a two-node Ray cluster in network namespaces here: {reason}")
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def cluster(netns_cluster):
    """The module's cluster with both of its nodes up (a test before may have lost the worker node)."""
    netns_cluster.ensure_worker_node()
    return netns_cluster


@pytest.fixture
def shipped_env_root(cluster):
    """The driver's folder, which only the head's machine has, holding SHIPPED_PACKAGE.

    SHIPPED_PACKAGE is a copy of envs/line.py under a name installed nowhere.
    """
    root = Path(tempfile.mkdtemp(prefix="driver-", dir=cluster.head_only_dir))
    package = root / SHIPPED_PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text("")
    shutil.copy(REPO / "envs" / "line.py", package / "line.py")
    return root


@dataclass
class Driver:
    out: Path
    log: Path
    timeout: float
    process: subprocess.Popen | None = None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]

    def finish(self) -> list[dict]:
        """Wait for the driver; fail with its output unless it wrote its report."""
        try:
            self.process.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"the driver did not finish in {self.timeout:.0f} s:\n{self.output()}")
        assert self.process.returncode == 0, self.output()
        return json.loads(self.out.read_text())


def run_driver(cluster, root: Path, runs: list[dict], name: str, timeout: float = 180.0) -> Driver:
    """Start DRIVER with ``runs`` in the head's namespace if ``cluster`` is given, else here (no network)."""
    script = root / f"{name}_driver.py"
    script.write_text(DRIVER)  # its folder is sys.path[0]: SHIPPED_PACKAGE imports in the driver
    driver = Driver(root / f"{name}.json", root / f"{name}.log", timeout)
    argv = [sys.executable, str(script), json.dumps(runs), str(driver.out)]
    with open(driver.log, "w") as log:
        if cluster is None:
            env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
            driver.process = subprocess.Popen(argv, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
        else:
            driver.process = cluster.popen(argv, cwd=root, stdout=log, stderr=subprocess.STDOUT)
    return driver


def local_twin(config: dict) -> dict:
    return {**config, "backend": "local", "address": None, "workers": None}


def relative_difference(a, b) -> float:
    a, b = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    return float((a - b).norm() / b.norm())


def test_training_uses_both_nodes_and_gives_the_local_backends_theta(cluster, shipped_env_root):
    """One seed, one theta: two actors on two machines give the θ of one worker in one process.

    The second run's env is a module:Class that exists only in the driver's folder: the
    actor on the other node can only have it from pgdist's runtime_env (py_modules).
    """
    cartpole = dict(
        env="CartPole-v1", episodes=40, chunk_episodes=8, envs_per_chunk=4, iterations=3, seed=7,
        workers=2, address=cluster.address,
    )  # fmt: skip
    line_walk = dict(
        env=SHIPPED_ENV, episodes=24, chunk_episodes=6, envs_per_chunk=3, iterations=3, seed=11,
        workers=2, address=cluster.address,
    )  # fmt: skip
    runs = [{"config": cartpole}, {"config": line_walk, "env_module": f"{SHIPPED_PACKAGE}.line"}]
    local = run_driver(None, shipped_env_root, [{"config": local_twin(run["config"])} for run in runs], "local")
    on_cluster = run_driver(cluster, shipped_env_root, runs, "cluster").finish()
    local = local.finish()

    for run, remote, here in zip(runs, on_cluster, local):
        name = run["config"]["env"]
        assert len(set(remote["nodes"])) == 2, f"{name}: actors on {remote['nodes']}, not on both nodes"
        assert remote["actors"] == 2
        assert remote["returns"] == pytest.approx(here["returns"], rel=1e-6), name
        assert relative_difference(remote["theta"], remote["theta_start"]) > 1e-4, f"{name}: θ did not move"
        assert relative_difference(remote["theta"], here["theta"]) <= 1e-5, f"{name}: cluster θ != local θ"

    # The actor on the worker node imported the env from the copy Ray unpacked there.
    report = on_cluster[1]
    worker_node = cluster.node_ids[cluster.worker_ip]
    [env_file] = [path for node, path in zip(report["nodes"], report["env_files"]) if node == worker_node]
    assert env_file.startswith(str(cluster.nodes["worker"].temp_dir) + os.sep), env_file
    assert env_file.endswith(os.path.join(SHIPPED_PACKAGE, "line.py")), env_file


def test_ray_job_submit_of_pgdist_train_writes_a_run_folder(cluster, shipped_env_root, tmp_path):
    """``ray job submit -- pgdist train`` from the head's namespace, as cluster.yaml tells users to."""
    out = tmp_path / "run"
    submission_id = f"pgdist-test-{os.getpid()}-{time.time_ns()}"
    iterations, episodes = 5, 20
    submit = cluster.run(
        [
            cluster.ray, "job", "submit", "--address", cluster.dashboard_url, "--submission-id", submission_id,
            "--working-dir", str(shipped_env_root), "--",
            "pgdist", "train", "--env", SHIPPED_ENV, "--workers", "2", "--episodes", str(episodes),
            "--chunk-episodes", "5", "--envs-per-chunk", "5", "--iterations", str(iterations), "--seed", "3",
            "--out", str(out),
        ],
        timeout=240,
    )  # fmt: skip
    log = submit.stdout + submit.stderr
    assert submit.returncode == 0, log[-5000:]
    assert "2 worker(s)" in log, log[-5000:]

    job = cluster.run_python(JOB_REPORT, cluster.dashboard_url, submission_id, timeout=120)
    assert job.returncode == 0, job.stdout + job.stderr
    report = json.loads(job.stdout.strip().splitlines()[-1])
    assert report["status"] == "SUCCEEDED", report
    assert len(set(report["actor_nodes"])) == 2, f"the job's actors ran on {report['actor_nodes']}"

    rows = read_metrics(out)
    assert [int(row["iteration"]) for row in rows] == list(range(1, iterations + 1))
    assert all(int(row["episodes"]) == episodes for row in rows)
    assert all(int(row["steps"]) == episodes * 20 for row in rows)  # LineWalk episodes last 20 steps
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert checkpoint["version"] == iterations
    assert checkpoint["config"]["env"] == SHIPPED_ENV
    Policy(1, 2, checkpoint["config"]["hidden"]).load_state_dict(checkpoint["policy"])


# The job's status and the nodes of its rollout actors, from the head's namespace
# (argv: dashboard address, submission id); prints them last, as JSON.
JOB_REPORT = """
import json, sys
from ray.job_submission import JobSubmissionClient
from ray.util.state import list_actors

address, submission_id = sys.argv[1], sys.argv[2]
info = JobSubmissionClient(address).get_job_info(submission_id)
actors = list_actors(
    address=address,
    filters=[("class_name", "=", "RayRolloutWorker"), ("job_id", "=", info.job_id)],
    detail=True,
    raise_on_missing_output=False,
)
print(json.dumps({"status": str(info.status.value), "actor_nodes": [actor.node_id for actor in actors]}))
"""


def test_a_node_lost_mid_run_and_started_again_gets_its_actor_back(cluster, shipped_env_root):
    """Kill every process of the worker node before iteration 3 of 7; start it again before iteration 5.

    The lost actor's chunks run again on the head's actor meanwhile (chunks own their randomness).
    Ray restarts the lost actor (max_restarts); with the head's CPU taken, it waits for a node with
    a free CPU: the worker node once it has rejoined, under a new node id. From then on both nodes
    take chunks again, and the run ends at the θ of the local backend.
    """
    config = dict(
        env="CartPole-v1", episodes=40, chunk_episodes=8, envs_per_chunk=4, iterations=7, seed=5,
        workers=2, address=cluster.address,
    )  # fmt: skip
    lost, back = (
        {"after": after, "ready": str(shipped_env_root / f"ready-{after}"), "go": str(shipped_env_root / f"go-{after}")}
        for after in (2, 4)
    )
    back["up"] = True
    local = run_driver(None, shipped_env_root, [{"config": local_twin(config)}], "local")
    driver = run_driver(cluster, shipped_env_root, [{"config": config, "pauses": [lost, back]}], "cluster")
    wait_for_pause(driver, lost)
    cluster.kill_worker_node()
    Path(lost["go"]).touch()
    wait_for_pause(driver, back)
    cluster.ensure_worker_node()
    Path(back["go"]).touch()
    [remote] = driver.finish()
    [here] = local.finish()

    assert len(set(remote["nodes"])) == 2, remote["nodes"]
    assert remote["workers"][2:4] == [1, 1], f"the backend did not notice the lost actor: {remote['workers']}"
    assert remote["workers"][4:] == [2, 2, 2], f"the restarted actor took no chunks: {remote['workers']}"
    assert remote["actors"] == 2
    rejoined = cluster.node_ids[cluster.worker_ip]
    assert rejoined not in remote["nodes"] and rejoined in remote["nodes_at_end"], (remote, rejoined)
    assert len(remote["returns"]) == config["iterations"]
    assert remote["returns"] == pytest.approx(here["returns"], rel=1e-6)
    assert relative_difference(remote["theta"], here["theta"]) <= 1e-5


def wait_for_pause(driver: Driver, pause: dict) -> None:
    deadline = time.monotonic() + driver.timeout
    while not Path(pause["ready"]).exists():
        if driver.process.poll() is not None or time.monotonic() > deadline:
            driver.process.kill()
            pytest.fail(f"the driver never reached its pause before iteration {pause['after'] + 1}:\n{driver.output()}")
        time.sleep(0.05)

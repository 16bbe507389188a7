"""A real two-node Ray cluster on one machine: each node in its own network namespace.

RAY-NOTES.md item 4. The head runs in namespace ``<prefix>-a`` at 10.77.0.1, the
worker node in ``<prefix>-b`` at 10.77.0.2, the two joined by a veth pair. Nothing
else is reachable from inside the namespaces (no default route), so every address a
test can use is 10.77.0.x or the namespaces' own loopback.

Each node is ``ray start --block`` as a child process in a session of its own, with
its own ``--temp-dir``, one CPU and token authentication: a token made for this
cluster alone is handed to every node, driver and ``ray job submit`` through
``RAY_AUTH_TOKEN`` (``~/.ray/auth_token`` is neither read nor written). A node is
ended by PID: its process group, then any process left in its namespace. ``ray
stop`` is never used, since it ends every Ray process on the machine by name.

Both "machines" share one filesystem. So that code reaches the worker node only the
ways it would reach a real second machine (Ray's runtime_env, an installed package),
the worker node's processes run with empty folders mounted over the head's temp dir
and over ``head_only_dir`` (put a driver's own files there). The mounts live in the
mount namespace ``ip netns exec`` makes for the worker node; other commands run in its
network namespace still see everything.

    with NetnsCluster() as cluster:
        cluster.run_python("import ray; ray.init(address=%r)" % cluster.address)

``NetnsCluster.start`` raises ``ClusterUnavailable`` where namespaces cannot be
made or ray is not installed; tests turn that into a skip.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

SUBNET = "10.77.0"
HEAD_IP = f"{SUBNET}.1"
WORKER_IP = f"{SUBNET}.2"
GCS_PORT = 6379
DASHBOARD_PORT = 8265
OBJECT_STORE_BYTES = 100 * 1024 * 1024


class ClusterUnavailable(RuntimeError):
    """This machine cannot host the cluster (no ``ip netns``, no permission, no ray): skip, not fail."""


class ClusterError(RuntimeError):
    """The cluster was possible here but did not come up; the message carries the nodes' output."""


def ray_executable() -> str | None:
    """The ``ray`` command of this interpreter's environment, else the one on PATH."""
    beside = Path(sys.executable).parent / "ray"
    if beside.exists():
        return str(beside)
    return shutil.which("ray")


class Node:
    """One ``ray start --block`` process in a namespace, and where its output goes."""

    def __init__(self, name: str, namespace: str, ip: str, temp_dir: Path, process: subprocess.Popen, log: Path):
        self.name = name
        self.namespace = namespace
        self.ip = ip
        self.temp_dir = temp_dir
        self.process = process
        self.log = log

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


class NetnsCluster:
    """Head in ``<prefix>-a`` (10.77.0.1), one worker node in ``<prefix>-b`` (10.77.0.2)."""

    def __init__(self, prefix: str | None = None, start_timeout: float = 60.0, node_env: dict | None = None):
        self.prefix = prefix or f"pgd-{os.getpid()}"
        self.head_namespace = f"{self.prefix}-a"
        self.worker_namespace = f"{self.prefix}-b"
        self.head_veth = f"{self.prefix}-va"
        self.worker_veth = f"{self.prefix}-vb"
        if len(self.head_veth) > 15:  # Linux interface names: IFNAMSIZ - 1
            raise ValueError(f"prefix {self.prefix!r} too long for interface names")
        self.head_ip = HEAD_IP
        self.worker_ip = WORKER_IP
        self.address = f"{HEAD_IP}:{GCS_PORT}"
        self.dashboard_url = f"http://127.0.0.1:{DASHBOARD_PORT}"  # the head namespace's own loopback
        self.start_timeout = start_timeout
        self.node_env = dict(node_env or {})
        self.token = secrets.token_hex(32)
        self.ray = ray_executable()
        self.root: Path | None = None
        # Files only the head's machine has (a driver's folder, say): hidden from the worker node.
        self.head_only_dir: Path | None = None
        self.nodes: dict[str, Node] = {}
        self.node_ids: dict[str, str] = {}  # node address -> Ray node id, as last seen alive
        self.lost_node_ids: list[str] = []
        self._namespaces: list[str] = []

    # -- life cycle ---------------------------------------------------------------

    def __enter__(self) -> NetnsCluster:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def start(self) -> None:
        if self.ray is None:
            raise ClusterUnavailable("the ray command is not installed")
        if shutil.which("ip") is None:
            raise ClusterUnavailable("the ip command (iproute2) is not installed")
        try:
            self._make_network()
            # Short paths: Ray's socket paths live under the temp dir and have a length limit.
            self.root = Path(tempfile.mkdtemp(prefix="pgd", dir="/tmp"))
            self.head_only_dir = self.root / "head-only"
            self.head_only_dir.mkdir()
            self.start_node("head")
            self.start_node("worker")
            self.wait_for_nodes(2)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """End every process of the cluster by PID, delete its namespaces and veths and temp dirs."""
        for name in list(self.nodes):
            self.stop_node(name)
        for namespace in reversed(self._namespaces):
            self._kill_namespace(namespace, signal.SIGKILL)
            subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)
        self._namespaces = []
        # A veth pair goes with its namespaces; this only matters if setup stopped half way.
        for veth in (self.head_veth, self.worker_veth):
            if Path(f"/sys/class/net/{veth}").exists():
                subprocess.run(["ip", "link", "delete", veth], capture_output=True)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    # -- network ------------------------------------------------------------------

    def _make_network(self) -> None:
        for namespace in (self.head_namespace, self.worker_namespace):
            result = subprocess.run(["ip", "netns", "add", namespace], capture_output=True, text=True)
            if result.returncode != 0:
                raise ClusterUnavailable(f"`ip netns add {namespace}` was refused: {result.stderr.strip()}")
            self._namespaces.append(namespace)
        commands = [
            ["ip", "link", "add", self.head_veth, "type", "veth", "peer", "name", self.worker_veth],
            ["ip", "link", "set", self.head_veth, "netns", self.head_namespace],
            ["ip", "link", "set", self.worker_veth, "netns", self.worker_namespace],
            ["ip", "-n", self.head_namespace, "addr", "add", f"{HEAD_IP}/24", "dev", self.head_veth],
            ["ip", "-n", self.worker_namespace, "addr", "add", f"{WORKER_IP}/24", "dev", self.worker_veth],
            ["ip", "-n", self.head_namespace, "link", "set", self.head_veth, "up"],
            ["ip", "-n", self.worker_namespace, "link", "set", self.worker_veth, "up"],
            ["ip", "-n", self.head_namespace, "link", "set", "lo", "up"],
            ["ip", "-n", self.worker_namespace, "link", "set", "lo", "up"],
        ]
        for command in commands:
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise ClusterUnavailable(f"`{' '.join(command)}` failed: {result.stderr.strip()}")

    def namespace_pids(self, namespace: str) -> list[int]:
        result = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True)
        return [int(pid) for pid in result.stdout.split()]

    def _kill_namespace(self, namespace: str, sig: int) -> None:
        for pid in self.namespace_pids(namespace):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    # -- nodes --------------------------------------------------------------------

    def env(self, **extra: str) -> dict:
        """The environment for anything that talks to this cluster: token auth with its token."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        env.update(
            RAY_AUTH_MODE="token",
            RAY_AUTH_TOKEN=self.token,
            RAY_USAGE_STATS_ENABLED="0",
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    def in_namespace(self, namespace: str, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", namespace, *argv]

    def start_node(self, name: str) -> Node:
        """Start the head or the worker node. A worker node whose ``ray start`` gives up is started
        once more: on a crowded machine the head's GCS can miss Ray's deadline for the new node's
        registration ("Failed to get node info: Deadline Exceeded"), which is no fault of pgdist's."""
        try:
            return self._start_node(name)
        except ClusterError:
            if name == "head":
                raise
            self.stop_node(name, signal.SIGKILL)
            return self._start_node(name)

    def _start_node(self, name: str) -> Node:
        head = name == "head"
        namespace = self.head_namespace if head else self.worker_namespace
        ip = self.head_ip if head else self.worker_ip
        # A fresh folder for every start: a node started again must not meet its old sockets.
        temp_dir = Path(tempfile.mkdtemp(prefix=name[0], dir=self.root))
        argv = [
            self.ray, "start", "--block", f"--node-ip-address={ip}", "--num-cpus=1",
            f"--temp-dir={temp_dir}", "--disable-usage-stats",
            f"--object-store-memory={OBJECT_STORE_BYTES}",
        ]  # fmt: skip
        if head:
            argv += [
                "--head", f"--port={GCS_PORT}", "--include-dashboard=true",
                "--dashboard-host=127.0.0.1", f"--dashboard-port={DASHBOARD_PORT}",
            ]  # fmt: skip
        else:
            argv += [f"--address={self.address}"]
            # One filesystem serves both "machines". So that the worker node sees no more of
            # the head's files than a real second machine would, it runs with empty folders
            # mounted over the head's temp dir and the head-only folder. `ip netns exec` gives
            # it a mount namespace of its own, so these mounts stay inside it.
            hidden = [self.nodes["head"].temp_dir, self.head_only_dir]
            mounts = " && ".join(f"mount -t tmpfs -o size=1m pgd-hidden {shlex.quote(str(path))}" for path in hidden)
            argv = ["sh", "-c", f'{mounts} && exec "$@"', "sh", *argv]
        log = temp_dir / "ray-start.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(
                self.in_namespace(namespace, argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env(**self.node_env),
                cwd=temp_dir,  # not the repository: workers must get code the way a real node would
                start_new_session=True,
            )
        node = self.nodes[name] = Node(name, namespace, ip, temp_dir, process, log)
        deadline = time.monotonic() + self.start_timeout
        while "Ray runtime started" not in node.output():
            if process.poll() is not None:
                raise ClusterError(f"ray start of the {name} node exited {process.returncode}:\n{node.output()}")
            if time.monotonic() > deadline:
                raise ClusterError(f"the {name} node did not start in {self.start_timeout:.0f} s:\n{node.output()}")
            time.sleep(0.2)
        return node

    def stop_node(self, name: str, sig: int = signal.SIGTERM, grace: float = 3.0) -> None:
        """End a node by PID: its ``ray start`` process group, then whatever is left in its namespace.

        SIGKILL ends it as a crash would (a real node loss); SIGTERM lets Ray shut down.
        """
        node = self.nodes.pop(name, None)
        if node is None:
            return
        try:
            os.killpg(node.process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            node.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(node.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            node.process.wait()
        deadline = time.monotonic() + grace
        while self.namespace_pids(node.namespace) and time.monotonic() < deadline:
            time.sleep(0.1)
        self._kill_namespace(node.namespace, signal.SIGKILL)

    def kill_worker_node(self) -> None:
        """A real node loss: SIGKILL every process of the worker node, raylet and actors alike."""
        node = self.nodes.pop("worker")
        if self.worker_ip in self.node_ids:
            self.lost_node_ids.append(self.node_ids.pop(self.worker_ip))
        self._kill_namespace(node.namespace, signal.SIGKILL)
        try:
            os.killpg(node.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        node.process.wait()

    # -- running things on the cluster ---------------------------------------------

    def run(self, argv: list[str], *, namespace: str | None = None, timeout: float = 120.0, cwd=None, env=None):
        """Run a command inside a namespace (the head's by default) with the cluster's token."""
        return subprocess.run(
            self.in_namespace(namespace or self.head_namespace, argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=cwd,
            env=env or self.env(),
            stdin=subprocess.DEVNULL,
        )

    def popen(self, argv: list[str], *, namespace: str | None = None, cwd=None, env=None, **kwargs):
        return subprocess.Popen(
            self.in_namespace(namespace or self.head_namespace, argv),
            cwd=cwd,
            env=env or self.env(),
            stdin=subprocess.DEVNULL,
            **kwargs,
        )

    def run_python(self, source: str, *args: str, namespace: str | None = None, timeout: float = 120.0, cwd=None):
        return self.run(
            [sys.executable, "-c", textwrap.dedent(source), *args], namespace=namespace, timeout=timeout, cwd=cwd
        )

    def alive_nodes(self) -> list[dict]:
        """The alive nodes as the head's GCS sees them: ``[{"id": ..., "ip": ...}]``."""
        return self.wait_for_nodes(0)

    def wait_for_nodes(self, count: int, timeout: float | None = None) -> list[dict]:
        """Poll, from a driver in the head's namespace, until ``count`` nodes are alive.

        Nodes lost with ``kill_worker_node`` do not count, even while the GCS still
        thinks them alive (it notices a dead node only after its health checks fail).
        """
        timeout = self.start_timeout if timeout is None else timeout
        excluded = ",".join(self.lost_node_ids) or "-"
        result = self.run_python(PROBE, self.address, str(count), str(timeout), excluded, timeout=timeout + 60)
        lines = result.stdout.strip().splitlines()
        if result.returncode != 0 or not lines:
            raise ClusterError(
                f"{count} nodes were not alive after {timeout:.0f} s:\n{result.stdout}\n{result.stderr}\n"
                + "\n".join(f"--- {node.name} node:\n{node.output()}" for node in self.nodes.values())
            )
        alive = json.loads(lines[-1])
        self.node_ids.update({node["ip"]: node["id"] for node in alive})
        return alive

    def ensure_worker_node(self) -> None:
        """Start the worker node again if a test has lost it, and wait until it has joined."""
        if "worker" not in self.nodes:
            self.start_node("worker")
            self.wait_for_nodes(2)

    def describe(self) -> str:
        return f"head {self.head_namespace} {self.address}, worker node {self.worker_namespace} {self.worker_ip}"


# A driver that joins the cluster and waits until the wanted number of nodes is alive
# (argv: address, count, timeout, excluded node ids joined by commas or "-"); it prints
# the alive nodes' ids and addresses last, as JSON.
PROBE = """
import json, logging, sys, time
import ray

address, count, timeout, excluded = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4].split(",")
ray.init(address=address, logging_level=logging.WARNING, include_dashboard=False)
deadline = time.monotonic() + timeout
while True:
    alive = [
        {"id": node["NodeID"], "ip": node["NodeManagerAddress"]}
        for node in ray.nodes()
        if node["Alive"] and node["NodeID"] not in excluded
    ]
    if len(alive) >= count or time.monotonic() > deadline:
        break
    time.sleep(0.2)
ray.shutdown()
print(json.dumps(alive))
sys.exit(0 if len(alive) >= count else 1)
"""

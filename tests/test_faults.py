"""Faults a run folder meets, done for real: signals to a real `pgdist train`, SIGKILL, SIGSTOP,
two processes racing for one folder, a checkpoint cut short on disk, readers while a run is written.

Every run that goes on after a fault is compared with one run nobody disturbed: the same
metrics rows (N episodes in every iteration) and the same theta.
"""

import csv
import math
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest
import torch

from pgdist.metrics import TIMINGS, read_metrics

N = 20
ITERATIONS = 8
FLAGS = ["--env", "CartPole-v1", "--episodes", str(N), "--chunk-episodes", "5", "--lr", "0.05",
         "--iterations", str(ITERATIONS), "--checkpoint-every", "4"]
TIMEOUT = 180


class Command:
    """A real pgdist process in a session of its own; its stdout is read line by line as it comes."""

    def __init__(self, *args, cwd):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pgdist.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=cwd, start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.pid = self.process.pid
        self.lines = queue.Queue()
        self.stdout = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.stdout.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_for_iteration(self, iteration: int) -> None:
        """Block until the process prints its progress line of ``iteration``."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            if line is None:
                raise AssertionError(f"pgdist ended before iteration {iteration}: {self.process.stderr.read()}")
            if re.match(rf"iteration\s+{iteration}\s", line):
                return

    def finish(self) -> tuple[int, str]:
        """The exit code and stderr."""
        self.process.wait(timeout=TIMEOUT)
        return self.process.returncode, self.process.stderr.read()


def pgdist(*args, cwd):
    return subprocess.run([sys.executable, "-m", "pgdist.cli", *args], capture_output=True, text=True,
                          timeout=TIMEOUT, cwd=cwd)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The undisturbed run every disturbed one must equal."""
    folder = tmp_path_factory.mktemp("straight") / "run"
    result = pgdist("train", *FLAGS, "--backend", "local", "--out", str(folder), cwd=folder.parent)
    assert result.returncode == 0, result.stderr
    return folder


def assert_same_run(folder, straight):
    """Every iteration with N episodes, the same rows (but the timings) and theta (1e-5) as the straight run."""
    rows, expected = read_metrics(folder), read_metrics(straight)
    assert [int(row["iteration"]) for row in rows] == list(range(1, ITERATIONS + 1))
    assert all(int(row["episodes"]) == N for row in rows)
    for row, reference in zip(rows, expected):
        for column, value in reference.items():
            if column not in TIMINGS:
                assert value == row[column] or math.isclose(float(value), float(row[column]), rel_tol=1e-5), column
    final = torch.load(folder / "checkpoint.pt", weights_only=True)
    reference = torch.load(straight / "checkpoint.pt", weights_only=True)
    assert final["version"] == ITERATIONS and final["finished"]
    for name, tensor in reference["policy"].items():
        torch.testing.assert_close(final["policy"][name], tensor, rtol=1e-5, atol=1e-5)
    jsonl = (folder / "metrics.jsonl").read_text().splitlines()
    assert len(jsonl) == ITERATIONS


def the_one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    [line] = stderr.strip().splitlines()
    return line


def kept_iteration(line: str, folder) -> int:
    """The iteration the line says its checkpoint holds, checked against the file."""
    kept = int(re.search(r"checkpoint\.pt \(iteration (\d+)\)", line)[1])
    assert torch.load(folder / "checkpoint.pt", weights_only=True)["version"] == kept
    assert f"continue with 'pgdist resume {folder}'" in line
    return kept


def resume_and_compare(folder, straight):
    result = pgdist("resume", str(folder), cwd=folder.parent)
    assert result.returncode == 0, result.stderr
    assert_same_run(folder, straight)


class Descendants:
    """Every process started under ``pid`` while it runs (Ray's raylet, GCS, actors), polled in the background."""

    def __init__(self, pid: int):
        self.root = psutil.Process(pid)
        self.seen = {}
        threading.Thread(target=self._poll, daemon=True).start()

    def _poll(self):
        while self.root.is_running() and self.root.status() != psutil.STATUS_ZOMBIE:
            try:
                for process in self.root.children(recursive=True):
                    self.seen.setdefault(process.pid, process)
            except psutil.NoSuchProcess:
                return
            time.sleep(0.05)

    def names(self) -> set[str]:
        return {process.name() for process in self.seen.values() if process.is_running()}

    def alive_after(self, seconds: float) -> list:
        return psutil.wait_procs(list(self.seen.values()), timeout=seconds)[1]


def test_ctrl_c_on_ray_ends_after_the_iteration_and_resumes_exactly(tmp_path, straight):
    """Ctrl-C in a terminal: SIGINT to the whole process group, Ray's processes included."""
    folder = tmp_path / "run"
    run = Command("train", *FLAGS, "--backend", "ray", "--workers", "2", "--out", str(folder), cwd=tmp_path)
    descendants = Descendants(run.pid)
    run.wait_for_iteration(1)
    assert "raylet" in descendants.names()
    os.killpg(run.pid, signal.SIGINT)
    code, stderr = run.finish()
    line = the_one_line(stderr)  # and nothing of Ray's: no token notice, no worker logs
    assert all(out.startswith(("pgdist: ", "iteration ")) for out in run.stdout), run.stdout
    assert code == 130
    assert line.startswith("pgdist: interrupted by SIGINT after iteration")
    assert 1 <= kept_iteration(line, folder) < ITERATIONS
    alive = descendants.alive_after(10)
    assert not alive, f"Ray processes left: {alive}"
    resume_and_compare(folder, straight)


def test_a_second_signal_stops_at_once_and_keeps_the_previous_checkpoint(tmp_path, straight):
    folder = tmp_path / "run"
    run = Command("train", *FLAGS, "--backend", "local", "--out", str(folder), cwd=tmp_path)
    run.wait_for_iteration(2)
    # two different signals, since a second of the same kind may merge with the first while pending;
    # Python runs both handlers, but in the order its threads caught them, so either may be the second
    os.kill(run.pid, signal.SIGINT)
    os.kill(run.pid, signal.SIGTERM)
    code, stderr = run.finish()
    line = the_one_line(stderr)
    assert code in (128 + signal.SIGINT, 128 + signal.SIGTERM), (code, line)
    second = signal.Signals(code - 128).name
    assert line.startswith(f"pgdist: stopped at once by a second {second}"), line
    during = re.search(r"during iteration (\d+)", line)
    kept = kept_iteration(line, folder)
    assert during is None or int(during[1]) == kept + 1
    resume_and_compare(folder, straight)


def test_sigkill_of_the_driver_then_resume_gives_the_same_theta(tmp_path, straight):
    folder = tmp_path / "run"
    run = Command("train", *FLAGS, "--backend", "local", "--out", str(folder), cwd=tmp_path)
    run.wait_for_iteration(3)
    os.kill(run.pid, signal.SIGKILL)
    assert run.finish()[0] == -signal.SIGKILL
    resume_and_compare(folder, straight)


def test_two_trains_race_for_one_folder_and_one_writes(tmp_path, straight):
    folder = tmp_path / "run"
    racers = [Command("train", *FLAGS, "--backend", "local", "--out", str(folder), cwd=tmp_path) for _ in range(2)]
    results = {racer.pid: racer.finish() for racer in racers}
    codes = sorted(code for code, _ in results.values())
    assert codes == [0, 2], results
    [winner] = [pid for pid, (code, _) in results.items() if code == 0]
    [loser_stderr] = [stderr for code, stderr in results.values() if code == 2]
    line = the_one_line(loser_stderr)
    # the loser found the winner writing, or (on a slow start) its run already there
    assert f"{folder} is being written by PID {winner} " in line or "already holds a run" in line, line
    assert_same_run(folder, straight)


def snapshot(folder):
    return {path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in folder.iterdir()}


def test_a_run_being_written_has_readers_and_refuses_a_second_writer(tmp_path):
    folder = tmp_path / "run"
    flags = [*FLAGS[:-4], "--iterations", "100000", "--backend", "local", "--out", str(folder)]
    run = Command("train", *flags, cwd=tmp_path)
    run.wait_for_iteration(2)
    readers = [subprocess.Popen([sys.executable, "-m", "pgdist.cli", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=tmp_path)
               for args in (["eval", str(folder), "--episodes", "5"], ["plot", str(folder), "--out", "now.png"])]
    for reader in readers:
        out, err = reader.communicate(timeout=TIMEOUT)
        assert reader.returncode == 0, err
    assert (tmp_path / "now.png").stat().st_size > 0
    os.kill(run.pid, signal.SIGSTOP)  # the writer holds the lock and writes nothing meanwhile
    try:
        before = snapshot(folder)
        for args in (["train", *FLAGS, "--out", str(folder)], ["resume", str(folder)]):
            refused = pgdist(*args, cwd=tmp_path)
            assert refused.returncode == 2
            line = the_one_line(refused.stderr)
            assert f"pgdist: error: {folder} is being written by PID {run.pid} " in line
        assert snapshot(folder) == before, "the refused writer changed the run folder"
    finally:
        os.kill(run.pid, signal.SIGCONT)
    os.kill(run.pid, signal.SIGTERM)
    code, stderr = run.finish()
    assert code == 143
    line = the_one_line(stderr)
    assert line.startswith("pgdist: interrupted by SIGTERM after iteration")
    kept_iteration(line, folder)


def test_a_checkpoint_cut_short_names_the_previous_one_and_the_command(tmp_path, straight):
    folder = tmp_path / "run"
    shutil.copytree(straight, folder)
    last = folder / f"checkpoint-{ITERATIONS:06d}.pt"
    last.unlink()  # as if the run had stopped after iteration 7, its checkpoint.pt cut short
    (folder / "checkpoint.pt").write_bytes((straight / "checkpoint.pt").read_bytes()[:2000])
    result = pgdist("resume", str(folder), cwd=tmp_path)
    assert result.returncode == 2
    line = the_one_line(result.stderr)
    previous = folder / "checkpoint-000004.pt"
    assert f"{folder / 'checkpoint.pt'} is corrupt or cut short" in line
    assert f"{previous} (iteration 4)" in line
    command = re.search(r"'(pgdist resume [^']+)'", line)[1]
    assert command == f"pgdist resume {folder} --from {previous}"
    result = pgdist(*command.split()[1:], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_same_run(folder, straight)


def test_metrics_readers_skip_a_row_still_being_written(tmp_path, straight):
    shutil.copytree(straight, tmp_path / "run")
    metrics = tmp_path / "run" / "metrics.csv"
    whole = metrics.read_bytes()
    with open(metrics, "ab") as file:
        file.write(b"9,20,31")  # a row cut off mid-write
    assert read_metrics(tmp_path / "run") == read_metrics(straight)
    with open(metrics, newline="") as file:
        assert len(list(csv.reader(file))) == ITERATIONS + 2  # the header, the rows, the cut one
    assert whole.endswith(b"\n")


def test_python_warnings_come_as_pgdist_lines_once_each(tmp_path):
    result = pgdist("train", "--env", "CartPole-v0", "--episodes", "4", "--iterations", "2", "--backend", "local",
                    "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "pgdist: warning: The environment CartPole-v0 is out of date. You should consider upgrading to version `v1`."
    ]

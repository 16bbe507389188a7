"""`pgdist train` end to end, as a user runs it: a real process, real files."""

import csv
import subprocess
import sys

import torch

from pgdist import Policy


def train(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "pgdist.cli", "train", *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def test_train_writes_metrics_and_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "run"
    result = train("--env", "CartPole-v1", "--episodes", "20", "--iterations", "3", "--backend", "local",
                   "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sum(line.startswith("iteration") for line in result.stdout.splitlines()) == 3
    with open(out / "metrics.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [int(row["iteration"]) for row in rows] == [1, 2, 3]
    for row in rows:
        assert int(row["episodes"]) == 20
        assert int(row["steps"]) >= 20 * 8  # a CartPole episode lasts at least 8 steps
        assert float(row["seconds"]) > 0
        assert 8 <= float(row["return_mean"]) <= 500
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    policy = Policy(4, 2)
    policy.load_state_dict(state["policy"])
    assert state["version"] == 3


def test_train_on_ray_with_an_env_from_the_working_directory(tmp_path, request):
    """A 'module:Class' env imports in the Ray workers as it does in the driver (here: envs/)."""
    out = tmp_path / "run"
    result = train("--env", "envs.line:LineWalk", "--episodes", "16", "--iterations", "2", "--workers", "2",
                   "--hidden", "16", "--out", str(out), cwd=request.config.rootpath)
    assert result.returncode == 0, result.stderr
    with open(out / "metrics.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 2 and all(int(row["steps"]) == 16 * 20 for row in rows)
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["policy"]["net.0.weight"].shape == (16, 1)

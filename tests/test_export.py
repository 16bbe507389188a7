"""A trained run out of pgdist: `pgdist export` (ONNX, TorchScript), `pgdist eval --video`, W&B logging.

The ONNX, video and W&B tests need their extras (pip install 'pgdist[onnx]', '[video]', '[wandb]')
and skip with that reason without them.
"""

import importlib.util
import itertools
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from pgdist.export import action_output
from pgdist.metrics import read_metrics
from pgdist.runs import load_run


def pgdist(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "pgdist.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=env)


def needs(*modules):
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} (an optional extra)")


@pytest.fixture(scope="module", params=["CartPole-v1", "Pendulum-v1"])
def trained_run(request, tmp_path_factory):
    """A run folder after two iterations: a Categorical policy (CartPole), a Gaussian one with tanh-bounded
    actions behind an observation normaliser (Pendulum), both of which the exported file must carry."""
    out = tmp_path_factory.mktemp("run") / request.param
    normalised = ["--normalize-observations", "--bound-actions", "tanh"] if request.param == "Pendulum-v1" else []
    result = pgdist("train", "--env", request.param, "--episodes", "8", "--iterations", "2", "--backend", "local",
                    "--hidden", "16", "--out", str(out), *normalised, cwd=request.config.rootpath)
    assert result.returncode == 0, result.stderr
    return out


def observations(run, count=32):
    config, policy = load_run(run)
    size = 4 if config.env == "CartPole-v1" else 3
    if config.normalize_observations:  # the checkpoint's statistics, not the identity of a new normaliser
        assert not torch.equal(policy.normalizer.std, torch.ones(size))
    return policy, 3 * torch.randn(count, size, generator=torch.Generator().manual_seed(0))


def expected_actions(run, policy, states):
    """The policy's probabilities or mean action; Pendulum's mean squashed into its bounds of +-2 (bound_actions: tanh)."""
    with torch.no_grad():
        output = action_output(policy(states))
    return 2 * torch.tanh(output) if load_run(run)[0].bound_actions == "tanh" else output


def test_torchscript_export_gives_the_policys_actions(trained_run, tmp_path, request):
    out = tmp_path / "policy.pt"
    result = pgdist("export", str(trained_run), "--format", "torchscript", "--out", str(out), cwd=request.config.rootpath)
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    policy, states = observations(trained_run)
    exported = torch.jit.load(str(out))
    torch.testing.assert_close(exported(states), expected_actions(trained_run, policy, states), rtol=0, atol=1e-6)


@needs("onnxruntime", "onnxscript")
def test_onnx_export_gives_the_policys_actions(trained_run, tmp_path, request):
    import onnxruntime

    out = tmp_path / "policy.onnx"
    result = pgdist("export", str(trained_run), "--format", "onnx", "--out", str(out), cwd=request.config.rootpath)
    assert result.returncode == 0, result.stderr
    policy, states = observations(trained_run)
    session = onnxruntime.InferenceSession(str(out))
    actions = session.run(None, {"observations": states.numpy()})[0]
    np.testing.assert_allclose(actions, expected_actions(trained_run, policy, states).detach().numpy(), rtol=1e-5, atol=1e-6)


@needs("moviepy", "pygame")
def test_eval_records_a_video(trained_run, tmp_path, request):
    out = tmp_path / "episodes.gif"
    result = pgdist("eval", str(trained_run), "--episodes", "2", "--video", str(out), cwd=request.config.rootpath)
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 1000 and out.read_bytes()[:3] == b"GIF"
    assert str(out) in result.stdout


def test_a_video_of_an_env_that_cannot_render_is_one_line(tmp_path, request):
    run = tmp_path / "line"
    trained = pgdist("train", "--env", "envs.line:LineWalk", "--episodes", "4", "--iterations", "1", "--backend", "local",
                     "--out", str(run), cwd=request.config.rootpath)
    assert trained.returncode == 0, trained.stderr
    result = pgdist("eval", str(run), "--video", str(tmp_path / "x.mp4"), cwd=request.config.rootpath)
    assert result.returncode == 2
    assert "pgdist: error:" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@needs("wandb")
def test_wandb_logs_every_iteration_offline(tmp_path, request):
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true"}
    out = tmp_path / "run"
    result = pgdist("train", "--env", "CartPole-v1", "--episodes", "8", "--iterations", "3", "--backend", "local",
                    "--wandb", "pgdist-test", "--out", str(out), cwd=request.config.rootpath, env=env)
    assert result.returncode == 0, result.stderr
    [log] = list((out / "wandb").glob("offline-run-*/run-*.wandb"))  # W&B's files live in the run folder
    # the offline log holds each history row, then the summary it updates, as protocol buffer records: the
    # key, then the value's JSON text
    logged = [float(value) for value in re.findall(rb"\x12\x0breturn_mean\x82\x01.([-0-9.e+]+)", log.read_bytes())]
    assert [value for value, _ in itertools.groupby(logged)] == [float(row["return_mean"]) for row in read_metrics(out)]

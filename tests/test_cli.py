"""`pgdist train` end to end, as a user runs it: a real process, real files."""

import csv
import json
import shutil
import subprocess
import sys

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from pgdist import Policy
from pgdist.metrics import TIMINGS


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


def test_flags_override_the_config_file_and_stop_return_stops(tmp_path, pgdist_here):
    config_file = tmp_path / "line.yaml"
    config_file.write_text("env: envs.line:LineWalk\nepisodes: 8\niterations: 50\nbackend: local\nstop_return: 1000\n")
    out = tmp_path / "run"
    code, _, err = pgdist_here("train", "--config", str(config_file), "--iterations", "2", "--episodes", "4",
                               "--out", str(out))
    assert code == 0, err
    rows = list(csv.DictReader(open(out / "metrics.csv", newline="")))
    assert len(rows) == 2 and all(int(row["episodes"]) == 4 for row in rows)
    saved = (out / "config.yaml").read_text()
    assert "episodes: 4" in saved and "iterations: 2" in saved and "env: envs.line:LineWalk" in saved
    # a stop_return every iteration reaches stops after the first
    code, stdout, err = pgdist_here("train", "--config", str(config_file), "--stop-return", "0",
                                    "--out", str(tmp_path / "stopped"))
    assert code == 0, err
    assert len(list(csv.DictReader(open(tmp_path / "stopped" / "metrics.csv", newline="")))) == 1
    assert "stop_return" in stdout


def test_a_bad_flag_value_names_the_flag(tmp_path):
    result = train("--episodes", "many", "--backend", "local", "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 2
    assert "--episodes: episodes='many' is invalid: expected a whole number" in result.stderr
    assert "Traceback" not in result.stderr


def test_eval_reports_the_mean_return_of_a_trained_run(tmp_path, pgdist_here):
    out = tmp_path / "run"
    code, _, err = pgdist_here("train", "--env", "envs.line:LineWalk", "--episodes", "64", "--lr", "0.05",
                               "--iterations", "40", "--backend", "local", "--out", str(out))
    assert code == 0, err
    outputs = {}
    for mode in ("sampled", "greedy"):
        flags = ["--greedy"] if mode == "greedy" else []
        code, stdout, err = pgdist_here("eval", str(out), "--episodes", "50", *flags)
        assert code == 0, err
        words = stdout.split()
        assert words[:2] == ["mean", "return"] and words[3] == "±" and words[5:8] == ["over", "50", "episodes"]
        outputs[mode] = float(words[2])
    # random actions score 10 on LineWalk; the trained policy does better, and its greedy actions best
    assert outputs["sampled"] > 12 and outputs["greedy"] >= outputs["sampled"]


def run_command(*args, cwd):
    return subprocess.run([sys.executable, "-m", "pgdist.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_run_folder_holds_everything(tmp_path, request):
    out = tmp_path / "run"
    result = train("--env", "envs.line:LineWalk", "--episodes", "8", "--iterations", "4", "--backend", "local",
                   "--checkpoint-every", "2", "--out", str(out), cwd=request.config.rootpath)
    assert result.returncode == 0, result.stderr
    names = {path.name for path in out.iterdir()}
    assert {"config.yaml", "metrics.csv", "metrics.jsonl", "checkpoint.pt", "checkpoint-000002.pt",
            "checkpoint-000004.pt", "curve.png"} <= names
    assert any(name.startswith("events.out.tfevents") for name in names)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in lines] == [1, 2, 3, 4]
    assert torch.load(out / "checkpoint.pt", weights_only=True)["finished"] is True


def test_resume_gives_the_uninterrupted_result(tmp_path, request):
    root = request.config.rootpath
    straight, crashed = tmp_path / "straight", tmp_path / "crashed"
    flags = ["--env", "CartPole-v1", "--episodes", "12", "--chunk-episodes", "5", "--lr", "0.05",
             "--iterations", "4", "--checkpoint-every", "2", "--backend", "local"]
    assert train(*flags, "--out", str(straight), cwd=root).returncode == 0
    # a run that died after iteration 3, its last checkpoint at iteration 2
    shutil.copytree(straight, crashed)
    shutil.copy(crashed / "checkpoint-000002.pt", crashed / "checkpoint.pt")
    result = run_command("resume", str(crashed), cwd=root)
    assert result.returncode == 0, result.stderr
    for name in ("metrics.csv",):
        rows = [{k: v for k, v in row.items() if k not in TIMINGS} for row in csv.DictReader(open(crashed / name))]
        expected = [{k: v for k, v in row.items() if k not in TIMINGS} for row in csv.DictReader(open(straight / name))]
        assert rows == expected
    final = torch.load(crashed / "checkpoint.pt", weights_only=True)
    reference = torch.load(straight / "checkpoint.pt", weights_only=True)
    for key, tensor in reference["policy"].items():
        torch.testing.assert_close(final["policy"][key], tensor, rtol=0, atol=0)
    events = EventAccumulator(str(crashed))  # TensorBoard: iterations 3 and 4 once, as resumed
    events.Reload()
    assert [event.step for event in events.Scalars("return_mean")] == [1, 2, 3, 4]
    for index, state in reference["optimizer"]["state"].items():  # torch.optim.Adam's format
        assert final["optimizer"]["state"][index]["step"] == state["step"] == 4
        for moment in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(final["optimizer"]["state"][index][moment], state[moment], rtol=0, atol=0)


def test_errors_a_user_can_act_on(tmp_path, pgdist_here):
    out = tmp_path / "run"
    assert pgdist_here("train", "--env", "envs.line:LineWalk", "--episodes", "4", "--iterations", "1",
                       "--backend", "local", "--out", str(out))[0] == 0
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    cases = [
        (["resume", str(out)], "finished at iteration 1"),
        (["train", "--episodes", "4", "--backend", "local", "--out", str(out)], "already holds a run"),
        (["eval", str(tmp_path / "nowhere")], "no such directory"),
        (["resume", str(tmp_path)], "has no checkpoint.pt"),
    ]
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    cases.append((["eval", str(tmp_path / "corrupt")], "is corrupt"))
    older = tmp_path / "older"  # a checkpoint with Adam's state in pgdist 0.1's own format
    shutil.copytree(out, older)
    state = torch.load(older / "checkpoint.pt", weights_only=True)
    adam = {"t": 1, "m": torch.zeros(3), "v": torch.zeros(3)}
    torch.save({**state, "finished": False, "optimizer": adam}, older / "checkpoint.pt")
    cases.append((["resume", str(older)], "no optimizer state this pgdist can continue"))
    for args, words in cases:
        code, _, stderr = pgdist_here(*args)
        assert code == 2, (args, stderr)
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], (args, stderr)
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before, "a failed command changed the run"


def test_an_unreachable_address_fails_fast_with_one_line(tmp_path):
    result = train("--address", "127.0.0.1:1", "--iterations", "1", "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "cannot reach a Ray cluster at 127.0.0.1:1" in line and "--address" in line


def test_info_lists_versions_and_the_environments_here(request):
    result = run_command("info", cwd=request.config.rootpath)
    assert result.returncode == 0, result.stderr
    assert "ray" in result.stdout and "torch" in result.stdout
    assert "envs.line:LineWalk" in result.stdout and "envs.mdp:ChainMDP" in result.stdout


def test_each_command_builds_the_env_s_spaces_once(tmp_path, pgdist_here, monkeypatch):
    """A MuJoCo or Atari env is slow to make: train checks the env before the run folder and hands its
    spaces to the Learner; export reads them with the run."""
    from pgdist import cli, envs, learner

    built = []

    def counted(name):
        built.append(name)
        return spaces_of(name)

    spaces_of = envs.env_spaces
    for module in (envs, cli, learner):
        monkeypatch.setattr(module, "env_spaces", counted)
    out = tmp_path / "run"
    code, _, err = pgdist_here("train", "--env", "CartPole-v1", "--episodes", "4", "--iterations", "1", "--backend",
                               "local", "--out", out)
    assert code == 0, err
    assert built == ["CartPole-v1"]
    code, _, err = pgdist_here("export", out, "--format", "torchscript")
    assert code == 0, err
    assert built == ["CartPole-v1"] * 2

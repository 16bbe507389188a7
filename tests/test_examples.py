"""Each script in examples/ runs as a user would run it, with Ray, and does what it says."""

import re
import subprocess
import sys

import torch


def run_example(name, *args, root):
    result = subprocess.run([sys.executable, str(root / "examples" / name), *args], capture_output=True,
                            text=True, timeout=300, cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_custom_env_learns_its_corridor(request):
    out = run_example("custom_env.py", "--iterations", "25", root=request.config.rootpath)
    returns = [float(x) for x in re.findall(r"return\s+(-?\d+\.\d+)\s+episode", out)]
    assert len(returns) == 25
    assert returns[0] < 0.0 and returns[-1] > 0.5  # from wandering to walking straight to the end


def test_embed_learner_trains_the_users_policy_and_saves_it(request, tmp_path):
    saved = tmp_path / "policy.pt"
    # the local backend: what is checked is the user's module, optimizer and callbacks (Ray's path: test_readme)
    out = run_example("embed_learner.py", "--iterations", "4", "--backend", "local", "--save", str(saved),
                      root=request.config.rootpath)
    assert len(re.findall(r"^iteration", out, flags=re.M)) == 4
    assert "estimated |grad J| at the end" in out
    state = torch.load(saved, weights_only=True)
    assert state["net.1.weight"].shape == (64,)  # the LayerNorm of the user's own module
    lrs = [float(lr) for lr in re.findall(r"lr (\d+\.\d+)", out)]
    assert lrs == sorted(lrs, reverse=True) and lrs[0] == 0.01  # the linear schedule on the user's AdamW


def test_tune_search_runs_a_trial_per_setting(request, tmp_path):
    out = run_example("tune_search.py", "--iterations", "2", "--lr", "0.01", "0.03", "--episodes", "16",
                      "--storage", str(tmp_path), root=request.config.rootpath)
    trials = re.findall(r"^lr (\S+)\s+N (\d+)\s+final return", out, flags=re.M)
    assert sorted(trials) == [("0.01", "16"), ("0.03", "16")], out
    assert re.search(r"^best: lr=\S+ N=\d+ return", out, flags=re.M)

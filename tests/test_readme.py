"""The README's commands and Python, run as written (in a scratch folder with the repository's
configs/ and envs/). The install steps are what .ci/run runs; the cluster commands are run
on a real cluster by test_cluster.py."""

import re
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest


def readme_blocks(root, language):
    text = (root / "README.md").read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def pgdist_commands(root):
    """Every `.venv/bin/pgdist ...` in the README's bash blocks, continuation lines joined, comments cut."""
    commands = []
    for block in readme_blocks(root, "bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0]
            for part in line.split("&&"):
                part = part.strip()
                if part.startswith(".venv/bin/pgdist "):
                    commands.append(part.split()[1:])
    return commands


@pytest.fixture
def scratch(tmp_path, request):
    root = request.config.rootpath
    for folder in ("configs", "envs"):
        shutil.copytree(root / folder, tmp_path / folder)
    return tmp_path


def run_folder(command):
    """The run folder a command writes (train's --out) or reads (eval's and plot's first argument)."""
    return command[command.index("--out") + 1] if command[0] == "train" else command[1]


def test_the_readme_commands_run(request, scratch):
    """Each run folder's commands in the README's order; the folders' chains side by side."""
    commands = pgdist_commands(request.config.rootpath)
    assert [c[0] for c in commands][:3] == ["train", "eval", "plot"], commands
    chains = {}
    for command in commands:
        chains.setdefault(run_folder(command), []).append(command)

    def run_chain(chain):
        return [(command, subprocess.run([sys.executable, "-m", "pgdist.cli", *command], capture_output=True,
                                         text=True, timeout=600, cwd=scratch)) for command in chain]

    with ThreadPoolExecutor(len(chains)) as pool:
        results = [ran for chain in pool.map(run_chain, chains.values()) for ran in chain]
    for command, result in results:
        assert result.returncode == 0, f"{' '.join(command)}\n{result.stderr[-3000:]}"
        if command[0] == "eval":
            mean = float(re.search(r"mean return (\S+) ± \S+ over 100 episodes", result.stdout).group(1))
            assert mean >= 475, f"the README's CartPole recipe did not solve it: {result.stdout}"
    assert (scratch / "runs" / "cartpole" / "curve.png").exists()


def test_the_readme_python_runs(request, ray_instance):
    """The blocks of "In your own Python" in turn, in one namespace, as a user would paste them."""
    blocks = [textwrap.dedent(b) for b in readme_blocks(request.config.rootpath, "python") if "Learner(" in b]
    assert len(blocks) == 2, blocks
    namespace = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["state"]["version"] == 10
    assert namespace["gradient"].ndim == 1
    assert [len(history) for history in namespace["histories"].values()] == [3, 3]

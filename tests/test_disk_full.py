"""A run folder on a disk that fills: one line naming the folder, the iteration and the checkpoint kept,
no half-written file left as the latest, and the run goes on once space is freed. A real tmpfs of 120 KB."""

import re
import subprocess

import pytest
import torch

FULL = re.compile(r"pgdist: error: cannot write the run folder (\S+) while (recording iteration (\d+)|resuming the run): "
                  r"its disk is full \(No space left on device\); kept \1/checkpoint.pt \(iteration (\d+)\) whole; "
                  r"free space there \(its kept checkpoint-NNNNNN.pt files take [\d.]+ MB\), then continue with "
                  r"'pgdist resume \1'")


@pytest.fixture
def small_disk(tmp_path):
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=120k", "tmpfs", str(folder)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip() or 'mount refused'}): needs root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def test_a_full_disk_is_one_line_and_the_run_goes_on_once_space_is_freed(small_disk, pgdist_here):
    def pgdist(*args):
        code, _, err = pgdist_here(*args)
        return code, err

    run = small_disk / "run"
    code, err = pgdist("train", "--env", "CartPole-v1", "--episodes", "2", "--iterations", "12", "--backend", "local",
                       "--checkpoint-every", "1", "--out", str(run))
    assert code == 2, err
    [line] = err.strip().splitlines()
    found = FULL.fullmatch(line)
    assert found, line
    failed_at, kept = int(found.group(3)), int(found.group(4))
    # the checkpoint of the iteration before, or of this one where its kept copy no longer fitted
    assert kept in (failed_at - 1, failed_at) and torch.load(run / "checkpoint.pt", weights_only=True)["version"] == kept
    assert not list(run.glob("*.tmp")), list(run.iterdir())

    code, err = pgdist("resume", str(run))  # the disk still full
    assert code == 2, err
    [line] = err.strip().splitlines()
    assert FULL.fullmatch(line) and "while resuming the run" in line and f"(iteration {kept})" in line, line

    for path in run.glob("checkpoint-*.pt"):
        path.unlink()
    code, err = pgdist("resume", str(run), "--checkpoint-every", "100")
    assert code == 0, err
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["version"] == 12 and state["finished"]
    assert (run / "curve.png").exists() and not list(run.glob("*.tmp"))

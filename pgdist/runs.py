"""A run's folder, and everything in it.

    RUN/config.yaml              the resolved Config: ``pgdist train --config RUN/config.yaml`` reruns it
    RUN/metrics.csv, .jsonl      a row per iteration
    RUN/events.out.tfevents.*    the same metrics for TensorBoard (``tensorboard --logdir RUN``)
    RUN/checkpoint.pt            the latest state: policy, Adam, theta version, sampling counter, config
    RUN/checkpoint-NNNNNN.pt     kept every ``checkpoint_every`` iterations
    RUN/curve.png                the learning curve, redrawn as the run goes

Checkpoints load with ``torch.load(path, weights_only=True)``.
"""

from __future__ import annotations

import csv
import json
import pickle
import time
from pathlib import Path

import torch

from pgdist.config import Config, ConfigError

COLUMNS = (
    "iteration",
    "episodes",
    "steps",
    "seconds",
    "return_mean",
    "return_min",
    "return_max",
    "discounted_return_mean",
    "length_mean",
    "gradient_norm",
    "theta_version",
    "weight_mean",
    "weight_std",
    "stopped",
    "trace_sigma",
    "grad_sq",
    "noise_scale",
)
CURVE_EVERY_SECONDS = 10.0


class RunError(Exception):
    """A run folder that cannot be used as asked; the message says what to do."""


class Run:
    """Writes a run folder as training goes; ``Run.create`` starts one, ``Run.resume`` continues one."""

    def __init__(self, folder: Path, config: Config, checkpoint_every: int, mode: str):
        self.folder = Path(folder)
        self.config = config
        self.checkpoint_every = checkpoint_every
        self.csv_file = open(self.folder / "metrics.csv", mode, newline="")
        self.csv = csv.DictWriter(self.csv_file, fieldnames=COLUMNS, extrasaction="ignore")
        if mode == "w":
            self.csv.writeheader()
        self.jsonl = open(self.folder / "metrics.jsonl", mode)
        self.tensorboard = None
        self.curve_drawn = time.monotonic()

    @classmethod
    def create(cls, folder: Path, config: Config, checkpoint_every: int = 10) -> Run:
        folder = Path(folder)
        if (folder / "checkpoint.pt").exists() or ((folder / "metrics.csv").exists() and read_metrics(folder)):
            raise RunError(
                f"{folder} already holds a run; continue it with 'pgdist resume {folder}' or choose another --out"
            )
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.yaml").write_text(config.to_yaml())
        return cls(folder, config, checkpoint_every, "w")

    @classmethod
    def resume(cls, folder: Path, checkpoint_every: int = 10) -> tuple[Run, dict]:
        """The run and its latest checkpoint; metrics rows written after that checkpoint are dropped."""
        config, state = load_checkpoint(folder)
        if state.get("finished"):
            raise RunError(
                f"{folder} finished at iteration {state['version']}; train on with "
                f"'pgdist train --config {Path(folder) / 'config.yaml'} --iterations N --out NEW_RUN'"
            )
        if not {"t", "m", "v"} <= set(state.get("optimizer") or {}):
            raise RunError(
                f"{folder}/checkpoint.pt holds no Adam state this pgdist can continue (an older pgdist "
                "saved torch.optim's); 'pgdist eval' and 'pgdist plot' still read the run"
            )
        _keep_rows_up_to(Path(folder), state["version"])
        return cls(folder, config, checkpoint_every, "a"), state

    def record(self, metrics: dict) -> None:
        self.csv.writerow(metrics)
        self.csv_file.flush()
        self.jsonl.write(json.dumps(metrics) + "\n")
        self.jsonl.flush()
        if self.tensorboard is None:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(str(self.folder))
        for name, value in metrics.items():
            if name != "iteration" and value is not None:  # None: no noise scale yet (learner.py)
                self.tensorboard.add_scalar(name, value, metrics["iteration"])
        if time.monotonic() - self.curve_drawn > CURVE_EVERY_SECONDS:
            self.draw_curve()

    def save(self, learner, finished: bool = False) -> Path:
        """The latest checkpoint, and a kept copy every ``checkpoint_every`` iterations."""
        state = {**learner.state_dict(), "finished": finished}
        path = _save(state, self.folder / "checkpoint.pt")
        if learner.version % self.checkpoint_every == 0:
            _save(state, self.folder / f"checkpoint-{learner.version:06d}.pt")
        return path

    def draw_curve(self) -> None:
        from pgdist.plot import plot_runs

        if not self.csv_file.closed:
            self.csv_file.flush()
        plot_runs([self.folder], self.folder / "curve.png")
        self.curve_drawn = time.monotonic()

    def close(self) -> None:
        self.csv_file.close()
        self.jsonl.close()
        if self.tensorboard is not None:
            self.tensorboard.close()
        if read_metrics(self.folder):
            self.draw_curve()


def load_checkpoint(folder: Path) -> tuple[Config, dict]:
    """A run folder's Config and latest checkpoint, or a RunError saying what is wrong with the folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RunError(f"{folder} is not a run folder (no such directory); pass the --out folder of a 'pgdist train'")
    path = folder / "checkpoint.pt"
    if not path.exists():
        raise RunError(f"{folder} has no checkpoint.pt: it is not a run folder, or its run saved nothing yet")
    try:
        state = torch.load(path, weights_only=True)
        config = Config(**state["config"])
    except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, TypeError, ValueError, ConfigError) as error:
        first_line = (str(error).splitlines() or [""])[0][:120]
        raise RunError(f"{path} is corrupt or not a pgdist checkpoint ({type(error).__name__}: {first_line})") from None
    return config, state


def load_run(folder: Path):
    """A run's Config and its trained policy, from the latest checkpoint."""
    from pgdist.envs import env_spaces
    from pgdist.policy import make_policy

    config, state = load_checkpoint(folder)
    spaces = env_spaces(config.env)
    policy = make_policy(spaces.observation_size, spaces.action_space, config.hidden, config.seed)
    policy.load_state_dict(state["policy"])
    return config, policy


def read_metrics(folder: Path) -> list[dict]:
    with open(Path(folder) / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


def _save(state: dict, path: Path) -> Path:
    partial = path.with_suffix(".tmp")
    torch.save(state, partial)
    partial.replace(path)  # atomic: a crash never leaves half a checkpoint
    return path


def _keep_rows_up_to(folder: Path, iteration: int) -> None:
    rows = [row for row in read_metrics(folder) if int(row["iteration"]) <= iteration]
    with open(folder / "metrics.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines = (folder / "metrics.jsonl").read_text().splitlines()
    kept = [line for line in lines if line and json.loads(line)["iteration"] <= iteration]
    (folder / "metrics.jsonl").write_text("".join(line + "\n" for line in kept))

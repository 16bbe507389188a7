"""A run's folder: metrics.csv with a row per iteration, and checkpoints."""

from __future__ import annotations

import csv
from pathlib import Path

import torch

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
)


class MetricsFile:
    """Appends one row per iteration to ``metrics.csv``, flushed as it goes."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / "metrics.csv"
        self.file = open(self.path, "w", newline="")
        self.writer = csv.DictWriter(self.file, fieldnames=COLUMNS, extrasaction="ignore")
        self.writer.writeheader()

    def write(self, metrics: dict) -> None:
        self.writer.writerow(metrics)
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def save_checkpoint(learner, folder: Path, name: str = "checkpoint.pt") -> Path:
    """The learner's state (policy, Adam, version, config), loadable with ``torch.load(weights_only=True)``."""
    path = Path(folder) / name
    partial = path.with_suffix(".tmp")
    torch.save(learner.state_dict(), partial)
    partial.replace(path)
    return path


def load_run(folder: Path):
    """A run's Config and its trained policy, from the checkpoint."""
    from pgdist.config import Config
    from pgdist.envs import env_spaces
    from pgdist.policy import make_policy

    state = torch.load(Path(folder) / "checkpoint.pt", weights_only=True)
    config = Config(**state["config"])
    spaces = env_spaces(config.env)
    policy = make_policy(spaces.observation_size, spaces.action_space, config.hidden, config.seed)
    policy.load_state_dict(state["policy"])
    return config, policy


def read_metrics(folder: Path) -> list[dict]:
    with open(Path(folder) / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))

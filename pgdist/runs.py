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


def read_metrics(folder: Path) -> list[dict]:
    with open(Path(folder) / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))

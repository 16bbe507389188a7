"""An iteration's metrics, declared once.

The Learner's metrics dict has exactly these names, in this order; metrics.csv takes its
columns from them, and metrics.jsonl, TensorBoard and W&B get the same values. A metric
added to the Learner and not here fails its first iteration rather than vanish from the files.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

METRICS = {
    "iteration": "the iteration: theta's version after its step (its batch's version + 1)",
    "episodes": "N, the episodes of the batch",
    "steps": "their environment steps",
    "env_steps": "every env step the workers took for them, kept or not (autoresets, episodes the chunks dropped)",
    "seconds": "the iteration's wall time: sample_seconds + update_seconds",
    "sample_seconds": "broadcasting theta and gathering the N episodes' sums",
    "update_seconds": "the optimizer step, from the sums",
    "workers": "rollout workers alive at the batch's end",
    "return_mean": "mean undiscounted episode return (the score users read)",
    "return_min": "lowest episode return",
    "return_max": "highest episode return",
    "discounted_return_mean": "mean R(tau) of Eq. 6",
    "length_mean": "mean episode length in steps",
    "gradient_norm": "|g-hat|, the norm of the estimated policy gradient (Eq. 19), before any clipping",
    "lr": "the policy's learning rate of this step (after the schedule)",
    "theta_version": "the theta the episodes were sampled with",
    "weight_mean": "mean of the estimator's step weights A_t (returns, baselined)",
    "weight_std": "their standard deviation",
    "truncated": "episodes cut at pgdist's max_episode_steps",
    "stopped": "the batch reached stop_return: no step taken, its theta kept",
    "trace_sigma": "tr(Sigma)^, this batch's unbiased estimate of the per-episode gradient variance (noise.py)",
    "grad_sq": "|G|^2^, this batch's unbiased estimate of the squared true gradient",
    "noise_scale": "B_simple = tr(Sigma) / |G|^2 in episodes, from their moving averages; empty until defined",
    "explained_variance": "1 - Var(y - V) / Var(y) of the value baseline over the batch's steps (y: V's targets); "
                          "empty without one",
}

# how the run went rather than what it computed: these vary from run to run, the rest is
# determined by the seed (and equal for any number of workers, up to float rounding)
TIMINGS = ("seconds", "sample_seconds", "update_seconds", "workers")


def read_metrics(folder: Path) -> list[dict]:
    """The rows of RUN/metrics.csv, without a last row still being written (no newline yet)."""
    with open(Path(folder) / "metrics.csv", newline="") as file:
        return list(csv.DictReader(io.StringIO(whole_lines(file.read()))))


def whole_lines(text: str) -> str:
    """``text`` up to its last newline: a line still being written is not read."""
    return text[: text.rfind("\n") + 1]

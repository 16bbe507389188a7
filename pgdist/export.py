"""A trained policy as a standalone file: ``pgdist export RUN --format onnx|torchscript``.

The file maps a batch of observations (flat, as pgdist's policies see them) to what
pi_theta(.|s) is: each action's probability (Eq. 20-22) for a Categorical policy, each
component's (components, choices) probabilities for independent Categoricals, each bit's
probability for Bernoullis, the mean action for a Gaussian one (squashed into the bounds with
``bound_actions: tanh``); an observation normaliser is part of it. Nothing of pgdist
is needed to run it: ONNX Runtime (or any ONNX runtime) reads the one, ``torch.jit.load``
the other.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.distributions import Bernoulli, Categorical, Distribution, Independent, Normal

from pgdist.normalization import unwrapped

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}


class ExportError(Exception):
    """A policy that cannot be exported as asked; the message says why and what to do."""


def action_output(distribution: Distribution) -> torch.Tensor:
    """What an exported policy returns for a distribution pgdist samples: probabilities, or means."""
    base = distribution.base_dist if isinstance(distribution, Independent) else distribution
    if isinstance(base, (Categorical, Bernoulli)):
        return base.probs
    if isinstance(base, Normal) and base is not distribution:
        return base.loc
    raise ExportError(f"cannot export a policy whose distribution is a {type(distribution).__name__}")


class ActionOutput(nn.Module):
    """The policy with its distribution replaced by ``action_output``: a plain tensor function. A policy
    that squashes its actions into the bounds (``bound_actions: tanh``) gives its mean so squashed."""

    def __init__(self, policy: nn.Module):
        super().__init__()
        self.policy = policy
        inner = unwrapped(policy)
        self.to_env = inner.to_env if getattr(inner, "squashed", False) else None

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        output = action_output(self.policy(observations))
        return output if self.to_env is None else self.to_env(output)


def export(policy: nn.Module, observations: torch.Tensor, format: str, path: Path) -> Path:
    """Write ``policy`` to ``path`` in ``format``, traced on the example batch ``observations``."""
    module = ActionOutput(policy).eval()
    path = Path(path)
    if format == "torchscript":
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript's deprecation notice
            torch.jit.trace(module, observations).save(str(path))
    elif format == "onnx":
        try:
            import onnxscript  # noqa: F401  torch's ONNX exporter needs it
        except ImportError:
            raise ExportError("ONNX export needs the onnx extra: pip install 'pgdist[onnx]'") from None
        batch = torch.export.Dim("batch")
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), _quiet("torch.onnx"):
            warnings.simplefilter("ignore")  # the exporter's progress lines, its notes on absent torchvision
            torch.onnx.export(
                module, (observations,), str(path), input_names=["observations"], output_names=["actions"],
                dynamic_shapes=({0: batch},), dynamo=True, verbose=False,
            )
    else:
        raise ExportError(f"unknown format {format!r}: expected {' or '.join(map(repr, FORMATS))}")
    return path


@contextlib.contextmanager
def _quiet(logger_name: str):
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)

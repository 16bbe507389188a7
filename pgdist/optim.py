"""The optimizer that steps theta, and the learning-rate schedule.

The Learner builds its optimizer from a function of the parameter groups, so any
``torch.optim`` optimizer fits::

    Learner(config, optimizer=lambda groups: torch.optim.SGD(groups, lr=0.1))

``groups`` holds the policy's parameters and, with ``baseline="value"``, the value
function's, in a group of its own with ``lr=config.value_lr``. Without one, the
Learner uses the tutorial's Adam(lr): ``Adam`` below.

``Adam`` is torch.optim.Adam (Kingma & Ba 2015, Algorithm 1), its single-tensor path,
the one torch takes on the CPU, written out:

    m_t = beta1 m_{t-1} + (1 - beta1) g_t          v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
    theta_t = theta_{t-1} - lr / (1 - beta1^t) * m_t / (sqrt(v_t) / sqrt(1 - beta2^t) + eps)

with the same operations, so the same rounding, and the same ``state_dict`` format: a
checkpoint written with either continues with the other. It exists because every
``torch.optim.Optimizer`` imports torch._dynamo when it is built, about a second of
CPU at the start of every training command. tests/test_optim.py holds the two together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

# torch.optim.Adam's hyperparameters as its state_dict records them, at their defaults
_TORCH_ADAM_GROUP = dict(
    weight_decay=0, amsgrad=False, maximize=False, foreach=None, capturable=False,
    differentiable=False, fused=None, decoupled_weight_decay=False,
)

OptimizerFactory = Callable[[list[dict]], "torch.optim.Optimizer | Adam"]


class Adam:
    """torch.optim.Adam on CPU tensors, without torch.optim.Optimizer's start-up cost."""

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        groups = list(params)
        if groups and not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.param_groups = [
            {**_TORCH_ADAM_GROUP, "lr": lr, "betas": betas, "eps": eps, **group, "params": list(group["params"])}
            for group in groups
        ]
        self.state: dict[torch.Tensor, dict] = {}

    @torch.no_grad()
    def step(self) -> None:
        """One Adam step of every parameter that has a gradient, in place."""
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps = group["lr"], group["eps"]
            for parameter in group["params"]:
                if parameter.grad is None:
                    continue
                state = self.state.get(parameter) or self._new_state(parameter)
                state["step"] += 1
                t = state["step"].item()
                state["exp_avg"].lerp_(parameter.grad, 1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(parameter.grad, parameter.grad, value=1 - beta2)
                step_size = lr / (1 - beta1**t)
                denominator = (state["exp_avg_sq"].sqrt() / (1 - beta2**t) ** 0.5).add_(eps)
                parameter.addcdiv_(state["exp_avg"], denominator, value=-step_size)

    def _new_state(self, parameter: torch.Tensor) -> dict:
        self.state[parameter] = {
            "step": torch.tensor(0.0),
            "exp_avg": torch.zeros_like(parameter, memory_format=torch.preserve_format),
            "exp_avg_sq": torch.zeros_like(parameter, memory_format=torch.preserve_format),
        }
        return self.state[parameter]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for parameter in group["params"]:
                parameter.grad = None

    def _parameters(self) -> list[torch.Tensor]:
        return [parameter for group in self.param_groups for parameter in group["params"]]

    def state_dict(self) -> dict:
        """torch.optim.Adam's format: parameters named by their index over the groups."""
        index = {parameter: i for i, parameter in enumerate(self._parameters())}
        groups, start = [], 0
        for group in self.param_groups:
            groups.append({**group, "params": list(range(start, start + len(group["params"])))})
            start += len(group["params"])
        state = {index[p]: {name: value.clone() for name, value in s.items()} for p, s in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        parameters = self._parameters()
        saved = state_dict["param_groups"]
        if [len(group["params"]) for group in saved] != [len(group["params"]) for group in self.param_groups]:
            raise ValueError("the optimizer state is for other parameter groups than this policy's")
        for group, saved_group in zip(self.param_groups, saved):
            group.update({key: value for key, value in saved_group.items() if key != "params"})
        self.state = {}
        for i, state in state_dict["state"].items():
            parameter = parameters[int(i)]
            if state["exp_avg"].shape != parameter.shape:
                raise ValueError(f"the optimizer state of parameter {i} has shape {tuple(state['exp_avg'].shape)}, "
                                 f"the parameter {tuple(parameter.shape)}")
            self.state[parameter] = {
                "step": state["step"].to(torch.float32).clone(),
                "exp_avg": state["exp_avg"].to(parameter.dtype).clone(),
                "exp_avg_sq": state["exp_avg_sq"].to(parameter.dtype).clone(),
            }


def learning_rate_factor(schedule: str, version: int, iterations: int) -> float:
    """The factor on each group's initial lr for the step from theta version ``version``.

    'constant': 1. 'linear': decays to 0 over ``iterations`` steps, 1 - version / iterations,
    as Stable-Baselines3 and CleanRL anneal it (the first step at the full lr).
    """
    if schedule == "linear":
        return max(0.0, 1.0 - version / iterations)
    return 1.0


def set_learning_rates(optimizer, factor: float, policy_gain: float = 1.0) -> None:
    """Scale every group's lr from its initial lr (kept as torch's schedulers keep it, in 'initial_lr'), the
    policy's (the first group: ``Learner.parameter_groups``) by ``policy_gain`` too (adaptive N's lr_scaling)."""
    for index, group in enumerate(optimizer.param_groups):
        group.setdefault("initial_lr", group["lr"])
        group["lr"] = group["initial_lr"] * factor * (policy_gain if index == 0 else 1.0)

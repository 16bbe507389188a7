"""Adam (Kingma & Ba 2015, Algorithm 1) on the flat theta, computed as torch.optim.Adam computes it.

    m_t = beta1 m_{t-1} + (1 - beta1) g_t          v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
    theta_t = theta_{t-1} - lr / (1 - beta1^t) * m_t / (sqrt(v_t) / sqrt(1 - beta2^t) + eps)

The learner holds theta and its gradient as flat vectors, so Adam steps them here. (Every
torch optimizer also imports torch._dynamo on its first step, about a second of CPU that
would otherwise sit in the training command's start-up.) The operations, and so the
rounding, are those of torch.optim.Adam's single-tensor path; tests/test_adam.py checks
that both give the same theta.
"""

from __future__ import annotations

import torch


class Adam:
    def __init__(
        self, size: int, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, dtype=torch.float32
    ):
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.t = 0  # steps taken
        self.m = torch.zeros(size, dtype=dtype)  # first moment estimate
        self.v = torch.zeros(size, dtype=dtype)  # second raw moment estimate

    def step(self, theta: torch.Tensor, gradient: torch.Tensor) -> None:
        """One step of theta, in place, down ``gradient`` (the gradient of the loss)."""
        beta1, beta2 = self.betas
        gradient = gradient.to(theta.dtype)
        self.t += 1
        self.m.lerp_(gradient, 1 - beta1)
        self.v.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
        step_size = self.lr / (1 - beta1**self.t)
        denominator = (self.v.sqrt() / (1 - beta2**self.t) ** 0.5).add_(self.eps)
        theta.addcdiv_(self.m, denominator, value=-step_size)

    def state_dict(self) -> dict:
        return {"t": self.t, "m": self.m.clone(), "v": self.v.clone()}

    def load_state_dict(self, state: dict) -> None:
        if state["m"].shape != self.m.shape:
            raise ValueError(f"Adam state for {state['m'].numel()} parameters, theta has {self.m.numel()}")
        self.t = state["t"]
        self.m = state["m"].to(self.m.dtype).clone()
        self.v = state["v"].to(self.v.dtype).clone()

"""theta as one flat vector: what the learner broadcasts and the workers load, and gradients back into .grad."""

from __future__ import annotations

import torch
from torch import nn


def _parameters(modules):
    return [p for module in modules if module is not None for p in module.parameters()]


def parameters_to_vector(*modules: nn.Module | None) -> torch.Tensor:
    """theta: the parameters of the modules (the policy, and a value function if any), flat."""
    return torch.nn.utils.parameters_to_vector(_parameters(modules)).detach()


def _buffers(modules) -> list[torch.Tensor]:
    """The modules' persistent buffers (an observation normaliser's mean and std), in state_dict order."""
    buffers = []
    for module in modules:
        if module is not None:
            parameters = {id(p) for p in module.parameters()}
            buffers += [t for t in module.state_dict(keep_vars=True).values() if id(t) not in parameters]
    return buffers


def state_to_vector(*modules: nn.Module | None) -> torch.Tensor:
    """What the learner broadcasts: theta, then the modules' persistent buffers (state learned from
    data, such as the observation normaliser's statistics), flat in theta's dtype."""
    tensors = _parameters(modules) + _buffers(modules)
    dtype = tensors[0].dtype
    return torch.cat([t.detach().reshape(-1).to(dtype) for t in tensors])


def vector_to_state(vector: torch.Tensor, *modules: nn.Module | None) -> None:
    """Load ``state_to_vector``'s vector into the modules: their parameters (views of the vector, as
    torch's vector_to_parameters makes them), then their persistent buffers (copied)."""
    parameters = _parameters(modules)
    size = sum(p.numel() for p in parameters)
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(vector[:size], parameters)
        for buffer in _buffers(modules):
            buffer.copy_(vector[size : size + buffer.numel()].view_as(buffer))
            size += buffer.numel()


def set_gradients(gradient: torch.Tensor, module: nn.Module) -> None:
    """Set each parameter's .grad from a flat gradient of all of them (their order, as theta is flat)."""
    offset = 0
    for parameter in module.parameters():
        size = parameter.numel()
        parameter.grad = gradient[offset : offset + size].view_as(parameter).to(parameter.dtype).clone()
        offset += size

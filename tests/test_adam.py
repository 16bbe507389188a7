"""pgdist's Adam on the flat theta against torch.optim.Adam on the same parameters."""

import pytest
import torch

from pgdist.adam import Adam


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_adam_steps_theta_as_torch_adam_does(dtype):
    generator = torch.Generator().manual_seed(0)
    shapes = [(8, 4), (8,), (2, 8), (2,)]
    parameters = [torch.nn.Parameter(torch.randn(shape, generator=generator, dtype=dtype)) for shape in shapes]
    theta = torch.nn.utils.parameters_to_vector(parameters).detach().clone()
    reference = torch.optim.Adam(parameters, lr=0.02)
    adam = Adam(theta.numel(), lr=0.02, dtype=dtype)
    for _ in range(50):
        gradient = torch.randn(theta.numel(), generator=generator, dtype=torch.float64) * 10
        offset = 0
        for p in parameters:
            p.grad = gradient[offset : offset + p.numel()].view_as(p).to(dtype).clone()
            offset += p.numel()
        reference.step()
        adam.step(theta, gradient)
    assert adam.t == 50
    torch.testing.assert_close(theta, torch.nn.utils.parameters_to_vector(parameters).detach(), rtol=0, atol=0)


def test_adam_state_round_trip_continues_the_same_steps():
    gradients = torch.randn(6, 5, generator=torch.Generator().manual_seed(1))
    straight, theta = Adam(5, lr=0.1), torch.zeros(5)
    for g in gradients:
        straight.step(theta, g)
    first, resumed_theta = Adam(5, lr=0.1), torch.zeros(5)
    for g in gradients[:3]:
        first.step(resumed_theta, g)
    resumed = Adam(5, lr=0.1)
    resumed.load_state_dict(first.state_dict())
    for g in gradients[3:]:
        resumed.step(resumed_theta, g)
    assert torch.equal(resumed_theta, theta)
    with pytest.raises(ValueError, match="Adam state for 5 parameters, theta has 4"):
        Adam(4, lr=0.1).load_state_dict(first.state_dict())

"""pgdist's Adam against torch.optim.Adam: the same theta, and state dicts that continue in either."""

import pytest
import torch

from pgdist.optim import Adam, learning_rate_factor, set_learning_rates

SHAPES = [(8, 4), (8,), (2, 8), (2,)]


def parameters(dtype, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(shape, generator=generator, dtype=dtype)) for shape in SHAPES]


def groups(params, value_lr=0.05):
    """Two groups as the Learner makes them: the policy's, and a value function's with its own lr."""
    return [{"params": params[:2]}, {"params": params[2:], "lr": value_lr}]


def run(optimizer, params, gradients):
    for gradient in gradients:
        for p, g in zip(params, gradient):
            p.grad = g.to(p.dtype).clone()
        optimizer.step()


def random_gradients(steps, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return [[torch.randn(shape, generator=generator, dtype=torch.float64) * 10 for shape in SHAPES] for _ in range(steps)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_adam_steps_theta_as_torch_adam_does(dtype):
    ours, theirs = parameters(dtype), parameters(dtype)
    gradients = random_gradients(50)
    run(Adam(groups(ours), lr=0.02), ours, gradients)
    run(torch.optim.Adam(groups(theirs), lr=0.02), theirs, gradients)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("first, second", [(Adam, torch.optim.Adam), (torch.optim.Adam, Adam), (Adam, Adam)])
def test_a_state_dict_continues_in_either_adam(first, second):
    gradients = random_gradients(8)
    straight = parameters(torch.float32)
    run(torch.optim.Adam(groups(straight), lr=0.1), straight, gradients)
    params = parameters(torch.float32)
    before = first(groups(params), lr=0.1)
    run(before, params, gradients[:4])
    state = before.state_dict()
    after = second(groups(params), lr=0.1)
    after.load_state_dict(state)
    run(after, params, gradients[4:])
    for a, b in zip(params, straight):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_state_dict_for_other_parameters_is_refused():
    params = parameters(torch.float32)
    optimizer = Adam(groups(params), lr=0.1)
    run(optimizer, params, random_gradients(1))
    with pytest.raises(ValueError, match="other parameter groups"):
        Adam([{"params": params}], lr=0.1).load_state_dict(optimizer.state_dict())


def test_linear_schedule_decays_to_zero_from_the_initial_lr():
    assert [learning_rate_factor("linear", version, 4) for version in range(5)] == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert learning_rate_factor("constant", 3, 4) == 1.0
    optimizer = torch.optim.SGD(groups(parameters(torch.float32)), lr=0.2)
    set_learning_rates(optimizer, 0.5)
    set_learning_rates(optimizer, 0.25)  # always from the initial lr, never compounded
    assert [group["lr"] for group in optimizer.param_groups] == [0.05, 0.0125]

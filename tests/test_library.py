"""The Learner as a library: any torch optimizer, clipping, schedules, sample/update, callbacks, checks."""

import io

import pytest
import torch
from torch import nn
from torch.distributions import Beta

from pgdist import Config, Learner
from pgdist.backends import LocalBackend
from pgdist.metrics import METRICS
from pgdist.policy import PolicyError
from pgdist.theta import parameters_to_vector
from pgdist.evaluate import evaluate
from pgdist.training import Callback, Evaluate, train
from replay import float64_policy

CONFIG = Config(env="CartPole-v1", episodes=12, chunk_episodes=4, envs_per_chunk=4, backend="local", seed=2,
                lr=0.01, gamma=0.99, returns="reward_to_go")


def sgd(lr):
    return lambda groups: torch.optim.SGD(groups, lr=lr)


def test_sgd_moves_theta_by_lr_times_the_estimated_gradient():
    """theta' = theta + alpha g-hat: one SGD step down L (Eq. 23) is one step up Eq. 19's estimate."""
    with Learner(CONFIG, policy=float64_policy(4), optimizer=sgd(0.1)) as learner:
        before = parameters_to_vector(learner.policy)
        batch = learner.sample()
        gradient = learner.estimate_gradient(batch)
        metrics = learner.update(batch)
        after = parameters_to_vector(learner.policy)
    torch.testing.assert_close(after, before + 0.1 * gradient, rtol=1e-12, atol=1e-12)
    assert metrics["gradient_norm"] == pytest.approx(float(gradient.norm()))


def test_clipping_bounds_the_step_and_keeps_its_direction():
    config = CONFIG.replace(max_grad_norm=0.01)
    with Learner(config, policy=float64_policy(4), optimizer=sgd(1.0)) as learner:
        before = parameters_to_vector(learner.policy)
        batch = learner.sample()
        gradient = learner.estimate_gradient(batch)
        learner.update(batch)
        step = parameters_to_vector(learner.policy) - before
    assert float(gradient.norm()) > 0.01  # so the clip is in force
    torch.testing.assert_close(step, gradient * (0.01 / gradient.norm()), rtol=1e-6, atol=1e-12)


def test_a_linear_schedule_sets_each_iterations_lr():
    config = CONFIG.replace(iterations=4, lr_schedule="linear")
    with Learner(config, policy=float64_policy(4), optimizer=sgd(0.2)) as learner:
        steps = []
        for _ in range(4):
            before = parameters_to_vector(learner.policy)
            batch = learner.sample()
            gradient = learner.estimate_gradient(batch)
            metrics = learner.update(batch)
            steps.append((metrics["lr"], parameters_to_vector(learner.policy) - before, gradient))
    assert [lr for lr, _, _ in steps] == pytest.approx([0.2, 0.15, 0.1, 0.05])
    for lr, step, gradient in steps:
        torch.testing.assert_close(step, lr * gradient, rtol=1e-10, atol=1e-12)


def test_the_value_function_has_its_own_learning_rate():
    config = CONFIG.replace(baseline="value", value_lr=0.5)
    with Learner(config) as learner:
        lrs = [group["lr"] for group in learner.optimizer.param_groups]
    assert lrs == [CONFIG.lr, 0.5]


OPTIMIZERS = {
    "default": None,
    "torch-adam": lambda groups: torch.optim.Adam(groups, lr=0.01),
    "sgd-momentum": lambda groups: torch.optim.SGD(groups, lr=0.01, momentum=0.9),
    "adamw": lambda groups: torch.optim.AdamW(groups, lr=0.01, weight_decay=0.1),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_resume_from_a_state_dict_is_exact_with_each_optimizer(name):
    config = CONFIG.replace(baseline="value", lr_schedule="linear", iterations=4, max_grad_norm=0.5)
    with Learner(config, optimizer=OPTIMIZERS[name]) as straight:
        for _ in range(4):
            straight.step()
    with Learner(config, optimizer=OPTIMIZERS[name]) as first:
        for _ in range(2):
            first.step()
        state = first.state_dict()
    saved = io.BytesIO()
    torch.save(state, saved)  # as a checkpoint holds it, loaded as pgdist loads one
    saved.seek(0)
    state = torch.load(saved, weights_only=True)
    with Learner(config, optimizer=OPTIMIZERS[name]) as resumed:
        resumed.load_state_dict(state)
        for _ in range(2):
            resumed.step()
    assert torch.equal(parameters_to_vector(resumed.policy, resumed.value),
                       parameters_to_vector(straight.policy, straight.value))


class StopAt(Callback):
    def __init__(self, iteration):
        self.iteration = iteration
        self.seen = []

    def on_iteration(self, learner, metrics):
        self.seen.append(metrics["iteration"])
        return metrics["iteration"] < self.iteration


def test_the_update_runs_on_one_torch_thread_and_gives_the_callers_threads_back():
    """theta's update is elementwise work on small tensors: on two threads each op waits for the second
    (a scheduler slice where the other cores are busy), so it runs on one; the caller's setting returns."""
    seen = []

    class Recording(torch.optim.SGD):
        def step(self, closure=None):
            seen.append(torch.get_num_threads())
            return super().step(closure)

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with Learner(CONFIG, optimizer=lambda groups: Recording(groups, lr=0.01)) as learner:
            learner.step()
            learner.step()
            assert seen == [1, 1]
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_a_callback_that_stops_at_iteration_3_stops_there():
    stop = StopAt(3)
    with Learner(CONFIG.replace(iterations=10)) as learner:
        history = train(learner, callbacks=[stop])
        assert learner.version == 3
    assert stop.seen == [1, 2, 3] and [m["iteration"] for m in history] == [1, 2, 3]


def test_stop_return_stops_in_the_loop_and_keeps_the_policy_that_reached_it():
    with Learner(CONFIG.replace(iterations=10, stop_return=0.0)) as learner:
        theta = parameters_to_vector(learner.policy)
        history = train(learner)
        assert learner.version == 0 and torch.equal(parameters_to_vector(learner.policy), theta)
    assert len(history) == 1 and history[0]["stopped"]


def test_evaluate_scores_theta_every_so_many_steps_and_stops_at_its_bar():
    """Evaluations come after the iteration that crosses each multiple of every_steps, score the policy of
    that moment as pgdist.evaluate does, and the first mean at stop_mean stops training with that policy."""
    scored = []

    class Score(Callback):  # what evaluate() gives the policy after each iteration, the evaluator's own way
        def on_iteration(self, learner, metrics):
            wide = learner.config.replace(envs_per_chunk=None)  # an evaluation's copies: one per episode
            scored.append((metrics["steps"], float(evaluate(wide, learner.policy, 10, seed=7).mean())))

    seen = []
    watch = Evaluate(every_steps=500, episodes=10, seed=7, on_evaluation=seen.append)
    with Learner(CONFIG.replace(iterations=8)) as learner:
        train(learner, [Score(), watch])
    steps = [sum(s for s, _ in scored[:i + 1]) for i in range(len(scored))]
    crossing = [i for i in range(len(steps)) if steps[i] // 500 > (steps[i - 1] if i else 0) // 500]
    assert len(crossing) >= 2, steps  # the test means something: several evaluations in 8 iterations
    assert [e.steps for e in watch.evaluations] == [steps[i] for i in crossing]
    assert [e.mean for e in watch.evaluations] == [scored[i][1] for i in crossing]
    assert [e.theta_version for e in watch.evaluations] == [i + 1 for i in crossing] and seen == watch.evaluations

    bar = watch.evaluations[1].mean  # reached by the second evaluation (or the first)
    stop = Evaluate(every_steps=500, episodes=10, seed=7, stop_mean=bar)
    with Learner(CONFIG.replace(iterations=8)) as learner:
        history = train(learner, [stop])
        assert stop.evaluations[-1].mean >= bar and len(stop.evaluations) <= 2
        assert len(history) == stop.evaluations[-1].theta_version == learner.version < 8
        wide = learner.config.replace(envs_per_chunk=None)
        assert float(evaluate(wide, learner.policy, 10, seed=7).mean()) == stop.evaluations[-1].mean
    with pytest.raises(ValueError, match="every_steps"):
        Evaluate(every_steps=0)


def test_step_always_steps_and_its_metrics_are_the_declared_ones():
    with Learner(CONFIG.replace(stop_return=0.0)) as learner:
        metrics = learner.step()
        assert learner.version == 1 and not metrics["stopped"]
    assert list(metrics) == list(METRICS)
    assert metrics["sample_seconds"] > 0 and metrics["update_seconds"] > 0
    assert metrics["seconds"] >= metrics["sample_seconds"] + metrics["update_seconds"]


class BetaPolicy(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Linear(4, 2)

    def forward(self, state):
        concentration = nn.functional.softplus(self.net(state)) + 1
        return Beta(concentration[..., 0], concentration[..., 1])


class WrongInputPolicy(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Linear(7, 2)

    def forward(self, state):
        return torch.distributions.Categorical(logits=self.net(state))


@pytest.mark.parametrize("policy, message", [
    (BetaPolicy(), "returned a Beta; pgdist samples"),
    (WrongInputPolicy(), "the policy's forward pass on CartPole-v1's first observation"),
])
def test_a_policy_pgdist_cannot_sample_is_refused_when_the_learner_is_built(policy, message):
    with pytest.raises(PolicyError, match=message) as error:
        Learner(CONFIG, policy=policy)
    assert "\n" not in str(error.value)


class CountingBackend(LocalBackend):
    """A backend of the user's own: the local one, counting the chunks it runs."""

    def __init__(self, config, policy, value):
        super().__init__(config, policy, value)
        self.chunks = 0

    def run(self, theta, version, chunk):
        self.chunks += 1
        return super().run(theta, version, chunk)


def test_the_learner_takes_a_backend_object_of_the_users_own():
    with Learner(CONFIG.replace(backend="ray"), backend=CountingBackend) as learner:  # no Ray started
        learner.step()
        assert isinstance(learner.backend, CountingBackend) and learner.backend.chunks == 3

"""The gradient noise scale (pgdist/noise.py) against exact values, and its independence of the workers.

tr(Sigma) and |G|^2 of the per-episode gradient g(tau) = R(tau) grad sum_t ln pi are exact by
enumeration on envs.mdp:ChainMDP (every trajectory, weighted by its probability) and by
quadrature on envs.target:TargetBandit: tr(Sigma) = sum_k Var[g_k], |G|^2 = |E[g]|^2.

pgdist's per-iteration estimates are unbiased but noisy, and their variance involves fourth
moments of g. The test measures it: at a fixed theta it draws M independent iterations (each
sample() uses fresh chunks), so the M estimates are i.i.d. and their mean has standard error
s / sqrt(M), s their sample standard deviation. With M >= 150 the mean is close to normal and
s is within about 10% of the true deviation, so an unbiased estimator falls outside 5 standard
errors with probability below 1e-5. The test also asserts that 5 standard errors is at most
15% of the exact value, so that the check has teeth: a biased estimator such as the plain
mean of |s_j|^2 / n_j (off by N |G|^2) or a k in place of k - 1 (off by 1/(k - 1)) fails.
"""

import math

import numpy as np
import pytest
import torch

from pgdist import Config, Learner, Policy
from pgdist.estimators import POLICY_SUMS
from pgdist.policy import GaussianPolicy, parameters_to_vector
from pgdist.worker import RolloutWorker, make_chunks
from replay import float64_policy
from test_estimators import ESTIMATORS, target_bandit_moments
from test_unbiased import GAMMA, exact_gradient_and_variance

ITERATIONS = 150  # M independent iterations at one theta
Z_LIMIT = 5.0


def measured_estimates(config, policy, iterations=ITERATIONS):
    """(trace_sigma, grad_sq) of ``iterations`` fresh batches at the policy's theta, never stepping."""
    rows = []
    with Learner(config, policy=policy) as learner:
        for _ in range(iterations):
            batch = learner.sample()
            noise = learner.measure_noise(batch)
            rows.append((noise.trace_sigma, noise.grad_sq))
    return np.array(rows)


def assert_agrees(estimates, exact, name):
    mean = estimates.mean()
    standard_error = estimates.std(ddof=1) / math.sqrt(len(estimates))
    z = (mean - exact) / standard_error
    assert abs(z) < Z_LIMIT, f"{name}: mean estimate {mean:.5g}, exact {exact:.5g}, {z:.2f} standard errors"
    assert Z_LIMIT * standard_error < 0.15 * abs(exact), f"{name}: too few iterations to tell ({standard_error:.3g})"


def test_estimates_match_enumeration_on_the_chain_mdp():
    torch.manual_seed(7)
    policy = Policy(2, 2).double()
    gradient, variance = exact_gradient_and_variance(policy)
    config = Config(env="envs.mdp:ChainMDP", episodes=600, gamma=GAMMA, chunk_episodes=50, envs_per_chunk=50,
                    backend="local", seed=4)
    estimates = measured_estimates(config, policy)
    assert_agrees(estimates[:, 0], float(variance.sum()), "tr(Sigma)")
    assert_agrees(estimates[:, 1], float(gradient @ gradient), "|G|^2")


def test_estimates_match_quadrature_on_the_gaussian_bandit():
    torch.manual_seed(1)
    policy = GaussianPolicy(1, 1, hidden=(8,), log_std=-0.3).double()
    mean_g, mean_g2 = target_bandit_moments(policy)
    config = Config(env="envs.target:TargetBandit", episodes=600, chunk_episodes=50, envs_per_chunk=50,
                    backend="local", seed=9)
    estimates = measured_estimates(config, policy)
    assert_agrees(estimates[:, 0], float((mean_g2 - mean_g**2).sum()), "tr(Sigma)")
    assert_agrees(estimates[:, 1], float(mean_g @ mean_g), "|G|^2")


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: "-".join(f"{k}={v}" for k, v in e.items()))
def test_chunk_squares_equal_the_chunk_sums_formed_one_by_one(estimator):
    """A from the Gram entries kept per chunk equals sum_j |s_j|^2 / n_j with each s_j formed explicitly.

    s_j = c . V_j, chunk j's share of the combined sum, with the batch's mu and sigma in c.
    """
    config = Config(env="CartPole-v1", episodes=23, chunk_episodes=5, envs_per_chunk=3, backend="local",
                    seed=13, gamma=0.97, **estimator)
    policy = float64_policy(4)
    with Learner(config, policy=policy) as learner:
        batch = learner.sample()
        noise = learner.measure_noise(batch)
        value = learner.value
    worker = RolloutWorker(config.env, policy, config.estimator, config.envs_per_chunk, value)
    coefficients = config.estimator.coefficients(batch)
    shares = []
    for chunk in make_chunks(config.episodes, config.chunk_episodes, config.seed, batch=0):
        result = worker.run(parameters_to_vector(policy, value).numpy(), 0, chunk)
        vectors = [getattr(result, name) for name in POLICY_SUMS]
        shares.append((sum(c * v for c, v in zip(coefficients, vectors) if v is not None), chunk.episodes))
    k, n = len(shares), config.episodes
    total = sum(s for s, _ in shares)
    np.testing.assert_allclose(total, config.estimator.combine(batch), rtol=1e-9)
    a = sum(s @ s / n_j for s, n_j in shares)
    c = total @ total / n
    assert noise.trace_sigma == pytest.approx((a - c) / (k - 1), rel=1e-9)
    assert noise.grad_sq == pytest.approx((k * c - a) / (n * (k - 1)), rel=1e-9)


@pytest.fixture
def ray(ray_instance):
    return ray_instance


def noise_metrics(backend, workers):
    config = Config(env="CartPole-v1", episodes=40, chunk_episodes=6, envs_per_chunk=3, workers=workers,
                    backend=backend, seed=17, lr=0.01)
    with Learner(config) as learner:
        rows = [learner.step() for _ in range(3)]
    return np.array([[row[name] for name in ("trace_sigma", "grad_sq", "noise_scale")] for row in rows])


def test_estimates_do_not_depend_on_the_workers(ray):
    """One seed, one set of chunks: local, 1 and 3 Ray workers give the same estimates, step after step."""
    local = noise_metrics("local", 1)
    assert np.isfinite(local).all()
    for workers in (1, 3):
        np.testing.assert_allclose(noise_metrics("ray", workers), local, rtol=1e-6)


def test_one_chunk_has_no_estimate_and_says_why():
    config = Config(env="CartPole-v1", episodes=10, backend="local")
    with Learner(config) as learner:
        metrics = learner.step()
        summary = learner.noise_summary()
    assert metrics["trace_sigma"] is None and metrics["grad_sq"] is None and metrics["noise_scale"] is None
    assert "1 chunk" in summary and "chunk_episodes" in summary

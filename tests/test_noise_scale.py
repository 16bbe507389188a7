"""The gradient noise scale (pgdist/noise.py) against exact values, and its independence of the workers.

On envs.mdp:ChainMDP (every trajectory enumerated, weighted by its probability) and on
envs.target:TargetBandit (quadrature), the per-episode gradient g = R(tau) grad sum_t ln pi has
exact moments: G = E[g], Sigma = Cov[g], and E|g - G|^4. So tr(Sigma) and |G|^2 are exact, and
so is the variance of one iteration's estimates. With k chunks of n episodes and y_j = s_j / n
the chunk means (i.i.d., mean G, covariance Sigma / n), the estimates are U-statistics:

    |G|^2^ = 1/(k(k-1)) sum_{j != j'} y_j . y_j',    tr(Sigma)^ = n/(2k(k-1)) sum_{j != j'} |y_j - y_j'|^2,

whose variance is (4 (k-2) zeta_1 + 2 zeta_2) / (k (k-1)), zeta_1 the variance of the kernel's
mean given one argument, zeta_2 the kernel's variance (Hoeffding 1948). ``variances`` writes
them out; they need E|e|^4 of a chunk's mean error e, which follows from E|g - G|^4, tr(Sigma)
and tr(Sigma^2). (A simulation of 20,000 draws from the enumerated distribution matched them.)

At a fixed theta the test draws M independent iterations (every sample() has fresh chunks);
their mean estimate has standard error sqrt(Var / M) and, averaging M k chunk means, is close
to normal, so an unbiased estimator falls outside 5 standard errors with probability ~1e-6.
M is chosen so that 5 standard errors are under 25% of the exact value: a biased estimator
such as the plain mean of |s_j|^2 / n_j (off by n |G|^2, about 100% here) fails.
"""

import csv
import math
import shutil
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from pgdist import Config, Learner, Policy
from pgdist.chunks import make_chunks
from pgdist.config import ConfigError
from pgdist.estimators import Estimator, POLICY_SUMS
from pgdist.goodput import Goodput, learning_rate_gain
from pgdist.metrics import TIMINGS
from pgdist.noise import NoiseEstimate, NoiseScale
from pgdist.policy import GaussianPolicy
from pgdist.theta import parameters_to_vector
from pgdist.worker import RolloutWorker
from replay import float64_policy
from test_cli import run_command, train
from test_estimators import ESTIMATORS, target_bandit_gradients
from test_unbiased import GAMMA, trajectory_gradients

Z_LIMIT = 5.0


@dataclass
class Moments:
    """Exact moments of the per-episode gradient g: its mean G, covariance Sigma and E|g - G|^4."""

    gradient: torch.Tensor
    covariance: torch.Tensor
    fourth: float

    @classmethod
    def of(cls, weighted_gradients):
        """From (probability, g) pairs that cover the whole distribution of g."""
        pairs = list(weighted_gradients)
        assert sum(w for w, _ in pairs) == pytest.approx(1.0, abs=1e-12)
        mean = sum(w * g for w, g in pairs)
        covariance = sum(w * torch.outer(g - mean, g - mean) for w, g in pairs)
        fourth = sum(w * float((g - mean) @ (g - mean)) ** 2 for w, g in pairs)
        return cls(mean, covariance, fourth)

    @property
    def trace_sigma(self) -> float:
        return float(self.covariance.trace())

    @property
    def grad_sq(self) -> float:
        return float(self.gradient @ self.gradient)

    def variances(self, n: int, k: int) -> tuple[float, float]:
        """Var of one iteration's tr(Sigma)^ and |G|^2^ from k chunks of n episodes (module docstring)."""
        trace = self.trace_sigma
        trace_square = float((self.covariance @ self.covariance).trace())
        spread_along_g = float(self.gradient @ self.covariance @ self.gradient)
        t, t2 = trace / n, trace_square / n**2  # tr and tr(^2) of a chunk mean's covariance
        e4 = (self.fourth + (n - 1) * (trace**2 + 2 * trace_square)) / n**3  # E|e|^4, e = y - G

        def u_statistic(zeta_1, zeta_2):
            return (4 * (k - 2) * zeta_1 + 2 * zeta_2) / (k * (k - 1))

        trace_variance = u_statistic(n**2 / 4 * (e4 - t**2), n**2 / 4 * (2 * e4 + 4 * t2 - 2 * t**2))
        grad_sq_variance = u_statistic(spread_along_g / n, t2 + 2 * spread_along_g / n)
        return trace_variance, grad_sq_variance


def check_against_exact(config, policy, moments, iterations):
    """The mean over ``iterations`` of pgdist's estimates at the policy's theta, within 5 standard errors."""
    k = config.episodes // config.chunk_episodes
    assert k * config.chunk_episodes == config.episodes
    rows = []
    with Learner(config, policy=policy) as learner:
        for _ in range(iterations):
            noise = learner.sample().noise
            rows.append((noise.trace_sigma, noise.grad_sq))
    estimates = np.array(rows).mean(axis=0)
    exact = (moments.trace_sigma, moments.grad_sq)
    variances = moments.variances(config.chunk_episodes, k)
    for name, estimate, value, variance in zip(("tr(Sigma)", "|G|^2"), estimates, exact, variances):
        standard_error = math.sqrt(variance / iterations)
        assert Z_LIMIT * standard_error < 0.25 * value, f"{name}: too few iterations to tell"
        z = (estimate - value) / standard_error
        assert abs(z) < Z_LIMIT, f"{name}: mean estimate {estimate:.5g}, exact {value:.5g}, {z:.2f} standard errors"


def test_estimates_match_enumeration_on_the_chain_mdp():
    torch.manual_seed(7)
    policy = Policy(2, 2).double()
    config = Config(env="envs.mdp:ChainMDP", episodes=1000, gamma=GAMMA, chunk_episodes=25, envs_per_chunk=25,
                    backend="local", seed=4)
    check_against_exact(config, policy, Moments.of(trajectory_gradients(policy)), iterations=28)


def test_estimates_match_quadrature_on_the_gaussian_bandit():
    torch.manual_seed(1)
    policy = GaussianPolicy(1, 1, hidden=(8,), log_std=-0.3).double()
    config = Config(env="envs.target:TargetBandit", episodes=1000, chunk_episodes=100, envs_per_chunk=25,
                    backend="local", seed=9)
    # g's heavy tails (R is quadratic in a) make tr(Sigma)^ spread: few large chunks, many iterations
    check_against_exact(config, policy, Moments.of(target_bandit_gradients(policy)), iterations=96)


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
        noise = batch.noise
        value = learner.value
    worker = RolloutWorker(config.env, policy, Estimator.of(config), config.envs_per_chunk, value)
    coefficients = Estimator.of(config).coefficients(batch.sums)
    shares = []
    for chunk in make_chunks(config.episodes, config.chunk_episodes, config.seed, draw=0):
        result = worker.run(parameters_to_vector(policy, value).numpy(), 0, chunk)
        vectors = [getattr(result, name) for name in POLICY_SUMS]
        shares.append((sum(c * v for c, v in zip(coefficients, vectors) if v is not None), chunk.episodes))
    k, n = len(shares), config.episodes
    total = sum(s for s, _ in shares)
    np.testing.assert_allclose(total, Estimator.of(config).combine(batch.sums), rtol=1e-9)
    a = sum(s @ s / n_j for s, n_j in shares)
    c = total @ total / n
    assert noise.trace_sigma == pytest.approx((a - c) / (k - 1), rel=1e-9)
    assert noise.grad_sq == pytest.approx((k * c - a) / (n * (k - 1)), rel=1e-9)


def test_estimates_and_adaptive_n_do_not_depend_on_the_workers(borrowed_actors):
    """One seed, one set of chunks: the local backend's one worker and 3 Ray workers give the same estimates
    and N, step after step, where both plan for 3 workers (goodput.py: ``workers`` pins N's schedule)."""
    names = ("episodes", "trace_sigma", "grad_sq", "noise_scale", "lr")
    _, rows, local_theta = adaptive_run("local", 3, iterations=3)
    local = np.array([[row[name] for name in names] for row in rows], dtype=float)
    assert np.isfinite(local[:, :3]).all()
    assert len(set(local[:, 0])) > 1  # N moved
    _, rows, theta = adaptive_run("ray", 3, iterations=3)
    np.testing.assert_allclose(np.array([[row[name] for name in names] for row in rows], dtype=float), local, rtol=1e-6)
    torch.testing.assert_close(theta, local_theta, rtol=1e-5, atol=1e-6)


def test_one_chunk_has_no_estimate_and_says_why():
    config = Config(env="CartPole-v1", episodes=10, backend="local")
    with Learner(config) as learner:
        metrics = learner.step()
        summary = learner.noise_summary()
    assert metrics["trace_sigma"] is None and metrics["grad_sq"] is None and metrics["noise_scale"] is None
    assert "1 chunk" in summary and "chunk_episodes" in summary


def test_the_end_of_training_line_gives_the_noise_scale_against_n_or_says_why_there_is_none():
    """Each of NoiseScale.summary's four cases, from estimates given by hand."""
    noise = NoiseScale()
    assert noise.summary(40, 10) == "no noise scale: no iteration has measured it yet"
    assert "1 chunk (chunk_episodes = 40)" in noise.summary(40, 40)
    noise.update(NoiseEstimate(trace_sigma=300.0, grad_sq=-1.0), 40)
    assert "the measured |G|^2 is not positive" in noise.summary(40, 10)
    assert "N = 40 episodes" in noise.summary(40, 10)
    noise.update(NoiseEstimate(trace_sigma=300.0, grad_sq=3.0), 40)  # averaged: tr(Sigma) 600 / |G|^2 2 (decayed)
    expected = noise.trace_sigma / noise.grad_sq
    assert noise.summary(1600, 10) == (f"measured noise scale ≈ {expected:,.0f} episodes; "
                                       f"N = 1,600 is {1600 / expected:.2g}× that")


def adaptive_run(backend, workers, iterations=7, **overrides):
    """Each iteration's metrics, and the final theta, of a short adaptive-N run on CartPole-v1.

    At theta_0 CartPole-v1's noise scale is about 120 episodes, which N = 400 resolves at once; a
    fixed cost of 10^6 env steps per iteration makes a larger N pay (goodput.py).
    """
    config = Config(**{**dict(env="CartPole-v1", episodes=400, episodes_max=1600, chunk_episodes=40,
                              envs_per_chunk=40, workers=workers, backend=backend, seed=6, lr=0.01,
                              iteration_cost=1e6, lr_scaling="adascale"), **overrides})
    with Learner(config) as learner:
        rows = [learner.step() for _ in range(iterations)]
        theta = parameters_to_vector(learner.policy)
        summary = learner.goodput.summary()
    assert summary.startswith(f"adaptive N ranged {min(r['episodes'] for r in rows)}-"), summary
    return config, rows, theta


def test_adaptive_n_is_the_goodput_controllers_choice_within_bounds_and_the_lr_follows_it():
    """Each iteration's N is what goodput.py chooses from the iterations' own chunk sums (a fresh controller
    replaying the metrics agrees), in whole chunks within [episodes, episodes_max], by 2x at most; and the
    policy's lr of each step is lr times AdaScale's gain for its N and the noise scale after its batch."""
    config, rows, _ = adaptive_run("local", 2, iterations=6)
    schedule = [row["episodes"] for row in rows]
    assert schedule[0] == config.episodes and len(set(schedule)) > 1, schedule
    assert all(config.episodes <= n <= config.episodes_max and n % config.chunk_episodes == 0 for n in schedule)
    assert all(b <= 2 * a and a <= 2 * b for a, b in zip(schedule, schedule[1:]))
    replay, averages = Goodput(config.episodes, config.episodes_max, config.chunk_episodes, 2, config.iteration_cost), NoiseScale()
    for row, following in zip(rows, rows[1:]):
        averages.update(NoiseEstimate(row["trace_sigma"], row["grad_sq"]), row["episodes"])
        replay.add(row["env_steps"], row["episodes"])
        assert replay.next_episodes(averages, row["episodes"]).episodes == following["episodes"]
        assert averages.value == pytest.approx(row["noise_scale"], rel=1e-9)
    for row in rows:
        gain = learning_rate_gain("adascale", row["episodes"], config.episodes, row["noise_scale"])
        assert row["lr"] == pytest.approx(config.lr * gain, rel=1e-12)
    assert any(row["lr"] > config.lr for row in rows)
    _, capped, _ = adaptive_run("local", 2, iterations=4, episodes_max=820)
    assert max(row["episodes"] for row in capped) == 800  # whole chunks of 40 under 820


def test_resume_gives_the_uninterrupted_n_schedule_and_theta(tmp_path, request):
    """A run that died after iteration 4, its last checkpoint at iteration 3, resumes to the same N and theta."""
    root = request.config.rootpath
    straight, crashed = tmp_path / "straight", tmp_path / "crashed"
    flags = ["--env", "CartPole-v1", "--episodes", "400", "--episodes-max", "1600", "--chunk-episodes", "40",
             "--envs-per-chunk", "40", "--lr", "0.01", "--seed", "6", "--iterations", "5", "--checkpoint-every", "3",
             "--iteration-cost", "1e6", "--lr-scaling", "adascale", "--workers", "2", "--backend", "local"]
    result = train(*flags, "--out", str(straight), cwd=root)
    assert result.returncode == 0, result.stderr
    assert "measured noise scale ≈" in result.stdout
    assert "pgdist: CartPole-v1, N from 400, adaptive up to 1600, 1 worker(s)" in result.stdout
    assert "pgdist: adaptive N ranged 400-" in result.stdout
    shutil.copytree(straight, crashed)
    shutil.copy(crashed / "checkpoint-000003.pt", crashed / "checkpoint.pt")
    result = run_command("resume", str(crashed), cwd=root)
    assert result.returncode == 0, result.stderr

    def metrics(folder):
        return [{k: v for k, v in row.items() if k not in TIMINGS} for row in csv.DictReader(open(folder / "metrics.csv"))]

    assert metrics(crashed) == metrics(straight)
    assert len({row["episodes"] for row in metrics(straight)}) > 1  # N did change along the way
    final = torch.load(crashed / "checkpoint.pt", weights_only=True)
    reference = torch.load(straight / "checkpoint.pt", weights_only=True)
    assert final["episodes"] == reference["episodes"] and final["noise_scale"] == reference["noise_scale"]
    assert final["goodput"] == reference["goodput"]
    for key, tensor in reference["policy"].items():
        torch.testing.assert_close(final["policy"][key], tensor, rtol=0, atol=0)


def test_adaptive_n_needs_two_chunks_and_sane_bounds():
    with pytest.raises(ConfigError, match="episodes_max=50 is invalid: expected a whole number >= episodes=100"):
        Config(episodes=100, episodes_max=50, chunk_episodes=20)
    with pytest.raises(ConfigError, match="episodes=100 is one chunk of chunk_episodes=2000"):
        Config(episodes=100, episodes_max=1000, chunk_episodes=2000)
    with pytest.raises(ConfigError, match="episodes=1 is invalid"):
        Config(episodes=1, episodes_max=1000)  # the default layout cuts N into 2 chunks, which 1 episode cannot make

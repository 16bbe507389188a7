"""pgdist/goodput.py: adaptive N by goodput, and the learning rate that follows N."""

import math

import pytest

from pgdist.goodput import Goodput, efficiency, learning_rate_gain
from pgdist.noise import NoiseEstimate, NoiseScale


def measured(noise_scale: float, episodes: int = 10**6, iterations: int = 30) -> NoiseScale:
    """A NoiseScale that has averaged ``iterations`` exact estimates of B = ``noise_scale`` (resolved, as the
    iterations' ``episodes`` are many against B)."""
    averages = NoiseScale()
    for _ in range(iterations):
        averages.update(NoiseEstimate(trace_sigma=noise_scale * 1.0, grad_sq=1.0), episodes)
    return averages


def controller(least=16, most=4096, chunk=8, workers=2, cost=0.0, episode_steps=100.0) -> Goodput:
    goodput = Goodput(least, most, chunk, workers, cost)
    goodput.add(env_steps=int(episode_steps * least), episodes=least)
    return goodput


def schedule(goodput: Goodput, noise_scale: float, start: int, iterations: int = 12) -> list[int]:
    n, ns = start, [start]
    for _ in range(iterations):
        n = goodput.next_episodes(measured(noise_scale), n).episodes
        ns.append(n)
    return ns


def test_efficiency_and_the_cost_model_are_the_formulas():
    assert efficiency(16, 100.0, 16) == 1.0 and efficiency(64, 100.0, 16) == pytest.approx(116 / 164)
    goodput = controller(chunk=8, workers=2, cost=300.0, episode_steps=50.0)
    assert goodput.episode_steps == 50.0
    assert goodput.cost(16) == 300 + 1 * 8 * 50  # 2 chunks on 2 workers: one wave
    assert goodput.cost(17) == goodput.cost(24) == goodput.cost(32) == 300 + 2 * 8 * 50  # 3 or 4 chunks: two waves
    assert goodput.goodput(32, 100.0) == pytest.approx(32 / 1100 * 116 / 132)


def test_n_grows_to_fill_the_planned_workers_and_no_further_without_a_fixed_cost():
    """With F = 0 every full wave costs the same per episode, so the least N that fills the workers wins;
    N gets there by a factor of 2 at most per iteration, in whole chunks."""
    ns = schedule(controller(least=16, chunk=8, workers=16), noise_scale=1000.0, start=16)
    assert ns[:5] == [16, 32, 64, 128, 128], ns
    assert set(ns[4:]) == {128}
    assert schedule(controller(least=16, chunk=8, workers=2), noise_scale=1000.0, start=16) == [16] * 13


def test_with_a_fixed_cost_n_settles_near_the_square_root_optimum():
    """cost = F + N L / W (full waves): goodput is largest at N = sqrt(F W B / L) (in whole chunks)."""
    chunk, workers, cost, steps, b = 8, 2, 20_000.0, 100.0, 400.0
    ns = schedule(controller(least=16, chunk=chunk, workers=workers, cost=cost, episode_steps=steps), b, 16, 20)
    optimum = math.sqrt(cost * workers * b / steps)  # 400
    assert all(b_ <= 2 * a and a <= 2 * b_ for a, b_ in zip(ns, ns[1:])), ns
    assert abs(math.log(ns[-1] / optimum)) < math.log(1.25), (ns, optimum)
    assert ns[-1] == ns[-2] == ns[-3], ns  # it stays there


def test_n_holds_while_the_gradient_is_unresolved_and_for_gains_under_5_percent():
    goodput = controller(least=16, chunk=8, workers=16)
    unresolved = NoiseScale()
    for _ in range(5):
        unresolved.update(NoiseEstimate(trace_sigma=1000.0, grad_sq=-1.0), 16)
    move = goodput.next_episodes(unresolved, 16)
    assert move.episodes == 16 and move.reason == "held: |G|^2 unresolved"
    move = goodput.next_episodes(measured(1000.0, episodes=16), 16)  # B >> N: |G|^2 is lost in the noise
    assert move.episodes == 16 and move.reason == "held: |G|^2 unresolved"
    # on 2 workers with F = 0, N = 16 fills them; 24 takes 2 waves for 1.5 times the episodes, 32 each wave
    # at a loss of efficiency
    assert controller(workers=2).next_episodes(measured(1e-3), 16).reason == "held: at the best N"
    # a fixed cost whose gain from doubling is under 5%: 16 -> 32 gains 2 (F + 800) / (F + 1600) (B+16)/(B+32) - 1
    small_gain = controller(least=16, chunk=8, workers=2, cost=50.0, episode_steps=100.0)
    move = small_gain.next_episodes(measured(1e6), 16)
    assert move.episodes == 16 and move.reason == "held: gain under 5%", move


def test_n_shrinks_when_the_noise_scale_falls_and_stays_within_its_bounds():
    goodput = controller(least=16, most=100, chunk=8, workers=2, cost=50_000.0, episode_steps=1000.0)
    ns = schedule(goodput, noise_scale=1e4, start=16, iterations=6)
    assert max(ns) <= 96 and all(n % 8 == 0 for n in ns)  # 100 is not a whole number of chunks of 8
    assert ns[-1] == 96
    falling = schedule(goodput, noise_scale=1.0, start=96, iterations=6)
    assert falling == [96, 48, 32, 16, 16, 16, 16], falling  # B = 1: fewer waves win (32 and 24 both take 2)
    assert "shrank" in goodput.reasons and "grew" in goodput.reasons
    assert goodput.summary().startswith("adaptive N ranged 16-96")


def test_a_least_n_off_the_chunk_grid_is_still_reachable_and_a_negative_b_reads_as_0():
    goodput = controller(least=20, chunk=8, workers=2)
    assert goodput.candidates(24) == [20, 24, 32, 40, 48] and goodput.candidates(64) == [32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128]
    negative = NoiseScale()
    for _ in range(30):
        negative.update(NoiseEstimate(trace_sigma=-1.0, grad_sq=1.0), 10**6)
    move = goodput.next_episodes(negative, 40)  # B = 0: goodput N0 / cost(N), the fewest waves (20 and 24: 2) win
    assert move.episodes == 20 and move.reason == "shrank", move


def test_the_learning_rate_gain_of_each_scaling():
    assert learning_rate_gain("none", 64, 16, 100.0) == 1.0
    assert learning_rate_gain("sqrt", 64, 16, 100.0) == 2.0
    # AdaScale's r = (sigma^2 + |G|^2) / (sigma^2 / S + |G|^2), sigma^2 = tr(Sigma) / N0, S = N / N0, B = tr(Sigma)/|G|^2
    trace_sigma, grad_sq, least, n = 300.0, 2.0, 16, 64
    r = (trace_sigma / least + grad_sq) / (trace_sigma / least / (n / least) + grad_sq)
    assert learning_rate_gain("adascale", n, least, trace_sigma / grad_sq) == pytest.approx(r)
    assert learning_rate_gain("adascale", n, least, None) == n / least  # B unmeasured: the noise-dominated limit
    assert learning_rate_gain("adascale", least, least, 5.0) == 1.0


def test_state_round_trips():
    goodput = controller(cost=1000.0)
    schedule(goodput, 300.0, 16, 3)
    other = Goodput(16, 4096, 8, 2, 1000.0)
    other.load_state_dict(goodput.state_dict())
    assert other.state_dict() == goodput.state_dict()

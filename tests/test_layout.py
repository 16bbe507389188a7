"""The layout of N episodes in chunks: a pure function of the configuration, whatever the workers."""

import logging

import pytest
import torch

from pgdist import Config, Learner
from pgdist.backends import LocalBackend
from pgdist.layout import MAX_CHUNK, MAX_CHUNK_STEPS, MAX_ENVS, MIN_CHUNK, layout
from pgdist.theta import parameters_to_vector

SIZES = [1, 10, 999, 1000, 2000, 4000, 32000, 100_000, 1_000_000, 10_000_000]


@pytest.mark.parametrize("episodes", SIZES)
def test_the_layout_depends_on_the_configuration_not_on_the_workers(episodes):
    config = Config(env="CartPole-v1", episodes=episodes)
    cut = layout(config)
    for other in (config.replace(workers=1), config.replace(workers=64), config.replace(backend="local"),
                  config.replace(address="10.0.0.1:6379"), config.replace(seed=5, lr=0.5)):
        assert layout(other) == cut
    assert 1 <= cut.envs_per_chunk <= min(cut.chunk_episodes, MAX_ENVS)
    assert cut.chunk_episodes <= MAX_CHUNK and cut.chunk_episodes * 500 <= MAX_CHUNK_STEPS  # CartPole's cap: 500
    if episodes >= 2 * MIN_CHUNK:
        assert cut.chunks(episodes) >= 2, "N that allows it makes chunks for more than one worker"
    chunk_sizes = {min(cut.chunk_episodes, episodes - start) for start in range(0, episodes, cut.chunk_episodes)}
    assert max(chunk_sizes) - min(chunk_sizes) <= cut.chunks(episodes), "chunks of N are (nearly) equal"


def test_large_n_leaves_chunks_for_many_workers():
    assert layout(Config(episodes=1_000_000)).chunks(1_000_000) >= 60


def test_the_episode_cap_bounds_a_chunk_s_steps():
    """An env whose episodes may last 10,000 steps gets smaller chunks than CartPole's 500."""
    long = layout(Config(env="envs.line:LineWalk", episodes=1_000_000))  # pgdist's default cap, 10,000
    assert long.chunk_episodes * 10_000 <= MAX_CHUNK_STEPS
    assert layout(Config(env="CartPole-v1", episodes=1_000_000, max_episode_steps=10_000)) == long


def test_overrides_win_and_the_copies_follow_the_chunk():
    config = Config(episodes=32000, chunk_episodes=100)
    assert layout(config).chunk_episodes == 100
    assert layout(config).envs_per_chunk == layout(Config(episodes=100)).envs_per_chunk  # the rule's for 100
    assert layout(config.replace(envs_per_chunk=7)).envs_per_chunk == 7


def test_adaptive_n_gets_two_chunks_or_more():
    config = Config(episodes=64, episodes_max=4096)
    assert layout(config).chunks(64) >= 2


def test_the_default_layout_gives_one_theta_for_any_number_of_workers(borrowed_actors):
    """N = 2000 makes 2 chunks under the rule: 3 Ray workers and one local worker agree."""
    config = Config(env="CartPole-v1", episodes=2000, lr=0.02, seed=4, workers=3)
    assert layout(config).chunks(2000) > 1
    thetas = []
    for backend in ("ray", "local"):
        with Learner(config.replace(backend=backend)) as learner:
            for _ in range(2):
                learner.step()
            thetas.append(parameters_to_vector(learner.policy))
    torch.testing.assert_close(thetas[0], thetas[1], rtol=1e-5, atol=1e-7)


class FourWorkers(LocalBackend):
    """The local worker, counted as four: what the Learner tells about workers it cannot feed."""

    workers = 4


@pytest.mark.parametrize("episodes,chunk_episodes,told", [
    (4000, 2000, True), (100, None, False), (1000, None, False), (8000, None, True), (256_000, None, False)])
def test_idle_workers_are_told_in_pgdist_s_words_only_when_smaller_chunks_would_feed_them(
        caplog, episodes, chunk_episodes, told):
    config = Config(env="CartPole-v1", episodes=episodes, chunk_episodes=chunk_episodes, backend="local")
    with caplog.at_level(logging.WARNING, logger="pgdist"):
        Learner(config, backend=FourWorkers).close()
    lines = [record.getMessage() for record in caplog.records if "busy" in record.getMessage()]
    assert bool(lines) == told
    if told:
        assert lines[0].startswith(f"pgdist: N={episodes} makes 2 chunk(s)") and "keep 2 of 4 workers busy" in lines[0]
        assert f"chunk_episodes (--chunk-episodes) to {episodes // 4} or less" in lines[0]

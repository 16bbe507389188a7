"""Every recipe in configs/ trains: two iterations of it at a small N, with the recipe's own estimator,
network and learning rates, through the Learner (local backend, no Ray start).

Recipes are found by glob, so a new one is tested as soon as it is added. A recipe whose environment
needs a package that is not installed (an extra: mujoco, atari, box2d) is skipped, the reason naming
what is missing; any other error in a recipe fails its test.
"""

from pathlib import Path

import numpy as np
import pytest

from pgdist import Config, Learner
from pgdist.config import read_yaml
from pgdist.envs import EnvError, env_spaces
from pgdist.theta import parameters_to_vector

RECIPES = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.yaml"))
MISSING_PACKAGE = ("needs a package that is not installed", "No module named", "Namespace")  # EnvError's words for it


def small(recipe: Path) -> Config:
    """The recipe at N = 2 episodes in chunks of one, each episode cut at 50 steps, for 2 iterations."""
    return Config(**{
        **read_yaml(recipe),
        "episodes": 2, "episodes_max": None, "chunk_episodes": 1, "envs_per_chunk": 1,
        "max_episode_steps": 50, "iterations": 2, "stop_return": None, "backend": "local",
    })


def test_the_recipes_are_found():
    assert {"cartpole.yaml", "acrobot.yaml", "pendulum.yaml"} <= {recipe.name for recipe in RECIPES}


@pytest.mark.parametrize("recipe", RECIPES, ids=[recipe.stem for recipe in RECIPES])
def test_a_recipe_runs_two_iterations(recipe):
    config = small(recipe)
    try:
        env_spaces(config.env)
    except EnvError as error:
        if any(words in error.message for words in MISSING_PACKAGE):
            pytest.skip(f"{recipe.name}: {error.message}")
        raise
    with Learner(config) as learner:
        theta = parameters_to_vector(learner.policy, learner.value).numpy()
        metrics = [learner.step() for _ in range(config.iterations)]
        moved = parameters_to_vector(learner.policy, learner.value).numpy()
    assert [m["iteration"] for m in metrics] == [1, 2]
    assert all(m["episodes"] == 2 and 2 <= m["steps"] <= 100 for m in metrics)
    assert all(np.isfinite(m["return_mean"]) and np.isfinite(m["gradient_norm"]) for m in metrics)
    assert np.all(np.isfinite(moved)) and not np.array_equal(theta, moved)

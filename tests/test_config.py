"""Config: the tutorial's defaults, and a clear error for every bad value before any Ray process starts."""

import dataclasses
import os
import subprocess
import sys
import uuid

import psutil
import pytest

from pgdist import Config, ConfigError
from pgdist.envs import EnvError, check_env_name


def test_defaults_are_the_tutorials():
    config = Config()
    assert (config.episodes, config.lr, config.gamma, config.hidden) == (10, 1e-3, 0.95, (8, 8))
    assert config.address is None and config.workers is None


def test_every_field_is_documented():
    for field in dataclasses.fields(Config):
        assert field.metadata.get("help"), field.name


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().episodes = 3


@pytest.mark.parametrize(
    "field,value,words",
    [
        ("episodes", 0, "episodes=0"),
        ("episodes", 2.5, "episodes=2.5"),
        ("workers", 0, "workers=0"),
        ("gamma", 0.0, "gamma=0.0"),
        ("gamma", 1.5, "gamma=1.5"),
        ("lr", 0.0, "lr=0.0"),
        ("lr", -1e-3, "lr=-0.001"),
        ("iterations", 0, "iterations=0"),
        ("chunk_episodes", 0, "chunk_episodes=0"),
        ("hidden", (8, 0), "hidden=(8, 0)"),
        ("backend", "mpi", "backend='mpi'"),
        ("chunk_timeout", 0, "chunk_timeout=0"),
        ("chunk_timeout", -5.0, "chunk_timeout=-5.0"),
        ("chunk_timeout", True, "chunk_timeout=True"),
        ("env", "", "env=''"),
        ("gae_lambda", 1.5, "gae_lambda=1.5"),
        ("bound_actions", "squash", "bound_actions='squash'"),
        ("observation_clip", 0.0, "observation_clip=0.0"),
        ("normalize_observations", "yes", "normalize_observations='yes'"),
        ("value_epochs", 0, "value_epochs=0"),
    ],
)
def test_bad_value_names_the_field_and_value(field, value, words):
    with pytest.raises(ConfigError) as error:
        Config(**{field: value})
    assert words in str(error.value)


def test_tanh_bounds_on_discrete_actions_are_named():
    from pgdist import Learner

    with pytest.raises(ConfigError, match="bound_actions='tanh' squashes the Gaussian policy's actions"):
        Learner(Config(env="CartPole-v1", backend="local", bound_actions="tanh"))


def test_gae_without_a_value_baseline_is_named():
    with pytest.raises(ConfigError, match="returns='gae' needs baseline='value'"):
        Config(returns="gae")


def test_value_epochs_without_a_value_baseline_is_named():
    with pytest.raises(ConfigError, match="value_epochs=3 fits a learned V.s.: it needs baseline='value'"):
        Config(value_epochs=3, baseline="mean")


@pytest.mark.parametrize("env, words", [
    ("NoSuchEnv-v0", "env='NoSuchEnv-v0': gymnasium does not know it"),
    ("no_such_module:Env", "env='no_such_module:Env': cannot import module"),
    ("envs.line:NoSuchClass", "no class 'NoSuchClass'"),
])
def test_an_env_that_does_not_exist_is_named(env, words):
    """Config checks fields' forms and imports nothing of pgdist; whether an env exists, pgdist.envs says."""
    with pytest.raises(EnvError, match=words):
        check_env_name(env)


def processes_marked(mark):
    """The processes whose environment holds PGDIST_TEST_MARK=mark: those a command started, and theirs."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("PGDIST_TEST_MARK") == mark:
                found.append(process.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


@pytest.mark.parametrize("env", ["NoSuchEnv-v0", "no_such_module:Env"])
def test_a_bad_env_fails_before_ray_starts_and_leaves_nothing(env, tmp_path):
    """Ray's own temp folder (RAY_TMPDIR) stays empty: no Ray session began. Other tests' Ray
    instances may start meanwhile, so what the command leaves is told by a mark in its environment."""
    mark = str(uuid.uuid4())
    result = subprocess.run(
        [sys.executable, "-m", "pgdist.cli", "train", "--env", env, "--iterations", "1"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "RAY_TMPDIR": str(tmp_path), "PGDIST_TEST_MARK": mark},
    )
    assert result.returncode == 2
    assert f"env='{env}'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir()), "Ray started a session"
    assert processes_marked(mark) == []


def test_yaml_round_trip(tmp_path):
    config = Config(env="Acrobot-v1", episodes=64, hidden=(32, 16), returns="reward_to_go", standardize=True,
                    stop_return=-100.0, workers=3)
    path = tmp_path / "config.yaml"
    path.write_text(config.to_yaml())
    assert Config.from_yaml(path) == config


@pytest.mark.parametrize(
    "text,words",
    [
        ("episodes: 10\nlearning_rate: 0.1\n", ["config.yaml:2", "unknown key 'learning_rate'", "lr"]),
        ("env: CartPole-v1\n\nepisodes: ten\n", ["config.yaml:3", "episodes='ten'", "a whole number"]),
        ("standardize: maybe\n", ["config.yaml:1", "standardize='maybe'", "true or false"]),
        ("hidden: 32\n", ["config.yaml:1", "hidden=32", "a list of whole numbers"]),
        ("- episodes\n", ["config.yaml:1", "key: value"]),
        ("episodes: [1\n", ["not valid YAML"]),
    ],
)
def test_a_bad_config_file_names_the_line_and_what_was_expected(tmp_path, text, words):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        Config.from_yaml(path)
    for word in words:
        assert word in str(error.value)


def test_yaml_numbers_in_either_notation(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("lr: 1e-2\ngamma: 1\nentropy: .5\n")
    config = Config.from_yaml(path)
    assert (config.lr, config.gamma, config.entropy) == (0.01, 1.0, 0.5)


def test_the_configuration_reference_lists_every_field(request):
    reference = (request.config.rootpath / "docs" / "configuration.md").read_text()
    for field in dataclasses.fields(Config):
        assert f"| `{field.name}` |" in reference, f"docs/configuration.md misses {field.name}"
        assert field.metadata["help"].replace("|", "/") in reference, f"docs/configuration.md is stale on {field.name}"

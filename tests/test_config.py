"""Config: the tutorial's defaults, and a clear error for every bad value before any Ray process starts."""

import dataclasses
import subprocess
import sys

import psutil
import pytest

from pgdist import Config, ConfigError


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
        ("env", "NoSuchEnv-v0", "env='NoSuchEnv-v0'"),
        ("env", "no_such_module:Env", "env='no_such_module:Env'"),
        ("env", "envs.line:NoSuchClass", "no class 'NoSuchClass'"),
    ],
)
def test_bad_value_names_the_field_and_value(field, value, words):
    with pytest.raises(ConfigError) as error:
        Config(**{field: value})
    assert words in str(error.value)


def ray_processes():
    names = ("raylet", "gcs_server")
    return {p.pid for p in psutil.process_iter(["name"]) if p.info["name"] in names}


@pytest.mark.parametrize("env", ["NoSuchEnv-v0", "no_such_module:Env"])
def test_a_bad_env_fails_before_ray_starts_and_leaves_nothing(env):
    before = ray_processes()
    result = subprocess.run(
        [sys.executable, "-m", "pgdist.cli", "train", "--env", env, "--iterations", "1"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert f"env='{env}'" in result.stderr
    assert "Traceback" not in result.stderr
    assert ray_processes() <= before

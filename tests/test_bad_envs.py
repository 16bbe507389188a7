"""Bad environments fail well: one line naming the env, the chunk, the iteration and the step;
no retry; episodes that never end are cut at max_episode_steps; unsupported spaces and missing
packages are one line before any Ray process starts."""

import contextlib
import logging
import os
import re
import subprocess
import sys
import time

import gymnasium
import psutil
import pytest
import torch

from pgdist import Config, Learner, Policy
from pgdist.envs import DEFAULT_MAX_EPISODE_STEPS, EnvError, check_env_name, time_limit
from pgdist.vector_envs import make_vector_env
from tests.bad_envs import FAULT_LOG, faults
from test_unbiased import GAMMA, exact_gradient_and_variance

STEP = "at step 7 of an episode in chunk 0 of iteration 1"
WORKER_FAULTS = [
    ("tests.bad_envs:NanReward", f"reward is nan {STEP}"),
    ("tests.bad_envs:InfiniteObservation", f"observation holds -inf {STEP}"),
    ("tests.bad_envs:GrowingObservation", f"observation has 2 numbers, not 1 as before, {STEP}"),
    ("tests.bad_envs:RaisingStep", f"step raised RuntimeError: the simulator lost its state {STEP}"),
    ("tests.bad_envs:BadLine-nan_reward-v0", f"reward is nan {STEP}"),
    ("tests.bad_envs:BadLine-inf_observation-v0", f"observation holds -inf {STEP}"),
    ("tests.bad_envs:BadLine-growing_observation-v0", f"observation has shape (2,), not its space's (1,), {STEP}"),
    ("tests.bad_envs:BadLine-raise-v0", f"step raised RuntimeError: the simulator lost its state {STEP}"),
]


@pytest.fixture
def fault_log():
    if os.path.exists(FAULT_LOG):
        os.remove(FAULT_LOG)
    yield
    if os.path.exists(FAULT_LOG):
        os.remove(FAULT_LOG)


@pytest.mark.parametrize("env,problem", WORKER_FAULTS)
def test_a_bad_env_is_one_line_naming_env_chunk_and_step_and_is_not_retried(backend, fault_log, env, problem):
    """One episode on one copy: the fault happens once per run of the chunk, and the chunk runs once.

    Through Ray the worker's error comes back wrapped (RayTaskError); it is still an EnvError
    and the learner shows the worker's one line, keeping the wrapper (the env's traceback) as cause.
    """
    config = Config(env=env, episodes=1, envs_per_chunk=1, backend=backend, workers=1, seed=3)
    with Learner(config) as learner:
        with pytest.raises(EnvError) as caught:
            learner.step()
    assert str(caught.value) == f"env {env}: {problem}"
    assert faults() == 1
    if backend == "ray":
        assert "in rollout" in str(caught.value.__cause__)  # the worker's traceback, which --debug shows


def test_the_envs_own_traceback_is_the_cause(backend):
    config = Config(env="tests.bad_envs:RaisingStep", episodes=1, envs_per_chunk=1, backend=backend, workers=1)
    with Learner(config) as learner:
        with pytest.raises(EnvError) as caught:
            learner.step()
    cause = caught.value.__cause__
    if backend == "local":
        assert isinstance(cause, RuntimeError) and str(cause) == "the simulator lost its state"
    else:
        assert "in fault" in str(cause) and "RuntimeError: the simulator lost its state" in str(cause)


def test_a_reset_that_raises_names_the_reset(backend):
    """RaisingReset's second reset raises: chunk 1 resets the copies chunk 0 used (or a fresh worker's)."""
    config = Config(env="tests.bad_envs:RaisingReset", episodes=3, chunk_episodes=3, envs_per_chunk=2,
                    backend=backend, workers=1)
    with Learner(config) as learner:
        with pytest.raises(EnvError, match=re.escape(
            "env tests.bad_envs:RaisingReset: reset raised OSError: cannot open the level file "
            "at the reset of an episode in chunk 0 of iteration 1"
        )):
            learner.step()


def test_an_endless_episode_is_cut_at_max_episode_steps_and_said_once(backend, caplog):
    config = Config(env="tests.bad_envs:Endless", episodes=6, chunk_episodes=2, envs_per_chunk=2,
                    max_episode_steps=30, backend=backend, workers=2)
    with caplog.at_level(logging.WARNING, logger="pgdist"), Learner(config) as learner:
        rows = [learner.step() for _ in range(2)]
    assert [(row["episodes"], row["steps"], row["truncated"]) for row in rows] == [(6, 180, 6)] * 2
    notices = [record.getMessage() for record in caplog.records if "max_episode_steps" in record.getMessage()]
    assert notices == [
        "pgdist: 6 of the 6 episodes of iteration 1 reached max_episode_steps=30 and were cut there (counted in "
        "metrics' 'truncated'); the gradient is that of the capped episodes; set max_episode_steps "
        "(--max-episode-steps) to change it"
    ]


@pytest.mark.parametrize("env", ["CartPole-v1", "Acrobot-v1", "tests.bad_envs:EndlessLine-v0"])
def test_gymnasium_envs_are_cut_at_max_episode_steps(env):
    """CartPole's own vector env takes the cap as an argument; the others get gymnasium's TimeLimit.
    A CartPole or Acrobot episode lasts more than 5 steps, so each is cut."""
    config = Config(env=env, episodes=6, envs_per_chunk=3, max_episode_steps=5, backend="local")
    with Learner(config) as learner:
        row = learner.step()
    assert (row["steps"], row["truncated"]) == (30, 6)


def test_the_default_cap_is_the_envs_own_time_limit_else_pgdists():
    assert time_limit("CartPole-v1", None) == (500, False)
    assert time_limit("CartPole-v1", 100) == (100, True)
    assert time_limit("tests.bad_envs:Endless", None) == (DEFAULT_MAX_EPISODE_STEPS, True)
    assert time_limit("tests.bad_envs:EndlessLine-v0", None) == (DEFAULT_MAX_EPISODE_STEPS, True)
    vector = make_vector_env("tests.bad_envs:EndlessLine-v0", 2)
    assert [copy.spec.max_episode_steps for copy in vector.env.envs] == [DEFAULT_MAX_EPISODE_STEPS] * 2
    assert make_vector_env("tests.bad_envs:Endless", 2).max_episode_steps == DEFAULT_MAX_EPISODE_STEPS


def test_the_envs_own_time_limit_is_no_truncation_of_pgdists():
    """Acrobot's TimeLimit of 500 is the env's definition: an episode it ends (return -500) is not counted as cut."""
    with Learner(Config(env="Acrobot-v1", episodes=2, backend="local", seed=1)) as learner:
        row = learner.step()
    assert row["return_min"] == -500.0 and row["truncated"] == 0


def test_a_capped_endless_mdp_gives_the_unbiased_gradient_of_the_capped_mdp():
    """EndlessChainMDP cut at 3 steps is ChainMDP: pgdist's estimate is unbiased for ChainMDP's exact grad J.

    As in test_unbiased.py: each component within 5 standard errors of the exact gradient.
    """
    torch.manual_seed(7)
    policy = Policy(2, 2).double()
    exact, variance = exact_gradient_and_variance(policy)
    episodes = 10_000
    config = Config(env="tests.bad_envs:EndlessChainMDP", episodes=episodes, gamma=GAMMA, chunk_episodes=2_500,
                    envs_per_chunk=64, max_episode_steps=3, backend="local", seed=4)
    with Learner(config, policy=policy) as learner:
        estimate = learner.estimate_gradient()
    z = (estimate - exact) / (variance / episodes).sqrt()
    assert z.abs().max() < 5.0, f"largest error {z.abs().max():.2f} standard errors"


OBSERVATIONS_SUPPORTED = "only Box, Discrete, MultiDiscrete, MultiBinary, or a Tuple or Dict of these"


@pytest.mark.parametrize(
    "env,problem",
    [
        ("tests.bad_envs:TextObservation-v0", "pgdist does not support Text observations (Text(1, 5, charset="),
        ("tests.bad_envs:SequenceObservation-v0", "pgdist does not support Sequence observations (Sequence(Box("),
        ("tests.bad_envs:GraphObservation-v0", "pgdist does not support Graph observations (Graph(Box("),
        ("tests.bad_envs:DictWithText-v0", "pgdist does not support Dict observations (Dict('name': Text("),
        ("tests.bad_envs:TupleActions", "pgdist does not support Tuple actions (Tuple(Discrete(2), Discrete(3))), "
                                        "only Discrete, Box, MultiDiscrete or MultiBinary"),
        ("tests.bad_envs:TextActions", "pgdist does not support Text actions (Text(1, 4, charset="),
    ],
)
def test_an_unsupported_space_is_one_line_before_any_worker_starts(env, problem):
    before = set(psutil.Process().children(recursive=True))
    with pytest.raises(EnvError) as caught:
        Learner(Config(env=env, backend="ray", workers=2))
    assert str(caught.value).startswith(f"env {env}: {problem}") and "\n" not in str(caught.value)
    if "observations" in problem:
        assert str(caught.value).endswith(OBSERVATIONS_SUPPORTED)
    assert set(psutil.Process().children(recursive=True)) <= before


def test_a_missing_package_says_what_to_install():
    try:
        import Box2D  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("Box2D is installed here")
    with pytest.raises(EnvError, match=re.escape("env CarRacing-v3 needs a package that is not installed: Box2D "
                                                 "is not installed, you can install it by run `pip install swig`")):
        Learner(Config(env="CarRacing-v3", backend="ray"))


def test_taxi_v3_is_not_in_this_gymnasium():
    assert "Taxi-v3" not in gymnasium.registry
    with pytest.raises(EnvError, match="env='Taxi-v3': gymnasium does not know it"):
        check_env_name("Taxi-v3")


def run_watched(args, cwd):
    """Run ``pgdist`` to its end, noting every process it started on the way (Ray's among them)."""
    process = subprocess.Popen([sys.executable, "-m", "pgdist.cli", *args], cwd=cwd, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    driver = psutil.Process(process.pid)
    seen = {}  # process -> its name when last seen (a child is 'python3' until it execs its program)
    while process.poll() is None:
        try:
            children = driver.children(recursive=True)
        except psutil.NoSuchProcess:
            break
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                seen[child] = child.name()
        time.sleep(0.05)
    stdout, stderr = process.communicate(timeout=120)
    return process.returncode, stdout, stderr, seen


RAISING_STEP_LINE = re.compile(
    r"env tests\.bad_envs:RaisingStep: step raised RuntimeError: the simulator lost its state "
    r"at step 7 of an episode in chunk \d of iteration 1"
)


def test_pgdist_train_on_a_bad_env_is_one_line_exit_2_and_leaves_no_ray_process(tmp_path, request):
    """A real `pgdist train` with its own local Ray instance: 3 workers (2 actors and this process)."""
    code, stdout, stderr, seen = run_watched(
        ["train", "--env", "tests.bad_envs:RaisingStep", "--episodes", "6", "--chunk-episodes", "1",
         "--envs-per-chunk", "1", "--workers", "3", "--iterations", "2", "--out", str(tmp_path / "run")],
        request.config.rootpath,
    )
    assert code == 2, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("pgdist: error: ")]
    assert len(errors) == 1 and RAISING_STEP_LINE.fullmatch(errors[0].removeprefix("pgdist: error: ")), stderr
    assert "Traceback" not in stderr  # (Ray's own token-auth warning line may come too: issue 9, item 6)
    assert "raylet" in seen.values(), seen
    assert [p for p in seen if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []


def test_pgdist_debug_shows_the_envs_own_traceback(tmp_path, request):
    code, _, stderr, _ = run_watched(
        ["--debug", "train", "--env", "tests.bad_envs:RaisingStep", "--episodes", "2", "--backend", "local",
         "--out", str(tmp_path / "run")],
        request.config.rootpath,
    )
    assert code != 0 and "Traceback" in stderr and RAISING_STEP_LINE.search(stderr)
    assert 'in fault\n    raise RuntimeError("the simulator lost its state")' in stderr


def test_pgdist_train_on_an_unsupported_space_is_one_line_exit_2(tmp_path, request):
    code, _, stderr, seen = run_watched(["train", "--env", "tests.bad_envs:TextObservation-v0", "--out",
                                         str(tmp_path / "run")], request.config.rootpath)
    assert code == 2
    assert stderr.startswith("pgdist: error: env tests.bad_envs:TextObservation-v0: pgdist does not support Text "
                             "observations (Text(1, 5, charset=")
    assert stderr.endswith(f"{OBSERVATIONS_SUPPORTED}\n") and stderr.count("\n") == 1
    assert "raylet" not in seen.values()

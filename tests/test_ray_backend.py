"""What only the Ray backend does: loopback, stopping what it started, losing a worker and getting it back."""

import os
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
import ray
import torch

from pgdist import Config, Learner
from pgdist.ray import backend as ray_backend
from pgdist.backends import WorkerError
from pgdist.theta import parameters_to_vector, state_to_vector
from tests import hanging_env, killing_env
from tests.dying_env import ARMED
from tests.listening import is_loopback, listening_addresses


def test_a_local_instance_listens_on_loopback_only(ray_instance):
    config = Config(env="CartPole-v1", episodes=4, workers=2)
    with Learner(config) as learner:
        learner.step()
        addresses = listening_addresses(psutil.Process())
    assert addresses, "found no listening Ray process"
    assert all(is_loopback(address) for address in addresses), addresses


def test_joining_an_instance_leaves_it_running(ray_instance):
    with Learner(Config(env="CartPole-v1", episodes=2, workers=1)) as learner:
        actors = list(learner.backend.actors)
    assert ray_instance.is_initialized()
    with pytest.raises(ray_instance.exceptions.RayActorError):
        ray_instance.get(actors[0].node.remote(), timeout=30)


def test_a_learner_that_starts_ray_stops_it_and_everything_it_started():
    script = textwrap.dedent(
        """
        import psutil, ray
        from pgdist import Config, Learner
        me = psutil.Process()
        with Learner(Config(env="CartPole-v1", episodes=2, workers=2)) as learner:
            learner.step()
            during = {p.pid for p in me.children(recursive=True)}
        assert not ray.is_initialized()
        alive = [pid for pid in during if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
        print(len(during), alive)
        assert during and not alive, alive
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


def test_on_its_own_instance_the_learner_samples_too_and_gets_the_same_theta():
    """workers=2 on a local instance pgdist starts: one actor and this process, which runs the
    chunks while the actor starts; once it is up the actor takes its share. Same theta as one process."""
    script = textwrap.dedent(
        """
        import ray, torch
        from pgdist import Config, Learner
        from pgdist.theta import parameters_to_vector, state_to_vector
        config = Config(env="CartPole-v1", episodes=40, chunk_episodes=5, envs_per_chunk=4, lr=0.02, workers=2, seed=3)
        with Learner(config) as learner:
            assert learner.backend.workers == 2 and len(learner.backend.actors) == 1, learner.backend.actors
            assert learner.backend.local_worker is not None
            learner.step()
            learner.backend.nodes()  # the actor is up
            runs = []
            local_run = learner.backend.local_worker.run
            learner.backend.local_worker.run = lambda *args: runs.append(1) or local_run(*args)
            for _ in range(2):
                learner.step()
            assert 0 < len(runs) < 16, len(runs)  # of 2 x 8 chunks, some ran here and some on the actor
            theta = parameters_to_vector(learner.policy)
        with Learner(config.replace(backend="local")) as reference:
            for _ in range(3):
                reference.step()
        torch.testing.assert_close(theta, parameters_to_vector(reference.policy), rtol=1e-5, atol=1e-7)
        print("ok", len(runs))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ok")


def test_a_chunk_whose_worker_died_is_run_again_elsewhere(ray_instance):
    """The dead worker's chunk goes to another; it owns its randomness, so the result is unchanged."""
    config = Config(env="tests.dying_env:DyingLineWalk", episodes=12, chunk_episodes=2, workers=3, seed=4)
    with Learner(config) as learner:
        learner.step()
        learner.backend.nodes()  # every actor is up
        learner.step()  # every actor has made its environments
        with open(ARMED, "w"):
            pass
        workers = learner.step()["workers"]
        theta = parameters_to_vector(learner.policy)
    assert not os.path.exists(ARMED), "no worker reached a reset"
    assert workers == 2  # Ray restarts the dead actor, but it has not answered yet
    assert_theta_of_local_backend(theta, config.replace(env="envs.line:LineWalk"), iterations=3)


def test_a_worker_lost_between_rounds_of_the_value_fit_changes_nothing(ray_instance):
    """value_epochs: an actor holding chunks' steps is SIGKILLed after the sampling call, before V's
    rounds; its chunks run again elsewhere at the iteration's theta, with the same steps and targets."""
    config = Config(env="Pendulum-v1", episodes=12, chunk_episodes=2, envs_per_chunk=2, lr=0.01, workers=3, seed=5,
                    normalize_observations=True, returns="gae", baseline="value", value_epochs=4, max_episode_steps=40)
    with Learner(config) as learner:
        learner.step()
        learner.backend.nodes()  # every actor is up
        batch = learner.sample()
        holders = set(learner.backend.dispatch.ran.values())
        pids = dict(zip(learner.backend.actors, actor_pids(learner.backend)))
        victim = next(actor for actor in learner.backend.actors if actor in holders)
        os.kill(pids[victim], 9)
        learner.update(batch)
        assert not psutil.pid_exists(pids[victim]), "the actor was never killed"
        learner.step()
        theta = state_to_vector(learner.policy, learner.value)
    with Learner(config.replace(backend="local")) as reference:
        for _ in range(3):
            reference.step()
    torch.testing.assert_close(theta, state_to_vector(reference.policy, reference.value), rtol=1e-5, atol=1e-7)


def assert_theta_of_local_backend(theta, config, iterations):
    """One seed, one theta: ``theta`` is what the local backend gives after ``iterations`` steps."""
    with Learner(config.replace(backend="local")) as reference:
        for _ in range(iterations):
            reference.step()
    torch.testing.assert_close(theta, parameters_to_vector(reference.policy), rtol=1e-5, atol=1e-7)


def actor_pids(backend):
    return ray.get([actor.__ray_call__.remote(lambda worker: os.getpid()) for actor in backend.actors])


def test_learners_in_turn_borrow_the_same_actors_and_each_gets_its_own_theta(ray_instance):
    """Three runs on one RayWorkers: no actor starts twice, one killed between runs is restarted by
    Ray and set up again, and each run's theta is the local backend's for its own config."""
    config = Config(env="CartPole-v1", episodes=8, chunk_episodes=2, envs_per_chunk=2, workers=2, seed=5)
    with ray_backend.RayWorkers(2) as workers:
        pids = []
        for lr in (0.01, 0.05, 0.01):
            run = config.replace(lr=lr)
            with Learner(run) as learner:  # backend: ray, so it borrows from the open RayWorkers
                assert learner.backend.lender is workers
                learner.step()
                learner.step()
                learner.backend.nodes()  # every actor is up (the killed one restarted)
                pids.append(actor_pids(learner.backend))
                theta = parameters_to_vector(learner.policy)
            assert_theta_of_local_backend(theta, run, iterations=2)
            if len(pids) == 1:
                assert len(workers.idle) == 2 and not workers.lent
                os.kill(pids[0][0], 9)
        with pytest.raises(ValueError, match="asks for 3 Ray workers .* has 2 of its 2 free"):
            Learner(config.replace(workers=3), backend=workers)
    assert pids[1] == pids[2] and pids[0][1] == pids[1][1]  # the same processes, but the killed one
    assert pids[0][0] != pids[1][0] and not psutil.pid_exists(pids[0][0])
    assert ended(pids[2]), "closing the RayWorkers leaves its actors running"


def ended(pids: list[int], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while any(psutil.pid_exists(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not any(psutil.pid_exists(pid) for pid in pids)


@pytest.fixture
def armed_envs():
    """The killing and hanging envs, disarmed before and after the test."""
    killing_env.disarm()
    hanging_env.disarm()
    yield
    killing_env.disarm()
    hanging_env.disarm()


def test_killed_actors_are_restarted_and_every_iteration_has_its_episodes(ray_instance, armed_envs):
    """SIGKILL one actor mid-batch at iteration 2 and two at once at iteration 4: Ray restarts them
    (max_restarts), their chunks run again elsewhere, and the worker count comes back to 3."""
    config = Config(env="tests.killing_env:KillingLineWalk", episodes=12, chunk_episodes=2, envs_per_chunk=2,
                    workers=3, lr=0.05, seed=4)
    kills = {2: 1, 4: 2}  # iteration -> actors killed in its batch
    with Learner(config) as learner:
        actors = list(learner.backend.actors)
        before = set(actor_pids(learner.backend))
        rows = []
        for iteration in range(1, 7):
            if iteration in kills:
                learner.backend.nodes()  # every actor is up: the killed ones' chunks have somewhere to go
                killing_env.arm(kills[iteration])
            rows.append(learner.step())
            assert not killing_env.tokens_left(), f"iteration {iteration}: not every armed kill happened"
        learner.backend.nodes()  # the restarted actors answer again
        rows.append(learner.step())
        after = set(actor_pids(learner.backend))
        theta = parameters_to_vector(learner.policy)
        assert learner.backend.actors == actors  # the same actors, restarted by Ray: none dropped
    assert [row["episodes"] for row in rows] == [12] * 7
    assert rows[1]["workers"] == 2 and rows[3]["workers"] < 3, [row["workers"] for row in rows]
    assert rows[-1]["workers"] == 3
    assert len(after) == 3 and len(before - after) >= 2, (before, after)  # new processes for the killed
    assert_theta_of_local_backend(theta, config.replace(env="envs.line:LineWalk"), iterations=7)


def test_a_chunk_that_kills_every_worker_ends_the_run_with_its_name(ray_instance, armed_envs):
    config = Config(env="tests.killing_env:KillingLineWalk", episodes=4, chunk_episodes=2, envs_per_chunk=2,
                    workers=2, seed=4)
    with Learner(config) as learner:
        learner.step()
        open(killing_env.ALWAYS, "w").close()
        with pytest.raises(WorkerError, match=r"chunk \d \(episodes \d-\d\) of iteration 2 ended the process of "
                           r"every worker that ran it \(3 times\)"):
            learner.step()


def test_actors_whose_restarts_are_used_up_are_dropped(ray_instance, armed_envs, monkeypatch):
    """With no restarts left a dead actor is gone; with no worker left the run stops, naming the chunk."""
    monkeypatch.setattr(ray_backend, "ACTOR_RESTARTS", 0)
    config = Config(env="tests.killing_env:KillingLineWalk", episodes=4, chunk_episodes=2, envs_per_chunk=2,
                    workers=2, seed=4)
    with Learner(config) as learner:
        learner.step()
        learner.backend.nodes()
        killing_env.arm(1)
        assert learner.step()["workers"] == 1
        assert len(learner.backend.actors) == 1
        killing_env.arm(1)
        with pytest.raises(WorkerError, match=r"no rollout worker is left to run chunk \d .* of iteration 3"):
            learner.step()


def test_a_run_waits_for_a_restarting_actor_only_so_long(ray_instance, armed_envs, monkeypatch):
    """No worker up and none back within START_TIMEOUT (here shorter than any restart): a clear error."""
    config = Config(env="tests.killing_env:KillingLineWalk", episodes=2, chunk_episodes=2, envs_per_chunk=2,
                    workers=1, seed=4)
    with Learner(config) as learner:
        learner.step()
        monkeypatch.setattr(ray_backend, "START_TIMEOUT", 0.1)
        killing_env.arm(1)
        with pytest.raises(WorkerError, match=r"no rollout worker came up within 0.1 s to run chunk 0 "
                           r"\(episodes 0-1\) of iteration 2: 1 actor\(s\) are waiting"):
            learner.step()


def test_a_hung_chunk_runs_again_on_another_actor(ray_instance, armed_envs):
    """An env stuck in step: after chunk_timeout its actor is killed (and restarted by Ray) and the
    chunk runs once more elsewhere; the run goes on to the undisturbed theta."""
    config = Config(env="tests.hanging_env:HangingLineWalk", episodes=12, chunk_episodes=2, envs_per_chunk=2,
                    workers=3, lr=0.05, seed=6, chunk_timeout=2.0)
    with Learner(config) as learner:
        learner.step()
        learner.backend.nodes()
        hanging_env.arm()
        with pytest.warns(UserWarning, match=r"chunk \d .* of iteration 2 ran for more than 2 s \(chunk_timeout\)"):
            rows = [learner.step() for _ in range(2)]
        assert not os.path.exists(hanging_env.ARMED), "no worker hung"
        theta = parameters_to_vector(learner.policy)
    assert [row["episodes"] for row in rows] == [12, 12]
    assert_theta_of_local_backend(theta, config.replace(env="envs.line:LineWalk"), iterations=3)


def test_a_chunk_that_hangs_every_worker_ends_the_run_with_its_name(ray_instance, armed_envs):
    config = Config(env="tests.hanging_env:HangingLineWalk", episodes=4, chunk_episodes=2, envs_per_chunk=2,
                    workers=2, seed=6, chunk_timeout=1.5)
    with Learner(config) as learner:
        learner.step()
        open(hanging_env.ALWAYS, "w").close()
        with pytest.warns(UserWarning), pytest.raises(
            WorkerError, match=r"chunk \d \(episodes \d-\d\) of iteration 2 hung on 2 workers: each ran it for "
            r"more than 1.5 s \(chunk_timeout\)"
        ):
            learner.step()


def test_a_chunk_that_hung_on_an_actor_never_runs_in_the_learners_process():
    """On its own instance the learner runs chunks too, but it cannot time itself out: the chunk
    that hung on an actor runs again on an actor, and the run gives the local backend's theta."""
    script = textwrap.dedent(
        """
        import os, re, warnings
        import ray, torch
        from pgdist import Config, Learner
        from pgdist.theta import parameters_to_vector, state_to_vector
        from tests import hanging_env
        config = Config(env="tests.hanging_env:HangingLineWalk", episodes=12, chunk_episodes=2, envs_per_chunk=2,
                        lr=0.05, workers=3, seed=6, chunk_timeout=2.0)
        hanging_env.disarm()
        with warnings.catch_warnings(record=True) as caught, Learner(config) as learner:
            warnings.simplefilter("always")
            assert learner.backend.local_worker is not None and len(learner.backend.actors) == 2
            learner.step()
            learner.backend.nodes()  # both actors are up
            [pid] = ray.get([learner.backend.actors[0].__ray_call__.remote(lambda worker: os.getpid())])
            ran_here = []
            local_run = learner.backend.local_worker.run
            learner.backend.local_worker.run = lambda *args: ran_here.append((args[2].draw, args[2].index)) or local_run(*args)
            hanging_env.arm(pid)
            learner.step()
            assert not os.path.exists(hanging_env.ARMED), "the actor did not hang"
            learner.step()
            theta = parameters_to_vector(learner.policy)
        [hung] = [int(m) for w in caught for m in re.findall(r"chunk (\\d+) .* of iteration 2 ran for more", str(w.message))]
        assert (1, hung) not in ran_here and ran_here, ran_here  # (sampling call, chunk) of those run here
        with Learner(config.replace(env="envs.line:LineWalk", backend="local")) as reference:
            for _ in range(3):
                reference.step()
        torch.testing.assert_close(theta, parameters_to_vector(reference.policy), rtol=1e-5, atol=1e-7)
        print("ok", hung, ran_here)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ok")


def test_by_default_no_more_workers_than_chunks_and_the_cpus_left_idle_are_told(ray_instance, caplog):
    """A worker without a chunk would only start and idle: the default is the CPUs, at most the chunks."""
    cpus = int(ray_instance.cluster_resources()["CPU"])
    if cpus < 2:
        pytest.skip(f"the test instance has {cpus} CPU")
    config = Config(env="CartPole-v1", episodes=1000, chunk_episodes=1000)  # one chunk, N / CPUs >= MIN_CHUNK
    with caplog.at_level("WARNING", logger="pgdist"), Learner(config) as learner:
        assert learner.backend.workers == 1 and len(learner.backend.actors) == 1
    [told] = [record.getMessage() for record in caplog.records if "busy" in record.getMessage()]
    assert told.startswith(f"pgdist: N=1000 makes 1 chunk(s) of 1000 episodes, which keep 1 of {cpus} workers busy")
    with Learner(config.replace(workers=2)) as learner:  # asked for: started, though one idles
        assert learner.backend.workers == 2 and len(learner.backend.actors) == 2
    with Learner(config.replace(chunk_episodes=500)) as learner:
        assert learner.backend.workers == min(2, cpus)

"""What only the Ray backend does: loopback, stopping what it started, losing a worker."""

import ipaddress
import os
import subprocess
import sys
import textwrap

import psutil
import pytest
import torch

from pgdist import Config, Learner
from pgdist.policy import parameters_to_vector
from tests.dying_env import ARMED


def is_loopback(address):
    ip = ipaddress.ip_address(address)
    return ip.is_loopback or (ip.version == 6 and ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback)


def listening_addresses(process):
    addresses = set()
    for child in [process, *process.children(recursive=True)]:
        try:
            for connection in child.net_connections(kind="inet"):
                if connection.status == psutil.CONN_LISTEN:
                    addresses.add(connection.laddr.ip)
        except psutil.NoSuchProcess:
            pass
    return addresses


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
        from pgdist.policy import parameters_to_vector
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
        learner.step()
        survivors = len(learner.backend.actors)
        theta = parameters_to_vector(learner.policy)
    assert not os.path.exists(ARMED), "no worker reached a reset"
    assert survivors == 2
    with Learner(config.replace(env="envs.line:LineWalk", backend="local")) as reference:
        for _ in range(3):
            reference.step()
    torch.testing.assert_close(theta, parameters_to_vector(reference.policy), rtol=1e-5, atol=1e-7)

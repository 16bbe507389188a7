"""Shared fixtures: one local Ray instance for the whole session, and the backend parameter.

Learners built while this instance is up join it instead of starting their own, and
leave it running when they close (they stop only what they started). The tests that take the
``backend`` parameter borrow their Ray actors from one ``RayWorkers`` for the session.
"""

import os
import sys
import warnings

import pytest

BACKENDS = ["local", "ray"]
TEST_PROCESSES = 2  # each starts a Ray instance of its own; the suite keeps 2 CPUs busy with 2
# The files that take longest, run first: a test process still in one of them at the end would
# leave the other CPU idle (pytest-xdist hands out whole files, in collection order).
LONGEST_FIRST = ("test_readme.py", "test_cluster.py", "test_faults.py", "test_cli.py", "test_ray_backend.py",
                 "test_ray_startup.py", "test_noise_scale.py", "test_examples.py", "test_backends.py",
                 "test_env_steps.py", "test_disk_full.py")


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: as many test processes as CPUs, up to TEST_PROCESSES."""
    return max(1, min(TEST_PROCESSES, len(os.sched_getaffinity(0))))


def pytest_collection_modifyitems(items):
    """The LONGEST_FIRST files first, in that order; the others after them, as collected."""
    def rank(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each file's tests keep their order


@pytest.fixture(scope="session")
def ray_instance():
    from pgdist.ray import start_ray
    import ray

    started = start_ray(None)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="session")
def ray_workers(ray_instance):
    """Actors that the ``backend`` tests' Learners borrow in turn: each starts once a session.

    They reserve no CPU (``num_cpus=0``): idle between tests, they would otherwise hold the
    instance's CPUs from the actors that other tests start of their own.
    """
    from pgdist.ray import RayWorkers

    workers = RayWorkers(8, num_cpus=0)
    yield workers
    workers.close()


@pytest.fixture
def borrowed_actors(ray_workers, monkeypatch):
    """The test's Learners with ``backend: ray`` borrow the session's ``ray_workers``."""
    from pgdist.ray import RayWorkers

    monkeypatch.setattr(RayWorkers, "default", ray_workers)


@pytest.fixture
def pgdist_here(request, capsys, monkeypatch):
    """``pgdist ARGS`` as main() runs it, in this process, from the repository: (exit code, stdout, stderr).
    The command line's own process (the `pgdist` script, its exit) is tested by the subprocess tests."""
    from pgdist.cli import main

    monkeypatch.chdir(request.config.rootpath)
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # main() sets its own
    monkeypatch.setattr(sys, "path", list(sys.path))  # and puts the working directory first

    def run(*args):
        code = main([str(arg) for arg in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Run a test against both backends: the local one and Ray actors (borrowed, ``ray_workers``)."""
    if request.param == "ray":
        request.getfixturevalue("borrowed_actors")
    return request.param

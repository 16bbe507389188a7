"""Shared fixtures: one local Ray instance for the whole session, and the backend parameter.

Learners built while this instance is up join it instead of starting their own, and
leave it running when they close (they stop only what they started).
"""

import os

import pytest

BACKENDS = ["local", "ray"]
TEST_PROCESSES = 4  # each starts a Ray instance of its own


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: two test processes per CPU, up to TEST_PROCESSES.

    A test spends much of its time waiting for processes it started (a Ray instance, actors,
    a ``pgdist`` command) to import torch and come up: with one test process per CPU the
    suite kept the CPUs only about half busy.
    """
    return max(1, min(TEST_PROCESSES, 2 * len(os.sched_getaffinity(0))))


@pytest.fixture(scope="session")
def ray_instance():
    from pgdist.ray_startup import start_ray
    import ray

    started = start_ray(None)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Run a test against both backends: the local one and Ray actors."""
    if request.param == "ray":
        request.getfixturevalue("ray_instance")
    return request.param

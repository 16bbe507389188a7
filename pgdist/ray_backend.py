"""Deprecated: ``pgdist.ray_backend`` is now ``pgdist.ray`` (``from pgdist.ray import RayWorkers``)."""

import warnings

from pgdist.ray.backend import ACTOR_RESTARTS, IN_FLIGHT, START_TIMEOUT, RayBackend, RayWorkers  # noqa: F401

warnings.warn("pgdist.ray_backend is deprecated and will be removed in pgdist 0.3: import from pgdist.ray "
              "(from pgdist.ray import RayBackend, RayWorkers)", DeprecationWarning, stacklevel=2)

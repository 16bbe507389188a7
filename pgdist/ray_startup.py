"""Deprecated: ``pgdist.ray_startup`` is now ``pgdist.ray`` (``from pgdist.ray import start_ray``)."""

import warnings

from pgdist.ray.startup import cluster_nodes, start_ray  # noqa: F401

warnings.warn("pgdist.ray_startup is deprecated and will be removed in pgdist 0.3: import from pgdist.ray "
              "(from pgdist.ray import start_ray, cluster_nodes)", DeprecationWarning, stacklevel=2)

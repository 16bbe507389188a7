"""pgdist on Ray: the one package of pgdist that imports ray.

- ``startup``: join a cluster, or start a local instance on loopback only, for a run;
- ``private``: the shortcuts of that local start through Ray's private API, guarded by version;
- ``actors``: the rollout actor (the plain ``RolloutWorker`` made remote) and which actors are up;
- ``backend``: ``RayBackend`` hands a sampling call's chunks to the actors, ``RayWorkers`` lends
  actors to one Learner after another.
"""

from pgdist.ray.backend import IN_FLIGHT, RayBackend, RayWorkers
from pgdist.ray.startup import cluster_nodes, start_ray

__all__ = ["IN_FLIGHT", "RayBackend", "RayWorkers", "cluster_nodes", "start_ray"]

"""What one further round of V's fit (``value_epochs``) costs: its time in one process and on Ray.

    .venv/bin/python benchmarks/value_rounds.py                       # Hopper-v5 and HalfCheetah-v5
    .venv/bin/python benchmarks/value_rounds.py --tasks hopper --iterations 20

Each task's recipe trains ``--iterations`` iterations, samples once more, then times ``--rounds``
calls of the backend's ``value_round`` on that batch at V's parameters: on ``--backend local`` (the
chunks one after the other in this process) and on Ray (pgdist's own local instance, the learner's
process and one actor). A round is V's gradient over the batch's steps, plus the calls to the workers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from harness import ROOT, number, print_machine, table  # beside this script

TASKS = {"hopper": "configs/hopper.yaml", "halfcheetah": "configs/halfcheetah.yaml"}


def round_seconds(config, iterations: int, rounds: int) -> tuple[float, int, int]:
    """The median time of a round over a batch after ``iterations`` steps; the batch's steps and chunks."""
    from pgdist import Learner
    from pgdist.theta import parameters_to_vector

    with Learner(config) as learner:
        for _ in range(iterations):
            learner.step()
        batch = learner.sample()
        value_theta = parameters_to_vector(learner.value).numpy()
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            list(learner.backend.value_round(batch.theta, batch.sums.version, value_theta, batch.chunks))
            times.append(time.perf_counter() - start)
    return statistics.median(times), batch.sums.steps, len(batch.chunks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--iterations", type=int, default=3, help="iterations before the timed batch")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    from pgdist.config import Config

    print_machine()
    rows = []
    for task in args.tasks:
        times = {}
        for backend in ("local", "ray"):
            config = Config.from_yaml(ROOT / TASKS[task], backend=backend, value_epochs=2)
            times[backend], steps, chunks = round_seconds(config, args.iterations, args.rounds)
        rows.append([task, number(steps), str(chunks), number(1e3 * times["local"], 1), number(1e3 * times["ray"], 1)])
    print(f"\nA round of V's fit, median of {args.rounds}, after {args.iterations} iterations\n")
    table(["recipe", "batch steps", "chunks", "ms, one process", "ms, Ray (2 workers)"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Train on an environment of your own, written in the tutorial's protocol.

    python examples/custom_env.py                  # Ray workers, one per CPU
    python examples/custom_env.py --backend local  # one process, no Ray

The class below is all pgdist needs: ``reset() -> state``, ``step(action) -> (state, reward,
done)`` and the number of actions. pgdist builds it inside each worker from its name,
``custom_env:Corridor`` (this file, imported as a module), and ships this file to the Ray
workers, so nothing needs installing.
"""

import argparse

import numpy as np

from pgdist import Config, Learner


class Corridor:
    """Walk a corridor of 6 cells from the left end to the right one; each step costs 0.02.

    The state is the position in [0, 1], one number. Action 1 moves right, action 0 left
    (the left wall stops the walker). Reaching the right end earns 1 and ends the episode;
    so does running out of 50 steps. A random walk takes about 25 steps to get there.
    """

    n_actions = 2
    length = 6
    limit = 50

    def __init__(self):
        self.rng = np.random.default_rng()
        self.cell = 0
        self.steps = 0

    def reset(self, seed=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.cell, self.steps = 0, 0
        return np.array([0.0])

    def step(self, action):
        self.cell = max(0, self.cell + (1 if action == 1 else -1))
        self.steps += 1
        arrived = self.cell == self.length - 1
        reward = (1.0 if arrived else 0.0) - 0.02
        return np.array([self.cell / (self.length - 1)]), reward, arrived or self.steps >= self.limit


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--backend", default="ray", choices=["ray", "local"])
    args = parser.parse_args(argv)
    config = Config(env="custom_env:Corridor", episodes=64, lr=0.02, gamma=0.99, hidden=(16,),
                    returns="reward_to_go", standardize=True, chunk_episodes=32, envs_per_chunk=32,
                    backend=args.backend, iterations=args.iterations)
    with Learner(config) as learner:
        for _ in range(config.iterations):
            metrics = learner.step()
            print(f"iteration {metrics['iteration']:3d}  return {metrics['return_mean']:6.2f}  "
                  f"episode length {metrics['length_mean']:5.1f}")
    # the shortest walk takes 5 steps: return 1 - 5 * 0.02 = 0.90
    print(f"final return {metrics['return_mean']:.2f} (best possible 0.90)")


if __name__ == "__main__":
    main()

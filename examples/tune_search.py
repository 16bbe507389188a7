"""Ray Tune searching the learning rate and N, each trial a pgdist Learner.

    python examples/tune_search.py [--iterations 15] [--lr 0.003 0.01 0.03] [--episodes 32 64] [--storage DIR]

Each trial trains CartPole-v1 in its own Ray worker process with the local backend
(Tune already spreads the trials over the CPUs) and reports its mean return every
iteration; Tune keeps the best configuration. Needs ``pip install "ray[tune]"``.
"""

import argparse
import tempfile

from ray import tune

from pgdist import Config, Learner
from pgdist.ray import start_ray


def trial(params):
    config = Config(env="CartPole-v1", episodes=params["episodes"], lr=params["lr"], gamma=0.99,
                    hidden=(32, 32), returns="reward_to_go", standardize=True, backend="local",
                    seed=params["seed"])
    with Learner(config) as learner:
        for _ in range(params["iterations"]):
            metrics = learner.step()
            tune.report({"return_mean": metrics["return_mean"], "iteration": metrics["iteration"]})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--lr", type=float, nargs="+", default=[0.003, 0.01, 0.03], help="learning rates to try")
    parser.add_argument("--episodes", type=int, nargs="+", default=[32, 64], help="values of N to try")
    parser.add_argument("--storage", default=None, help="where Tune keeps its results (default: a temp dir)")
    args = parser.parse_args(argv)
    start_ray(None)  # a local Ray instance on loopback only; Tune joins it
    space = {
        "lr": tune.grid_search(args.lr),
        "episodes": tune.grid_search(args.episodes),
        "iterations": args.iterations,
        "seed": 0,
    }
    storage = args.storage or tempfile.mkdtemp(prefix="pgdist-tune-")
    tuner = tune.Tuner(
        tune.with_resources(trial, {"cpu": 1}),
        param_space=space,
        tune_config=tune.TuneConfig(metric="return_mean", mode="max"),
        run_config=tune.RunConfig(storage_path=storage, name="pgdist", verbose=0),
    )
    results = tuner.fit()
    for result in sorted(results, key=lambda r: -r.metrics["return_mean"]):
        print(f"lr {result.config['lr']:<6} N {result.config['episodes']:<4} final return {result.metrics['return_mean']:7.2f}")
    best = results.get_best_result(scope="last")
    print(f"best: lr={best.config['lr']} N={best.config['episodes']} return {best.metrics['return_mean']:.2f}")


if __name__ == "__main__":
    main()

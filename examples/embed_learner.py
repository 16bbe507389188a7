"""The Learner in your own pipeline: your policy, your optimizer, a schedule, clipping and a hook.

    python examples/embed_learner.py [--iterations 30] [--backend local] [--save best.pt]

pgdist takes any torch module whose forward returns a torch.distributions object (here
a Categorical); it ships a copy to every worker and broadcasts its weights every step.
The optimizer is any torch.optim one; ``train`` runs the iterations and calls your
callbacks after each (return False to stop); ``SaveBest`` keeps the best policy.
"""

import argparse

import torch
from torch import nn
from torch.distributions import Categorical

from pgdist import Callback, Config, Learner, train
from pgdist.training import SaveBest


class LayerNormPolicy(nn.Module):
    """A policy of the user's own: a wider net with layer norm, logits for CartPole's 2 actions."""

    def __init__(self, observation_size=4, n_actions=2, width=64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(observation_size, width), nn.LayerNorm(width), nn.Tanh(), nn.Linear(width, n_actions)
        )

    def forward(self, state):
        return Categorical(logits=self.net(state))


class PrintAndStop(Callback):
    """A hook after every iteration: print it, stop once the return is high enough."""

    def on_iteration(self, learner, metrics):
        print(f"iteration {metrics['iteration']:3d}  return {metrics['return_mean']:7.2f}  "
              f"|grad| {metrics['gradient_norm']:.3f}  lr {metrics['lr']:.4f}")
        return metrics["return_mean"] < 475  # False stops training


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--backend", default="ray", choices=["ray", "local"])
    parser.add_argument("--save", default=None, help="where to save the best policy's state dict")
    args = parser.parse_args(argv)
    config = Config(env="CartPole-v1", episodes=64, gamma=0.99, returns="reward_to_go", standardize=True,
                    chunk_episodes=32, envs_per_chunk=32, backend=args.backend, iterations=args.iterations,
                    lr_schedule="linear", max_grad_norm=1.0)  # lr decays to 0; |g-hat| clipped at 1
    torch.manual_seed(0)
    adamw = lambda groups: torch.optim.AdamW(groups, lr=0.01, weight_decay=1e-4)  # any torch.optim optimizer
    callbacks = [PrintAndStop()] + ([SaveBest(args.save)] if args.save else [])
    with Learner(config, policy=LayerNormPolicy(), optimizer=adamw) as learner:
        history = train(learner, callbacks)  # broadcast theta, gather N episodes, one step; until a stop
        gradient = learner.estimate_gradient()  # Eq. 19 at the final theta, from N fresh episodes
        print(f"estimated |grad J| at the end: {gradient.norm():.4f} over {gradient.numel()} parameters")
    print(f"best iteration return {max(m['return_mean'] for m in history):.2f}, first {history[0]['return_mean']:.2f}")


if __name__ == "__main__":
    main()

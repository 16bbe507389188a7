"""The Learner inside your own training loop, with your own policy module.

    python examples/embed_learner.py [--iterations 30] [--backend local]

pgdist takes any torch module whose forward returns a torch.distributions object (here
a Categorical); it ships a copy to every worker and broadcasts its weights every step.
Your loop decides when to stop, what to log and what to save.
"""

import argparse

import torch
from torch import nn
from torch.distributions import Categorical

from pgdist import Config, Learner


class LayerNormPolicy(nn.Module):
    """A policy of the user's own: a wider net with layer norm, logits for CartPole's 2 actions."""

    def __init__(self, observation_size=4, n_actions=2, width=64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(observation_size, width), nn.LayerNorm(width), nn.Tanh(), nn.Linear(width, n_actions)
        )

    def forward(self, state):
        return Categorical(logits=self.net(state))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--backend", default="ray", choices=["ray", "local"])
    parser.add_argument("--save", default=None, help="where to save the trained policy's state dict")
    args = parser.parse_args(argv)
    config = Config(env="CartPole-v1", episodes=64, lr=0.01, gamma=0.99, returns="reward_to_go",
                    standardize=True, chunk_episodes=32, envs_per_chunk=32, backend=args.backend)
    torch.manual_seed(0)
    history = []
    with Learner(config, policy=LayerNormPolicy()) as learner:
        for _ in range(args.iterations):
            metrics = learner.step()  # broadcast theta, gather N episodes, one Adam step
            history.append(metrics["return_mean"])
            print(f"iteration {metrics['iteration']:3d}  return {metrics['return_mean']:7.2f}  "
                  f"|grad| {metrics['gradient_norm']:.3f}")
            if metrics["return_mean"] >= 475:  # your own stopping rule
                break
        gradient = learner.estimate_gradient()  # Eq. 19 at the final theta, from N fresh episodes
        print(f"estimated |grad J| at the end: {gradient.norm():.4f} over {gradient.numel()} parameters")
        if args.save:
            torch.save(learner.policy.state_dict(), args.save)
    print(f"best iteration return {max(history):.2f}, first {history[0]:.2f}")


if __name__ == "__main__":
    main()

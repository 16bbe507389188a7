"""Adaptive N by goodput: each iteration's N maximises the progress the next iterations make per unit of work.

Pollux (Qiao et al., OSDI 2021; petuum/adaptdl's goodput.py) with the gradient noise scale B
that pgdist measures (noise.py):

    goodput(N)    = throughput(N) * efficiency(N)
    efficiency(N) = (B + N0) / (B + N)

efficiency is the progress an episode makes in a step on N episodes, against one in a step on
N0 = ``episodes`` (McCandlish et al. 2018, Eq. 2.7: a step on N makes 1 / (1 + B/N) of a
noiseless step's progress). throughput(N) = N / cost(N), with an iteration's cost on the
planned workers W in env steps, from the chunk sums and the configuration alone:

    cost(N) = F + waves(N) * c * L,    waves(N) = ceil(ceil(N / c) / W)

c = chunk_episodes, L the env steps per kept episode (every step the workers take, dropped
episodes' too; an average over the iterations so far, with the noise scale's decay), and F =
``iteration_cost``, the fixed cost of an iteration (the learner's step, the broadcast and the
gather) in env steps of one worker. Where N leaves workers idle, a larger N costs nothing more
and is taken; past that, F/(c L) decides: with F = 0 every wave costs the same per episode and
the least N that fills the workers wins; with F > 0 the best N grows as sqrt(F W B / L)
(McCandlish et al. App. D's sqrt(B) for steps and samples together).

No seconds enter: N is a function of the configuration and the chunk sums, so one seed gives
one theta for any number of workers where ``workers`` is set (with ``workers`` unset, W is the
CPUs Ray sees, and N's schedule is the machine's), and a resumed run the same N.

The rules around the optimum: N holds while the averaged |G|^2 is unresolved (the measured B
reads about N whatever it is, which fed back into N when N doubled on it); N moves by at most
2x per iteration, in whole chunks within [episodes, episodes_max]; and only for a predicted
gain of ``MIN_GAIN`` or more.

The learning rate follows N (``lr_scaling``): 'adascale' multiplies the policy's lr by
AdaScale's gain r = (sigma^2 + |G|^2) / (sigma^2 / S + |G|^2) with S = N / N0 and sigma^2 the
variance of an N0-episode gradient, which is r = S * efficiency(N) (Johnson et al. 2020);
'sqrt' by sqrt(S); 'none' leaves it.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from pgdist.noise import DECAY, NoiseScale

MIN_GAIN = 0.05  # a move needs goodput 5% above the current N's
MAX_FACTOR = 2  # N moves by at most this factor per iteration


def efficiency(episodes: float, noise_scale: float, least: int) -> float:
    """(B + N0) / (B + N): an episode's progress in a step on N, against one on N0."""
    return (noise_scale + least) / (noise_scale + episodes)


def learning_rate_gain(scaling: str, episodes: int, least: int, noise_scale: float | None) -> float:
    """The factor on the policy's lr for a step on ``episodes`` (N) where the least N is ``least`` (N0).

    'adascale': r = S (B + N0) / (B + N), S = N / N0, which runs from 1 (B = 0: a larger batch is
    no better) to S (B >> N: a larger batch is as good as S steps); with B unmeasured, S.
    'sqrt': sqrt(S). 'none': 1.
    """
    scale = episodes / least
    if scaling == "sqrt":
        return math.sqrt(scale)
    if scaling == "adascale":
        return scale if noise_scale is None else scale * efficiency(episodes, noise_scale, least)
    return 1.0


@dataclass(frozen=True)
class Move:
    """What the controller chose for the next iteration, and why."""

    episodes: int
    reason: str  # 'grew', 'shrank', 'held: |G|^2 unresolved', 'held: gain under 5%', 'held: at the best N'


class Goodput:
    """The adaptive-N controller: the cost model's state (L) and the choice of each iteration's N."""

    def __init__(self, least: int, most: int, chunk_episodes: int, workers: int, iteration_cost: float,
                 decay: float = DECAY):
        self.least, self.most, self.chunk_episodes = least, most, chunk_episodes
        self.workers, self.iteration_cost, self.decay = workers, iteration_cost, decay
        self.env_steps = 0.0  # sum_t decay^(T-t) env steps_t
        self.episodes = 0.0  # sum_t decay^(T-t) N_t, which divides them
        self.reasons: Counter[str] = Counter()  # the moves so far, by reason
        self.range = (least, least)  # the least and the most N so far

    def add(self, env_steps: int, episodes: int) -> None:
        """An iteration's env steps (kept or not) and episodes, from its chunk sums."""
        self.env_steps = self.decay * self.env_steps + env_steps
        self.episodes = self.decay * self.episodes + episodes

    @property
    def episode_steps(self) -> float:
        """L: env steps per kept episode, averaged over the iterations so far."""
        return self.env_steps / self.episodes

    def cost(self, episodes: int) -> float:
        """An iteration's cost in env steps of one worker: F + waves(N) c L."""
        chunks = -(-episodes // self.chunk_episodes)
        waves = -(-chunks // self.workers)
        return self.iteration_cost + waves * self.chunk_episodes * self.episode_steps

    def goodput(self, episodes: int, noise_scale: float) -> float:
        return episodes / self.cost(episodes) * efficiency(episodes, noise_scale, self.least)

    def candidates(self, episodes: int) -> list[int]:
        """Whole chunks within a factor of 2 of N and within [least, most]; N itself and, within reach, the least N."""
        c = self.chunk_episodes
        low = max(self.least, -(-episodes // MAX_FACTOR))
        high = min(self.most, MAX_FACTOR * episodes)
        sizes = set(range(-(-low // c) * c, high + 1, c)) | {episodes}
        return sorted(sizes | ({self.least} if low == self.least else set()))

    def next_episodes(self, noise_scale: NoiseScale, episodes: int) -> Move:
        """The next iteration's N from the current one and the averaged noise scale."""
        if self.episodes == 0.0 or not noise_scale.resolved():
            move = Move(episodes, "held: |G|^2 unresolved")
        else:
            b = max(noise_scale.value, 0.0)  # the averaged tr(Sigma) may read below 0 where it is small
            best = max(self.candidates(episodes), key=lambda n: (self.goodput(n, b), -n))
            gain = self.goodput(best, b) / self.goodput(episodes, b) - 1.0
            if best == episodes:
                move = Move(episodes, "held: at the best N")
            elif gain < MIN_GAIN:
                move = Move(episodes, f"held: gain under {MIN_GAIN:.0%}")
            else:
                move = Move(best, "grew" if best > episodes else "shrank")
        self.reasons[move.reason] += 1
        self.range = (min(self.range[0], move.episodes), max(self.range[1], move.episodes))
        return move

    def summary(self) -> str:
        """N's range and why it moved, for the end of training."""
        low, high = self.range
        why = ", ".join(f"{reason} {count}×" for reason, count in sorted(self.reasons.items()))
        return f"adaptive N ranged {low:,}-{high:,} (W = {self.workers} planned workers; iterations: {why or 'none yet'})"

    def state_dict(self) -> dict:
        return {"env_steps": self.env_steps, "episodes": self.episodes, "reasons": dict(self.reasons),
                "range": list(self.range)}

    def load_state_dict(self, state: dict) -> None:
        self.env_steps, self.episodes = state["env_steps"], state["episodes"]
        self.reasons, self.range = Counter(state["reasons"]), tuple(state["range"])

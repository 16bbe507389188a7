"""The rollout worker: run one chunk of episodes with theta and return sums.

A plain class. The local backend calls it in the driver's process; the Ray backend
makes it an actor. Everything random in a chunk comes from (seed, batch, chunk index)
alone, so a chunk gives the same episodes on whichever worker runs it.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from pgdist.envs import EnvError
from pgdist.vector_envs import make_vector_env, where_in_episode
from pgdist.estimators import Estimator, discounted_returns, generalized_advantages, policy_gradient_sum, value_sums
from pgdist.normalization import normalizers, observation_sums
from pgdist.policy import actor, env_action_map
from pgdist.sampling import policy_input
from pgdist.theta import vector_to_state


@dataclass(frozen=True)
class Chunk:
    """Episodes ``[start, start + episodes)`` of draw ``draw`` (the run's sampling call of that number)."""

    index: int
    start: int
    episodes: int
    seed: int
    draw: int

    def randomness(self) -> tuple[int, torch.Generator]:
        """The chunk's own streams: a reset seed for its environments and a generator for its actions."""
        env_seed, action_seed = np.random.SeedSequence([self.seed, self.draw, self.index]).generate_state(2)
        return int(env_seed), torch.Generator().manual_seed(int(action_seed))


def make_chunks(episodes: int, chunk_episodes: int, seed: int, draw: int) -> list[Chunk]:
    """Cut N episodes into chunks of ``chunk_episodes`` (the last one smaller); never by worker count."""
    starts = range(0, episodes, chunk_episodes)
    return [
        Chunk(j, start, min(chunk_episodes, episodes - start), seed, draw) for j, start in enumerate(starts)
    ]


@dataclass
class Episodes:
    """A chunk's trajectories, flattened over steps (row t: a step of episode ``episode[t]``)."""

    states: torch.Tensor | None  # None where the worker keeps no states (an evaluation's)
    actions: torch.Tensor
    rewards: torch.Tensor
    timestep: torch.Tensor
    episode: torch.Tensor
    count: int
    truncated: int = 0  # of the count, the episodes that pgdist's max_episode_steps cut short
    env_steps: int = 0  # every copy-step the env took for them, kept or not (autoresets included)
    final_states: torch.Tensor | None = None  # with GAE: the final state of each episode a time limit cut,
    final_episode: torch.Tensor | None = None  # and which episode's it is (V(s_T) is bootstrapped there)

    def undiscounted_returns(self) -> torch.Tensor:
        """Each episode's undiscounted return, the score users read."""
        return torch.zeros(self.count, dtype=torch.float64).index_add_(0, self.episode, self.rewards)


@dataclass
class ChunkResult:
    """What a worker sends back: sums over its episodes, never means, and the theta version used.

    With A_t the estimator's weight of step t (``estimators.Estimator``), the gradients are flat:
    ``gradient_sum`` = grad sum_t A_t ln pi(a_t|s_t)  (for Eq. 23, grad sum_i R(tau_i) sum_t ln pi),
    ``log_prob_gradient_sum`` = grad sum_t ln pi(a_t|s_t), ``entropy_gradient_sum`` = grad sum_t H(pi(.|s_t)),
    ``value_gradient_sum`` = grad sum_t (V(s_t) - return_t)^2; each only where the estimator needs it.
    With a value function, the sums of its targets y_t and residuals y_t - V(s_t) (and their squares)
    give its explained variance over the batch; with an observation normaliser, the sums of the
    steps' observations and their squares (``pgdist.normalization``) update it.
    """

    version: int
    episodes: int
    steps: int
    gradient_sum: np.ndarray
    weight_sum: float  # sum_t A_t
    weight_square_sum: float  # sum_t A_t^2
    return_sum: float  # undiscounted sum of rewards, the score users read
    return_min: float
    return_max: float
    discounted_return_sum: float  # R(tau) of Eq. 6
    truncated: int = 0  # episodes that pgdist's max_episode_steps cut short
    env_steps: int = 0  # every env step taken for them, kept or not (autoresets, dropped episodes)
    value_target_sum: float = 0.0
    value_target_square_sum: float = 0.0
    value_residual_sum: float = 0.0
    value_residual_square_sum: float = 0.0
    log_prob_gradient_sum: np.ndarray | None = None
    entropy_gradient_sum: np.ndarray | None = None
    value_gradient_sum: np.ndarray | None = None
    observation_sum: np.ndarray | None = None
    observation_square_sum: np.ndarray | None = None

    def add(self, other: ChunkResult) -> None:
        """Add another chunk's sums into these, in place: the learner's only work per chunk."""
        if other.version != self.version:
            raise ValueError(f"cannot add results of theta versions {self.version} and {other.version}")
        for name in SUMMED:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in SUMMED_VECTORS:
            mine = getattr(self, name)
            if mine is not None:
                np.add(mine, getattr(other, name), out=mine)
        self.return_min = min(self.return_min, other.return_min)
        self.return_max = max(self.return_max, other.return_max)

    def writable(self) -> ChunkResult:
        """A copy whose vectors are float64 and writable (Ray hands out read-only arrays), to add into."""
        vectors = {name: getattr(self, name) for name in SUMMED_VECTORS}
        return dataclasses.replace(
            self, **{name: None if v is None else v.astype(np.float64) for name, v in vectors.items()}
        )


SUMMED = ("episodes", "steps", "weight_sum", "weight_square_sum", "return_sum", "discounted_return_sum", "truncated",
          "env_steps", "value_target_sum", "value_target_square_sum", "value_residual_sum", "value_residual_square_sum")
SUMMED_VECTORS = ("gradient_sum", "log_prob_gradient_sum", "entropy_gradient_sum", "value_gradient_sum",
                  "observation_sum", "observation_square_sum")


def _flat_gradient(output: torch.Tensor, parameters: list[torch.Tensor]) -> np.ndarray:
    gradients = torch.autograd.grad(output, parameters, retain_graph=True, allow_unused=True)
    return torch.cat(
        [(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(gradients, parameters)]
    ).numpy()


class RolloutWorker:
    def __init__(
        self,
        env: str,
        policy: torch.nn.Module,
        estimator: Estimator,
        envs_per_chunk: int,
        value: torch.nn.Module | None = None,
        greedy: bool = False,
        max_episode_steps: int | None = None,
        keep_states: bool = True,
        vector_env: str = "gymnasium",
    ):
        self.env = env
        self.max_episode_steps = max_episode_steps  # None: the env's own TimeLimit, else pgdist's default cap
        self.policy = copy.deepcopy(policy)
        self.value = copy.deepcopy(value)
        self.estimator = estimator
        self.envs_per_chunk = envs_per_chunk
        self.greedy = greedy  # act with pi's most probable action (for evaluation), not a sample
        self.keep_states = keep_states  # False: an evaluation's rollout, which needs only the rewards
        self.vector_env = vector_env  # what steps the copies (pgdist.vector_envs.make_vector_env)
        self.version = None
        self.dtype = next(self.policy.parameters()).dtype
        self._vector_envs = {}

    def run(self, theta: np.ndarray, version: int, chunk: Chunk) -> ChunkResult:
        """Load theta (if it is new), run the chunk's episodes, return their gradient sum."""
        self.load(theta, version)
        return self.gradient_sum(self.rollout(chunk))

    def load(self, theta: np.ndarray, version: int) -> None:
        if version != self.version:
            vector_to_state(torch.tensor(theta, dtype=self.dtype), self.policy, self.value)
            self.version = version

    def rollout(self, chunk: Chunk) -> Episodes:
        """Run the chunk's episodes on copies of the environment in lockstep.

        Copies that finish an episode start another; the chunk keeps the first
        ``chunk.episodes`` episodes *started* and waits until each has finished.
        Keeping the first to finish would favour short episodes and bias the gradient.
        Where the env can step its copies apart, a copy whose next episode the chunk drops is
        neither reset nor stepped again (``copies_to_step``): the kept episodes are the same.
        An env that raises or returns NaN, infinity or another shape stops the chunk with
        an EnvError naming the env, the chunk, the iteration and the step: no retry gives
        other episodes, since the chunk's episodes are the same wherever it runs.
        """
        try:
            return self._rollout(chunk)
        except EnvError as error:
            message = f"env {self.env}: {error.message} in chunk {chunk.index} of iteration {self.version + 1}"
            raise EnvError(message) from error.__cause__

    def _rollout(self, chunk: Chunk) -> Episodes:
        env_seed, generator = chunk.randomness()
        act = actor(self.policy, generator, self.greedy)
        to_env = env_action_map(self.policy)  # tanh-bounded actions: squashed on their way into the env
        width = min(self.envs_per_chunk, chunk.episodes)
        env = self._vector_env(width)
        episode = np.arange(width)  # which of the chunk's episodes each copy is running
        timestep = np.zeros(width, dtype=np.int64)
        resetting = np.ones(width, dtype=bool)  # the states are an episode's first (next-step autoreset)
        states = env.reset(seed=env_seed)
        check_finite(states, np.zeros(width), timestep, resetting)
        resetting[:] = False
        started, finished, truncated, env_steps = width, 0, 0, 0
        steps = []  # per lockstep: (states, actions, rewards, timestep, episode, kept), all copies
        finals = []  # with GAE: (episode, final state) of each kept episode a time limit cut
        bootstraps = self.estimator.returns == "gae" and self.keep_states
        actions = active = None
        with torch.inference_mode():
            while finished < chunk.episodes:
                kept = ~resetting
                if started > chunk.episodes:  # some copies run episodes the chunk drops: act for the others only
                    kept &= episode < chunk.episodes
                    actions = self._kept_actions(act, states, kept, actions)
                else:
                    actions = act(policy_input(states, self.dtype)).numpy()
                if env.steps_copies_apart:
                    active = copies_to_step(resetting, episode, started, chunk.episodes)
                env_steps += width if active is None else int(np.count_nonzero(active))
                next_states, rewards, terminated, time_limited = env.step(actions if to_env is None else to_env(actions), active)
                check_finite(next_states, rewards, timestep, resetting)
                steps.append((states if self.keep_states else None, actions, rewards, timestep.copy(), episode.copy(), kept))
                dones = terminated | time_limited
                ended = dones & kept
                finished += int(np.count_nonzero(ended))
                if env.capped:  # pgdist's cap cut them, not the env's own time limit
                    truncated += int(np.count_nonzero(time_limited & ended))
                if bootstraps:
                    finals += [(episode[copy], next_states[copy]) for copy in np.flatnonzero(time_limited & ended)]
                timestep += 1
                new = np.flatnonzero(resetting)  # these copies now stand at a new episode's first state
                if len(new):
                    episode[new] = np.arange(started, started + len(new))
                    timestep[new] = 0
                    started += len(new)
                resetting = dones
                states = next_states
        episodes = self._episodes(steps, chunk.episodes, truncated, env_steps)
        if finals:
            episodes.final_episode = torch.as_tensor(np.array([index for index, _ in finals]))
            episodes.final_states = policy_input(np.stack([state for _, state in finals]), self.dtype)
        return episodes

    def _kept_actions(self, act, states: np.ndarray, kept: np.ndarray, previous: np.ndarray) -> np.ndarray:
        """pi's actions for the copies whose step the chunk keeps; the others (an autoreset, an episode
        the chunk drops) repeat their previous action, a valid one that no kept step depends on.

        Near a chunk's end most copies run dropped episodes: their forward pass is skipped (their
        noise is still drawn, so the generator's stream is that of acting for every copy).
        """
        actions = previous.copy()
        rows = np.flatnonzero(kept)
        actions[rows] = act(policy_input(states, self.dtype), torch.from_numpy(rows)).numpy()
        return actions

    def _episodes(self, steps: list, count: int, truncated: int, env_steps: int) -> Episodes:
        """The kept rows of the chunk's locksteps, concatenated once per chunk."""
        *columns, kept = (None if column[0] is None else np.concatenate(column) for column in zip(*steps))
        rows = np.flatnonzero(kept)  # once: a boolean mask would find the rows again for each column
        states, actions, rewards, timestep, episode = (None if column is None else column.take(rows, axis=0) for column in columns)
        return Episodes(
            states=None if states is None else policy_input(states, self.dtype),
            actions=torch.as_tensor(actions),
            rewards=torch.as_tensor(rewards, dtype=torch.float64),
            timestep=torch.as_tensor(timestep),
            episode=torch.as_tensor(episode),
            count=count,
            truncated=truncated,
            env_steps=env_steps,
        )

    def gradient_sum(self, episodes: Episodes) -> ChunkResult:
        """Batched forward passes over the chunk's steps (one, but for long chunks of images), then the
        gradients of its sums: every sum is over steps, so the passes' gradients add up to the chunk's."""
        estimator = self.estimator
        passes = forward_passes(episodes.states)
        targets, advantages = self._targets(episodes, passes)
        result, weights, residuals = {}, [], []
        for rows in passes:
            sums, pass_weights, pass_residuals = self._pass_gradients(
                episodes.states[rows], episodes.actions[rows], targets[rows], None if advantages is None else advantages[rows])
            for name, vector in sums.items():
                result[name] = vector if name not in result else result[name] + vector
            weights.append(pass_weights)
            residuals.append(pass_residuals)
        if self.value is not None:
            result.update(value_sums(targets.to(torch.float64), torch.cat(residuals).to(torch.float64)))
        if normalizers(self.policy):
            result["observation_sum"], result["observation_square_sum"] = observation_sums(episodes.states)
        returns = discounted_returns(episodes.rewards, episodes.timestep, episodes.episode, episodes.count, estimator.gamma)
        undiscounted = episodes.undiscounted_returns()
        weights = torch.cat(weights).to(torch.float64)
        return ChunkResult(
            version=self.version,
            episodes=episodes.count,
            steps=len(episodes.episode),
            weight_sum=float(weights.sum()),
            weight_square_sum=float((weights**2).sum()),
            return_sum=float(undiscounted.sum()),
            return_min=float(undiscounted.min()),
            return_max=float(undiscounted.max()),
            discounted_return_sum=float(returns.sum()),
            truncated=episodes.truncated,
            env_steps=episodes.env_steps,
            **result,
        )

    def _targets(self, episodes: Episodes, passes: list[slice]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Each step's return (R(tau) or G_t: V's regression target) and, with GAE, its advantage A_t
        (its target then the lambda-return A_t + V(s_t)), in the policy's dtype."""
        estimator = self.estimator
        if estimator.returns != "gae":
            targets = estimator.returns_per_step(episodes.rewards, episodes.timestep, episodes.episode, episodes.count)
            return targets.to(self.dtype), None
        with torch.no_grad():
            values = torch.cat([self.value(episodes.states[rows]).squeeze(-1) for rows in passes]).to(torch.float64)
            last_values = torch.zeros(episodes.count, dtype=torch.float64)
            if episodes.final_states is not None:
                last_values[episodes.final_episode] = self.value(episodes.final_states).squeeze(-1).to(torch.float64)
        advantages = generalized_advantages(episodes.rewards, values, last_values, episodes.timestep, episodes.episode,
                                            episodes.count, estimator.gamma, estimator.gae_lambda)
        return (advantages + values).to(self.dtype), advantages.to(self.dtype)

    def _pass_gradients(self, states: torch.Tensor, actions: torch.Tensor, targets: torch.Tensor,
                        advantages: torch.Tensor | None):
        """The gradients of one forward pass's sums over its steps, its weights A_t (detached) and, with
        a value function, its residuals y_t - V(s_t) (else None).

        A_t is the given advantage (GAE), else the return minus V(s_t) (or the return, without V)."""
        estimator = self.estimator
        distribution = self.policy(states)
        log_probs = distribution.log_prob(actions)
        weights, residuals = targets, None
        parameters = list(self.policy.parameters())
        sums = {}
        if self.value is not None:
            values = self.value(states).squeeze(-1)
            residuals = targets - values.detach()
            weights = residuals if advantages is None else advantages
            value_error = ((values - targets) ** 2).sum()
            sums["value_gradient_sum"] = _flat_gradient(value_error, list(self.value.parameters()))
        sums["gradient_sum"] = _flat_gradient(policy_gradient_sum(log_probs, weights), parameters)
        if estimator.centred:
            sums["log_prob_gradient_sum"] = _flat_gradient(log_probs.sum(), parameters)
        if estimator.entropy:
            sums["entropy_gradient_sum"] = _flat_gradient(distribution.entropy().sum(), parameters)
        return sums, weights.detach(), residuals

    def _vector_env(self, width: int):
        if width not in self._vector_envs:
            self._vector_envs[width] = make_vector_env(self.env, width, self.max_episode_steps, self.vector_env)
        return self._vector_envs[width]


def copies_to_step(resetting: np.ndarray, episode: np.ndarray, started: int, episodes: int) -> np.ndarray:
    """The copies whose next step a kept episode needs: those running one of the chunk's first
    ``episodes`` episodes, and those about to reset into one. A resetting copy starts episode
    ``started`` plus its rank among the resetting copies (the order ``rollout`` numbers them in);
    a copy that would start a later one, or runs one, runs the chunk's dropped episodes from then on.
    """
    if not resetting.any():
        return episode < episodes
    starting = started + np.cumsum(resetting) - 1
    return np.where(resetting, starting < episodes, episode < episodes)


FORWARD_PASS_NUMBERS = 1 << 23  # the most observation numbers one forward pass takes (32 MiB as float32)
FORWARD_PASS_ROWS = 1 << 16  # and the most steps: a small net's activations for them stay in the cache


def forward_passes(states: torch.Tensor) -> list[slice]:
    """The rows of each forward pass over a chunk's steps: at most FORWARD_PASS_ROWS steps a pass,
    where a vector-observation net's activations stay in the CPU's cache (the gradient pass of a
    CartPole chunk of 360,000 steps runs 1.2x faster in passes of 65,536 steps than in one,
    docs/benchmarks.md); for images at most FORWARD_PASS_NUMBERS numbers a pass (297 stacked
    84x84x4 Atari frames), so that the activations autograd keeps stay bounded however long the
    chunk's episodes are."""
    rows = max(1, min(FORWARD_PASS_ROWS, FORWARD_PASS_NUMBERS // max(1, states[0].numel())))
    return [slice(start, start + rows) for start in range(0, len(states), rows)]


def check_finite(states: np.ndarray, rewards: np.ndarray, timestep: np.ndarray, resetting: np.ndarray) -> None:
    """An EnvError if a lockstep's rewards or states hold NaN or infinity: two np.isfinite per lockstep.

    ``timestep`` is each copy's step in its episode before this lockstep; a ``resetting``
    copy's state is a new episode's first.
    """
    for what, values in (("reward", rewards), ("observation", states)):
        finite = np.isfinite(values)
        if not finite.all():
            copy = int(np.flatnonzero(~finite.reshape(len(timestep), -1).all(axis=1))[0])
            value = values[copy][~finite[copy]].flat[0] if values.ndim > 1 else values[copy]
            where = where_in_episode(0 if resetting[copy] else int(timestep[copy]) + 1)
            raise EnvError(f"{what} {'holds' if values.ndim > 1 else 'is'} {value} {where}")

"""The rollout worker: run one chunk of episodes with theta and return their sums.

A plain class. The local backend calls it in the driver's process; the Ray backend
makes it an actor. The rollout is here: the chunk's episodes on a vector env, stepping only
the copies whose episodes it keeps; the gradient pass over them is ``pgdist.gradients``.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from pgdist.chunks import Chunk, ChunkResult, Episodes, ValueGradient
from pgdist.envs import EnvError
from pgdist.estimators import Estimator
from pgdist.gradients import chunk_sums, step_targets, value_gradient_sum
from pgdist.policy import actor, env_action_map
from pgdist.sampling import policy_input
from pgdist.theta import vector_to_state
from pgdist.vector_envs import make_vector_env, where_in_episode


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
        hold_steps: bool = False,
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
        # value_epochs > 1: each chunk's steps and V's targets, held from its run at the loaded theta for
        # the rounds of V's fit; those rounds load V's parameters into a copy (``fitted``), so that
        # ``value`` stays the iteration's V, from which a chunk run again gets the same targets
        self.hold_steps = hold_steps
        self.held = {}
        self.fitted = None

    def run(self, theta: np.ndarray, version: int, chunk: Chunk) -> ChunkResult:
        """Load theta (if it is new), run the chunk's episodes, return their gradient sum."""
        self.load(theta, version)
        episodes = self.rollout(chunk)
        return self.gradient_sum(episodes, self.hold(chunk, episodes) if self.hold_steps else None)

    def value_gradient(self, theta: np.ndarray, version: int, value_theta: np.ndarray, chunk: Chunk) -> ValueGradient:
        """A further round of V's fit: V's gradient sum over the chunk's steps at ``value_theta`` (V's
        parameters, flat). The steps are those held since the chunk ran here at ``theta``; a chunk that ran
        elsewhere (its worker lost) runs again at ``theta`` first, which gives the same steps and targets."""
        self.load(theta, version)
        if chunk not in self.held:
            self.hold(chunk, self.rollout(chunk))
        states, targets = self.held[chunk]
        if self.fitted is None:
            self.fitted = copy.deepcopy(self.value)  # with the iteration's observation normaliser
        torch.nn.utils.vector_to_parameters(torch.tensor(value_theta, dtype=self.dtype), self.fitted.parameters())
        return ValueGradient(version, chunk.index, value_gradient_sum(states, targets, self.fitted))

    def hold(self, chunk: Chunk, episodes: Episodes) -> tuple:
        """Keep the chunk's steps and V's targets for the rounds of V's fit; its targets and advantages.
        Only the latest sampling call's chunks are held (``Chunk.draw``)."""
        if any(held.draw != chunk.draw for held in self.held):
            self.held.clear()
        targets = step_targets(episodes, self.policy, self.value, self.estimator)
        self.held[chunk] = (episodes.states, targets[0])
        return targets

    def load(self, theta: np.ndarray, version: int) -> None:
        if version != self.version:
            vector_to_state(torch.tensor(theta, dtype=self.dtype), self.policy, self.value)
            self.version = version
            self.held.clear()  # the steps of an earlier theta's chunks
            self.fitted = None

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

    def gradient_sum(self, episodes: Episodes, targets: tuple | None = None) -> ChunkResult:
        """The chunk's sums (``pgdist.gradients.chunk_sums``) at the loaded theta; ``targets``: those held."""
        return chunk_sums(episodes, self.policy, self.value, self.estimator, self.version, targets)

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

"""The run's configuration: one frozen dataclass, validated once when it is built.

Defaults are the tutorial's (N = 10, lr = 1e-3, gamma = 0.95, Adam, two hidden
layers of 8 with tanh). Every field documents itself in ``metadata["help"]``,
which the command line shows.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

VECTOR_ENVS = ("gymnasium", "envpool")  # what steps a chunk's copies: pgdist.vector_envs
RETURNS = ("total", "reward_to_go", "gae")  # the choices of each estimator field: pgdist.estimators
BASELINES = ("none", "mean", "value")
INITS = ("default", "orthogonal")  # of the networks' weights: pgdist.policy.make_policy
BOUNDS = ("clip", "tanh")  # of a Gaussian policy's actions at a Box's bounds: pgdist.policy.GaussianPolicy
LR_SCALINGS = ("none", "sqrt", "adascale")  # of the policy's lr with adaptive N: pgdist.goodput.learning_rate_gain
SCHEDULES = ("constant", "linear")  # of the learning rate: pgdist.optim.learning_rate_factor
DEFAULT_MAX_EPISODE_STEPS = 10_000  # the cap of an env without a time limit of its own: pgdist.envs


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the field and the value."""


def _field(default, help: str, **kwargs):
    return field(default=default, metadata={"help": help}, **kwargs)


@dataclass(frozen=True)
class Config:
    env: str = _field(
        "CartPole-v1",
        "environment: a gymnasium id such as CartPole-v1, or 'module:Class' for a class in "
        "the tutorial's protocol (reset() -> state, step(action) -> (state, reward, done))",
    )
    max_episode_steps: int | None = _field(
        None,
        "steps after which an episode is cut (truncated); default: a gymnasium env's own time limit, "
        f"else {DEFAULT_MAX_EPISODE_STEPS:,} (every tutorial-protocol env). A cut episode is an "
        "episode of the capped MDP: the estimate stays exact and unbiased for it, and pgdist says "
        "when it cuts",
    )
    episodes: int = _field(10, "N, the trajectories behind each gradient step (Eq. 19, 23)")
    episodes_max: int | None = _field(
        None,
        "adaptive N: if set, each iteration's N is the one of most goodput (progress per env step, from the "
        "measured gradient noise scale and the planned workers), in whole chunks of chunk_episodes, from "
        "'episodes' (the first iterations' N and the least) up to this",
    )
    iteration_cost: float = _field(
        0.0,
        "adaptive N: the fixed cost of an iteration (the learner's step, the broadcast and the gather) in env "
        "steps of one worker; the larger, the larger the N that pays",
    )
    lr_scaling: str = _field(
        "none",
        "adaptive N: how the policy's lr follows N against the least N N0: 'none', 'sqrt' (sqrt(N/N0)) or "
        "'adascale' (AdaScale's gain from the noise scale)",
    )
    lr: float = _field(1e-3, "the optimizer's learning rate (alpha in Eq. 4; the optimizer is Adam unless the Learner is given another)")
    lr_schedule: str = _field(
        "constant", "learning rate over training: 'constant', or 'linear' (decays to 0 over iterations, as in SB3 and CleanRL)"
    )
    max_grad_norm: float | None = _field(
        None, "clip the estimated policy gradient to this norm before the step (torch.nn.utils.clip_grad_norm_)"
    )
    value_lr: float | None = _field(
        None, "learning rate of the value baseline (baseline='value'); default: lr. Spinning Up's vf_lr"
    )
    value_epochs: int = _field(
        1,
        "V's Adam steps per iteration on its squared error over the iteration's steps (baseline='value'): the "
        "first beside the policy's step, each further one a round in which the workers return V's gradient over "
        "the chunks' steps they hold. Spinning Up's train_v_iters (80)",
    )
    gamma: float = _field(0.95, "discount factor of the total return R(tau) (Eq. 6), in (0, 1]")
    hidden: tuple[int, ...] = _field((8, 8), "sizes of the policy's hidden tanh layers")
    init: str = _field(
        "default",
        "the networks' initial weights: 'default' (torch's), or 'orthogonal' (gain sqrt 2, the policy's last "
        "layer 0.01 and V's 1, zero biases: PPO's in OpenAI Baselines, SB3 and CleanRL)",
    )
    log_std_init: float = _field(0.0, "initial log std of the Gaussian policy's actions (Box action spaces)")
    bound_actions: str = _field(
        "clip",
        "how the Gaussian policy's actions meet a Box's bounds on their way into the env: 'clip', or 'tanh' "
        "(low + (tanh(u) + 1) (high - low) / 2); ln pi is of the sampled u either way, whose gradient is the "
        "squashed action's",
    )
    iterations: int = _field(1000, "gradient steps to take")
    returns: str = _field(
        "total",
        "weight of each step's grad ln pi: 'total', the episode's return R(tau) (Eq. 23), or "
        "'reward_to_go', the discounted rewards from that step on, or 'gae', the generalised advantage "
        "estimate of gae_lambda (with baseline='value')",
    )
    gae_lambda: float = _field(
        0.95,
        "lambda of returns='gae' (Schulman et al. 2016) in [0, 1]: 1 gives the reward-to-go minus V(s_t), "
        "0 the one-step r_t + gamma V(s_t+1) - V(s_t)",
    )
    baseline: str = _field(
        "none",
        "subtracted from the returns: 'none', 'mean' (their mean over the batch's steps) or "
        "'value' (a learned V(s), trained by regression on the returns)",
    )
    standardize: bool = _field(
        False, "centre the (baselined) returns on their batch mean and divide by their batch std"
    )
    entropy: float = _field(0.0, "entropy bonus: beta in + beta (1/N) sum_t grad H(pi(.|s_t))")
    normalize_observations: bool = _field(
        False,
        "the policy and V see (s - mu) / sigma, clipped to +-observation_clip, with mu and sigma from every "
        "step of the earlier iterations (the chunks' sums, merged by the learner); vector observations only",
    )
    observation_clip: float = _field(10.0, "the bound of normalised observations (normalize_observations)")
    stop_return: float | None = _field(
        None, "stop once an iteration's mean episode return reaches this (e.g. 475 for CartPole-v1), keeping that iteration's policy"
    )
    workers: int | None = _field(
        None,
        "rollout workers; default: the number of CPUs Ray sees, but no more than N's chunks (2 at least "
        "on a local instance pgdist starts). Ray actors, except on a local instance pgdist starts, where "
        "this process is one of them (workers - 1 actors)",
    )
    seed: int = _field(0, "seed of everything random: weights, environments, actions")
    address: str | None = _field(
        None, "Ray cluster address to join; default: start a local Ray instance on loopback"
    )
    chunk_episodes: int | None = _field(
        None,
        "episodes per chunk, the unit of work handed to a worker; N is cut into such chunks. Default: "
        "pgdist.layout's rule, from N and the env's episode cap alone (never from the workers): N in "
        "equal chunks of at most 16384 episodes, and in 2 chunks or more where N allows 500 episodes each",
    )
    envs_per_chunk: int | None = _field(
        None,
        "environment copies a worker steps in lockstep while it runs a chunk. Default: pgdist.layout's "
        "rule, 32 sqrt(chunk_episodes) (at most 4096, and one per episode): a lockstep costs a fixed part "
        "plus a part per copy, and copies idle while a chunk's last episodes finish",
    )
    backend: str = _field(
        "ray", "'ray': workers are Ray actors; 'local': one worker in this process, no Ray"
    )
    vector_env: str = _field(
        "gymnasium",
        "what steps a chunk's copies: 'gymnasium' (the env's own vector env, or its copies one by one); "
        "'envpool': EnvPool's C++ env of the same id on one thread per worker (the envpool extra; "
        "its episodes are EnvPool's, not gymnasium's step for step)",
    )
    chunk_timeout: float = _field(
        600.0,
        "seconds a Ray actor may take on one chunk before the chunk counts as hung (an environment "
        "stuck in step): the actor is restarted and the chunk runs once more on another actor; a "
        "second hang stops the run. A chunk in the learner's own process (the local backend, and one "
        "of the workers on a local instance) is never timed out",
    )

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(self.hidden))
        _positive_int(self, "episodes", "iterations", "value_epochs")
        for name in ("workers", "max_episode_steps", "chunk_episodes", "envs_per_chunk"):
            if getattr(self, name) is not None:
                _positive_int(self, name)
        if self.episodes_max is not None:
            _check_adaptive(self)
        if not 0.0 < self.gamma <= 1.0:
            _fail("gamma", self.gamma, "a discount factor in (0, 1]")
        for name in ("lr", "value_lr", "max_grad_norm"):
            value = getattr(self, name)
            if (value is not None or name == "lr") and not (_number(value) and 0.0 < value < math.inf):
                _fail(name, value, "a number > 0" + ("" if name == "lr" else " or null"))
        if self.lr_scaling not in LR_SCALINGS:
            _fail("lr_scaling", self.lr_scaling, " or ".join(map(repr, LR_SCALINGS)))
        if not (_number(self.iteration_cost) and 0.0 <= self.iteration_cost < math.inf):
            _fail("iteration_cost", self.iteration_cost, "a number of env steps >= 0")
        if self.lr_schedule not in SCHEDULES:
            _fail("lr_schedule", self.lr_schedule, " or ".join(map(repr, SCHEDULES)))
        if any(not isinstance(size, int) or size < 1 for size in self.hidden):
            _fail("hidden", self.hidden, "layer sizes that are whole numbers >= 1")
        if self.init not in INITS:
            _fail("init", self.init, " or ".join(map(repr, INITS)))
        if self.bound_actions not in BOUNDS:
            _fail("bound_actions", self.bound_actions, " or ".join(map(repr, BOUNDS)))
        if not (_number(self.log_std_init) and math.isfinite(self.log_std_init)):
            _fail("log_std_init", self.log_std_init, "a finite number")
        if self.returns not in RETURNS:
            _fail("returns", self.returns, " or ".join(map(repr, RETURNS)))
        if self.baseline not in BASELINES:
            _fail("baseline", self.baseline, " or ".join(map(repr, BASELINES)))
        if self.returns == "gae" and self.baseline != "value":
            raise ConfigError(f"returns='gae' needs baseline='value' (its V(s)), not baseline={self.baseline!r}")
        if self.value_epochs > 1 and self.baseline != "value":
            raise ConfigError(f"value_epochs={self.value_epochs} fits a learned V(s): it needs baseline='value', "
                              f"not baseline={self.baseline!r}")
        if not (_number(self.gae_lambda) and 0.0 <= self.gae_lambda <= 1.0):
            _fail("gae_lambda", self.gae_lambda, "a number in [0, 1]")
        for name in ("standardize", "normalize_observations"):
            if not isinstance(getattr(self, name), bool):
                _fail(name, getattr(self, name), "true or false")
        if not (_number(self.observation_clip) and 0.0 < self.observation_clip <= math.inf):
            _fail("observation_clip", self.observation_clip, "a number > 0")
        if not 0.0 <= self.entropy < math.inf:
            _fail("entropy", self.entropy, "a coefficient >= 0")
        if self.stop_return is not None and not math.isfinite(self.stop_return):
            _fail("stop_return", self.stop_return, "a finite number or null")
        if self.backend not in ("ray", "local"):
            _fail("backend", self.backend, "'ray' or 'local'")
        if self.vector_env not in VECTOR_ENVS:
            _fail("vector_env", self.vector_env, " or ".join(repr(name) for name in VECTOR_ENVS))
        timeout = self.chunk_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            _fail("chunk_timeout", self.chunk_timeout, "a number of seconds > 0")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            _fail("seed", self.seed, "a whole number in [0, 2**63)")  # what numpy's and torch's seeds take
        if not isinstance(self.env, str) or not self.env:
            _fail("env", self.env, "a gymnasium id or 'module:Class'")  # which exists: pgdist.envs.check_env_name

    def replace(self, **changes) -> Config:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in fields()}

    def to_yaml(self) -> str:
        values = {name: list(v) if isinstance(v, tuple) else v for name, v in self.to_dict().items()}
        return yaml.safe_dump(values, sort_keys=False)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides) -> Config:
        """A Config from a YAML file of field: value lines, ``overrides`` taking precedence."""
        return cls(**{**read_yaml(path), **overrides})


def fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(Config)}


_KINDS = {"int": int, "float": float, "str": str, "bool": bool, "tuple[int, ...]": tuple}


def _kind(name: str) -> tuple[type, bool]:
    """A field's type and whether it may be None, read from its annotation."""
    annotation = fields()[name].type
    nullable = annotation.endswith(" | None")
    return _KINDS[annotation.removesuffix(" | None")], nullable


def coerce(name: str, value, where: str = ""):
    """``value`` as field ``name``'s type (from YAML or the command line), or a ConfigError naming both."""
    if name not in fields():
        known = ", ".join(fields())
        raise ConfigError(f"{where}unknown key {name!r}; the keys are: {known}")
    kind, nullable = _kind(name)
    if value is None or (nullable and isinstance(value, str) and value.lower() in ("none", "null")):
        if nullable:
            return None
    elif kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
    elif kind is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if isinstance(items, (list, tuple)):
            try:
                return tuple(_whole(item) for item in items)
            except (TypeError, ValueError, OverflowError):
                pass
    elif kind is str:
        if isinstance(value, str):
            return value
    elif not isinstance(value, bool):  # a whole number or a number
        try:
            return _whole(value) if kind is int else float(value)
        except (TypeError, ValueError, OverflowError):
            pass
    expected = {int: "a whole number", float: "a number", str: "a string", bool: "true or false",
                tuple: "a list of whole numbers"}[kind] + (" or null" if nullable else "")
    raise ConfigError(f"{where}{name}={value!r} is invalid: expected {expected}")


def _whole(value) -> int:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, str):
        return int(value.strip())
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(value)
    return int(value)


def read_yaml(path: str | Path) -> dict:
    """A YAML config file's values, each checked against its field; errors name the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not a UTF-8 text file ({error.reason} at byte {error.start})") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise _yaml_error(path, error) from None
    if root is None:
        return {}
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{path}:{root.start_mark.line + 1}: expected 'key: value' lines")
    for key, _ in root.value:
        if not (isinstance(key, yaml.ScalarNode) and key.tag == "tag:yaml.org,2002:str"):
            raise ConfigError(f"{path}:{key.start_mark.line + 1}: expected a field name as key, not {key.value!r}")
    lines = {key.value: key.start_mark.line + 1 for key, _ in root.value}
    return {key: coerce(key, value, where=f"{path}:{lines[key]}: ") for key, value in data.items()}


def _yaml_error(path: Path, error: yaml.YAMLError) -> ConfigError:
    """YAML's several-line message as one line, with the line it points at."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
    problem = getattr(error, "problem", None) or str(error).split("\n")[0]
    return ConfigError(f"{where}: not valid YAML: {problem}")


def _positive_int(config, *names):
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            _fail(name, value, "a whole number >= 1")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_adaptive(config):
    _positive_int(config, "episodes_max")
    if config.episodes_max < config.episodes:
        _fail("episodes_max", config.episodes_max, f"a whole number >= episodes={config.episodes}")
    if config.chunk_episodes is None:  # pgdist.layout's rule cuts N into 2 chunks or more
        if config.episodes < 2:
            _fail("episodes", config.episodes, "2 or more with episodes_max: adaptive N compares 2 chunks or more")
    elif config.episodes <= config.chunk_episodes:
        raise ConfigError(
            f"episodes={config.episodes} is one chunk of chunk_episodes={config.chunk_episodes}: adaptive N "
            "(episodes_max) measures the noise scale from 2 chunks or more; lower chunk_episodes below episodes"
        )


def _fail(name, value, expected):
    raise ConfigError(f"{name}={value!r} is invalid: expected {expected}")

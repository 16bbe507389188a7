"""pgdist: REINFORCE (the policy gradient method), exact to its derivation, over Ray actors."""

from pgdist.config import Config, ConfigError
from pgdist.learner import Batch, Learner, StaleResultError
from pgdist.policy import Policy
from pgdist.training import Callback, train

__all__ = ["Batch", "Callback", "Config", "ConfigError", "Learner", "Policy", "StaleResultError", "train"]
__version__ = "0.1.0"

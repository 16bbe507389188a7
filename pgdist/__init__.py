"""pgdist: REINFORCE (the policy gradient method), exact to its derivation, over Ray actors."""

from pgdist.config import Config, ConfigError
from pgdist.learner import Learner, StaleResultError
from pgdist.policy import Policy

__all__ = ["Config", "ConfigError", "Learner", "Policy", "StaleResultError"]
__version__ = "0.1.0"

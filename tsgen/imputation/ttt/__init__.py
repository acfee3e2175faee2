"""The TTT imputer in PyPOTS's per-model layout: ``config``, ``core``, ``data``, ``model``."""

from .config import TTTImputerConfig
from .core import _TTTImputer
from .data import DatasetForTTTImputer, check_set
from .model import TrainingHistory, TTTImputer

__all__ = ["DatasetForTTTImputer", "TTTImputer", "TTTImputerConfig", "TrainingHistory", "_TTTImputer", "check_set"]

"""The TTT imputer in PyPOTS's per-model layout: ``config``, ``core``, ``data``, ``model``."""

from .config import TTTImputerConfig
from .core import _TTTImputer
from .data import DatasetForTTTImputer, check_set
from .model import ReconstructionView, TTTImputer

__all__ = [
    "DatasetForTTTImputer",
    "ReconstructionView",
    "TTTImputer",
    "TTTImputerConfig",
    "_TTTImputer",
    "check_set",
]

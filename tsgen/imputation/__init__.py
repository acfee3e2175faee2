"""Imputation of partially observed time series with test-time-training (TTT) layers.

* :mod:`~tsgen.imputation.layers`: TTT-Linear and TTT-MLP (Sun et al. 2024) in the
  mini-batch dual form, a bidirectional wrapper, blocks and an encoder.
* :mod:`~tsgen.imputation.naive`: the naive RNN-style TTT imputer (the starting point).
* :mod:`~tsgen.imputation.ttt`: :class:`TTTImputer`, a PyPOTS ``BaseNNImputer``
  (``config``, ``core``, ``data``, ``model``), with test-time adaptation.
* :mod:`~tsgen.imputation.evaluation`: data splits, PyPOTS baselines and scoring in one code path.
"""

from .. import _pypots  # noqa: F401  (PyPOTS without its banner, before anything imports it)
from .evaluation import MODELS, compare, fit_and_score, imputation_splits, make_imputer, summarize, window_stats
from .layers import BidirectionalTTT, TTTBlock, TTTEncoder, TTTLayer, TTTLinear, TTTMLP, make_ttt_layer
from .naive import NaiveTTTImputer, train_naive
from .ttt import TTTImputer, TTTImputerConfig

__all__ = [
    "MODELS",
    "BidirectionalTTT",
    "NaiveTTTImputer",
    "TTTBlock",
    "TTTEncoder",
    "TTTImputer",
    "TTTImputerConfig",
    "TTTLayer",
    "TTTLinear",
    "TTTMLP",
    "compare",
    "fit_and_score",
    "imputation_splits",
    "make_imputer",
    "make_ttt_layer",
    "summarize",
    "train_naive",
    "window_stats",
]

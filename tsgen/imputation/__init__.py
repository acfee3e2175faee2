"""Imputation of partially observed time series with test-time-training (TTT) layers.

* :mod:`~tsgen.imputation.layers`: TTT-Linear and TTT-MLP (Sun et al. 2024) in the
  mini-batch dual form, a bidirectional wrapper, blocks and an encoder.
* :mod:`~tsgen.imputation.naive`: the naive RNN-style TTT imputer (the starting point).
* :mod:`~tsgen.imputation.ttt`: :class:`TTTImputer`, a PyPOTS ``BaseNNImputer`` and a
  tsgen estimator (``config``, ``core``, ``data``, ``model``), with test-time
  adaptation by any registered engine of :mod:`tsgen.adaptation`.
* :mod:`~tsgen.imputation.speed`: timing helpers and the per-token TTT loop.
* :mod:`~tsgen.imputation.experiments`: data splits, PyPOTS baselines and scoring in
  one code path; the protocols of chapters 2 and 3 as functions returning DataFrames.
"""

from .. import _pypots  # noqa: F401  (PyPOTS without its banner, before anything imports it)
from .experiments import (
    MODELS,
    ablation_variants,
    ablations,
    adaptation_sweep,
    direction_sensitivity,
    dual_form_comparison,
    fit_and_score,
    imputation_splits,
    make_imputer,
    score_imputations,
    speed_comparison,
    split_summary,
    standardised,
    window_stats,
)
from .layers import (
    TTTMLP,
    BidirectionalTTT,
    TTTBlock,
    TTTEncoder,
    TTTLayer,
    TTTLinear,
    make_ttt_layer,
)
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
    "ablation_variants",
    "ablations",
    "adaptation_sweep",
    "direction_sensitivity",
    "dual_form_comparison",
    "fit_and_score",
    "imputation_splits",
    "make_imputer",
    "make_ttt_layer",
    "score_imputations",
    "speed_comparison",
    "split_summary",
    "standardised",
    "train_naive",
    "window_stats",
]

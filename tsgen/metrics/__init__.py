"""Metrics: how good are generated series and imputed values?

Generation metrics (all take complete ``real`` and ``fake`` arrays
``[n, length, features]``, a ``seed``, a ``device`` and their iteration
counts, whose defaults are the published protocols; all repeat ``repeats``
times and return a :class:`MetricResult`, which unpacks as ``mean, std``):

* :func:`discriminative_score` — TimeGAN's post-hoc GRU classifier, |0.5 − accuracy|;
* :func:`predictive_score` — train on synthetic, test on real, one step ahead, MAE;
* :func:`context_fid` — Fréchet distance of TS2Vec representations (:class:`ContextFID`
  reuses the encoders across several generated sets);
* :func:`correlation_score` — Diffusion-TS's cross-correlation difference.

:func:`imputation_errors` gives MAE / MSE / RMSE / MRE over a mask through
PyPOTS; :func:`distort` makes the controlled distortions of the sanity checks,
and :mod:`tsgen.metrics.experiments` runs them (chapter 9's sanity grid).
Forecasting (clinical) metrics live in :mod:`tsgen.metrics.clinical`.
"""

from . import experiments
from .base import MetricResult
from .context_fid import ContextFID, context_fid, frechet_distance
from .correlation import correlation_distance, correlation_score, cross_correlations
from .discriminative import discriminative_score
from .imputation import imputation_errors
from .predictive import predictive_score
from .sanity import DISTORTIONS, distort
from .ts2vec import TS2Vec, TS2VecConfig

__all__ = [
    "DISTORTIONS",
    "ContextFID",
    "MetricResult",
    "TS2Vec",
    "TS2VecConfig",
    "context_fid",
    "correlation_distance",
    "correlation_score",
    "cross_correlations",
    "discriminative_score",
    "distort",
    "experiments",
    "frechet_distance",
    "imputation_errors",
    "predictive_score",
]

"""Forecasting with time-series foundation models: TinyTimeMixer for blood glucose.

* :mod:`~tsgen.forecasting.config`: ``TTMConfig`` (and its factories, its training and data parts);
* :mod:`~tsgen.forecasting.data`: the input pipeline (checks, resampling, scaling, gap filling,
  the TTT imputer as ``imputation_strategy="ttt_imputer"``), windows and the forecast table;
* :mod:`~tsgen.forecasting.core`: the TinyTimeMixer network (TTM-r2 architecture, hub, local checkpoints);
* :mod:`~tsgen.forecasting.model`: ``TTMForecaster`` (fit / predict / predict_zero_shot / evaluate / save / load);
* :mod:`~tsgen.forecasting.baselines`: ``Persistence`` and ``LinearRegression``, on the same pipeline;
* :mod:`~tsgen.forecasting.experiments`: chapter 5's protocols (gap filling, the simulated comparison,
  the GlucoBench protocol on real CGM data with conformal intervals and test-time adaptation).

Every forecaster is a :class:`tsgen.estimator.Estimator` reading the cohort
format of :mod:`tsgen.data.glucose` and writing one long forecast table that
:mod:`tsgen.metrics.clinical` scores.
"""

from .base import BaseTSFM
from .baselines import LinearRegression, Persistence
from .config import (
    TTM_R2_HUB_ID,
    ModelConfig,
    TTMConfig,
    TTMDataConfig,
    TTMTrainingConfig,
    create_default_ttm_config,
    create_ttm_fine_tuning_config,
    create_ttm_zero_shot_config,
)
from .core import hub_reachable, ttm_r2_architecture
from .data import Preprocessor, quality_report, time_split
from .experiments import (
    REAL_MODELS,
    adapted_forecasts,
    cohort_summary,
    conformal_intervals,
    gap_filling_comparison,
    glucobench_origins,
    glucose_comparison,
    interval_coverage,
    real_data_comparison,
    remove_readings,
)
from .model import TTMForecaster

__all__ = [
    "REAL_MODELS",
    "TTM_R2_HUB_ID",
    "BaseTSFM",
    "LinearRegression",
    "ModelConfig",
    "Persistence",
    "Preprocessor",
    "TTMConfig",
    "TTMDataConfig",
    "TTMForecaster",
    "TTMTrainingConfig",
    "adapted_forecasts",
    "cohort_summary",
    "conformal_intervals",
    "create_default_ttm_config",
    "create_ttm_fine_tuning_config",
    "create_ttm_zero_shot_config",
    "gap_filling_comparison",
    "glucobench_origins",
    "glucose_comparison",
    "hub_reachable",
    "interval_coverage",
    "quality_report",
    "real_data_comparison",
    "remove_readings",
    "time_split",
    "ttm_r2_architecture",
]

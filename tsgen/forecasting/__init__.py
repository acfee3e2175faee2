"""Forecasting with time-series foundation models: TinyTimeMixer for blood glucose.

``TTMConfig`` (and its factories) -> ``TTMForecaster`` (fit / predict /
predict_zero_shot / evaluate / save / load) beside the ``Persistence`` and
``LinearRegression`` baselines, all reading the cohort format of
:mod:`tsgen.data.glucose` and writing one long forecast table that
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
from .inputs import Preprocessor, quality_report, time_split
from .ttm import TTMForecaster, hub_reachable, ttm_r2_architecture

__all__ = [
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
    "create_default_ttm_config",
    "create_ttm_fine_tuning_config",
    "create_ttm_zero_shot_config",
    "hub_reachable",
    "quality_report",
    "time_split",
    "ttm_r2_architecture",
]

"""The interface every forecaster in :mod:`tsgen.forecasting` shares."""

from __future__ import annotations

from abc import ABC, abstractmethod

import pandas as pd


class BaseTSFM(ABC):
    """A time-series forecaster: ``fit`` on patients, ``predict`` a long forecast table, ``save``/``load``.

    ``predict`` returns one row per (patient, forecast origin, horizon) with
    columns ``p_num``, ``origin``, ``horizon_min``, ``time``, the forecast in
    mmol/L (the target's name) and mg/dL (``bg_mgdl``), and the observed values
    beside them where the data has them (``*_true``, NaN otherwise).
    """

    @abstractmethod
    def fit(self, train_data, output_dir=None) -> "BaseTSFM": ...

    @abstractmethod
    def predict(self, data, stride: int = 1, full_future: bool = False) -> pd.DataFrame: ...

    @abstractmethod
    def save(self, path) -> None: ...

    @classmethod
    @abstractmethod
    def load(cls, path) -> "BaseTSFM": ...

    def evaluate(self, data, horizons=(30, 60)) -> pd.DataFrame:
        """Clinical metrics (RMSE, MAE, MARD, Clarke zones) at ``horizons`` minutes, over the
        origins of ``data`` whose whole forecast horizon is in the data (the same origins at every horizon)."""
        from tsgen.metrics import clinical  # imported here: the metrics package pulls in heavy modules

        return clinical.horizon_metrics(self.predict(data, full_future=True), horizons)

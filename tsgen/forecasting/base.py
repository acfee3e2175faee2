"""What every forecaster in :mod:`tsgen.forecasting` shares: the estimator contract, the input pipeline,
the forecast table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..estimator import Estimator
from ..runtime import resolve_device
from .config import TTMConfig
from .data import Preprocessor


class BaseTSFM(Estimator):
    """A glucose forecaster: a :class:`~tsgen.estimator.Estimator` over a :class:`~.data.Preprocessor`.

    Built from a :class:`TTMConfig` and a device (None: the config's
    ``device``); ``fit(train_data, ...)`` returns self; ``predict`` returns one
    row per (patient, forecast origin, horizon) with columns ``p_num``,
    ``origin``, ``horizon_min``, ``time``, the forecast in mmol/L (the target's
    name) and mg/dL (``bg_mgdl``), and the observed values beside them where the
    data has them (``*_true``, NaN otherwise). The checkpoint keeps the fitted
    preprocessor in ``state.json`` and its TTT imputer, when it has one, as a
    nested checkpoint in ``imputer/``.
    """

    config_class = TTMConfig

    def _finite(self, forecast: np.ndarray) -> np.ndarray:
        """``forecast``, or an error when the model forecast NaN or inf (never a silent NaN row)."""
        if not np.isfinite(forecast).all():
            raise ValueError(
                f"{self.kind}'s forecasts are not finite: its weights or "
                "coefficients, or the scale of the contexts, are out of range"
            )
        return forecast

    def __init__(self, config: TTMConfig, device: str | None = None):
        super().__init__(config, device)
        if device is None:  # the seed's TTMForecaster(cfg): the config names the device
            self.device = resolve_device(config.device)
        self.preprocessor = Preprocessor(config.to_data_config(), device=self.device)

    def predict(
        self,
        data,
        stride: int = 1,
        full_future: bool = False,
        batch_size: int | None = None,
    ) -> pd.DataFrame:
        raise NotImplementedError

    def evaluate(self, data, horizons=(30, 60)) -> pd.DataFrame:
        """Clinical metrics (RMSE, MAE, MARD, Clarke zones) at ``horizons`` minutes, over the
        origins of ``data`` whose whole forecast horizon is in the data (the same origins at every horizon)."""
        # imported here: the metrics package pulls in heavy modules
        from tsgen.metrics import clinical

        return clinical.horizon_metrics(self.predict(data, full_future=True), horizons)

    def _check_fitted(self) -> None:
        if not self.preprocessor.fitted:
            raise RuntimeError(f"{self.kind} is not fitted: call fit() first")

    # ---- checkpoint
    # the preprocessor's state in state.json, its TTT imputer in imputer/
    def _state(self) -> dict:
        return {"preprocessor": self.preprocessor.to_dict()}

    def _restore(self, state: dict) -> None:
        if not isinstance(state.get("preprocessor"), dict):
            raise ValueError(
                f"state.json of this {self.kind} checkpoint lacks its fitted "
                "'preprocessor': the checkpoint is incomplete"
            )
        self.preprocessor = Preprocessor.from_dict(
            state["preprocessor"], device=self.device
        )

    def _save_extra(self, directory: Path) -> None:
        self.preprocessor.save_imputer(directory)

    def _load_extra(self, directory: Path) -> None:
        self.preprocessor.load_imputer(directory)

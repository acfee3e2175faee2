"""Baselines every glucose forecaster must beat, on the same windows and the same forecast table.

* :class:`Persistence` repeats the last reading (the "no change" forecast).
* :class:`LinearRegression` is ridge regression from the context window of
  glucose to every horizon, fitted on the training windows (an autoregressive
  linear model; GlucoBench's linear baseline is of this kind).
"""

from __future__ import annotations

import json
from abc import abstractmethod
from pathlib import Path

import numpy as np
import pandas as pd

from .base import BaseTSFM
from .config import TTMConfig
from .inputs import Preprocessor, check_lengths, forecast_frame, window_starts


class _WindowForecaster(BaseTSFM):
    """Shared plumbing: the TTM input pipeline, context windows of the target, the forecast table."""

    name = "baseline"

    def __init__(self, config: TTMConfig):
        self.config = config
        self.preprocessor = Preprocessor(config.to_data_config())

    def _prepare(self, data, fit: bool = False):
        return self.preprocessor.series(data, fit)[0]

    def _contexts(self, series, stride: int = 1, full_future: bool = False):
        cfg = self.config
        starts = [window_starts(len(s), cfg.context_length, cfg.forecast_length, stride, full_future=full_future)
                  for s in series.values()]
        ctx = [s.values[st[:, None] + np.arange(cfg.context_length), 0] for s, st in zip(series.values(), starts)]
        return starts, np.concatenate(ctx) if ctx else np.zeros((0, cfg.context_length))

    @abstractmethod
    def _forecast(self, contexts: np.ndarray) -> np.ndarray:
        """Scaled forecasts ``[n, forecast_length]`` from scaled contexts ``[n, context_length]``."""

    def predict(self, data, stride: int = 1, full_future: bool = False) -> pd.DataFrame:
        if not self.preprocessor.fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit() first")
        series = self._prepare(data)
        check_lengths(series, self.config.context_length, "a forecast (needs one full context)")
        starts, contexts = self._contexts(series, stride, full_future)
        scaled = self._forecast(contexts)
        glucose_mM = self.preprocessor.unscale_target(scaled[..., None])[..., 0]
        return forecast_frame(list(series.values()), starts, glucose_mM, self.preprocessor.observed_target(series),
                              self.config.context_length, self.config.resolution_min, self.config.target_features[0])

    def _state(self) -> dict:
        return {}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.config.to_json(path / "config.json")
        state = {"kind": type(self).__name__, "preprocessor": self.preprocessor.to_dict(), **self._state()}
        (path / "state.json").write_text(json.dumps(state))
        self.preprocessor.save_imputer(path)
        return path

    @classmethod
    def load(cls, path: str | Path):
        path = Path(path)
        state = json.loads((path / "state.json").read_text())
        if state["kind"] != cls.__name__:
            raise ValueError(f"{path} holds a {state['kind']}, not a {cls.__name__}")
        model = cls(TTMConfig.read(path / "config.json"))
        model.preprocessor = Preprocessor.from_dict(state["preprocessor"], path)
        model._restore(state)
        return model

    def _restore(self, state: dict) -> None:
        pass


class Persistence(_WindowForecaster):
    """Every horizon gets the last reading of the context."""

    name = "persistence"

    def fit(self, train_data, output_dir=None) -> "Persistence":
        self._prepare(train_data, fit=True)  # only the scaler, so inputs go through the same pipeline
        return self

    def _forecast(self, contexts: np.ndarray) -> np.ndarray:
        return np.repeat(contexts[:, -1:], self.config.forecast_length, axis=1)


class LinearRegression(_WindowForecaster):
    """Ridge regression (``alpha``) from the (scaled) glucose context window to each horizon."""

    name = "linear regression"

    def __init__(self, config: TTMConfig, alpha: float = 1.0):
        super().__init__(config)
        if alpha < 0:
            raise ValueError(f"alpha must be non-negative; got {alpha}")
        self.alpha = float(alpha)
        self.coef: np.ndarray | None = None  # [context + 1, forecast], last row the intercept

    def fit(self, train_data, output_dir=None) -> "LinearRegression":
        cfg = self.config
        series = self._prepare(train_data, fit=True)
        check_lengths(series, cfg.context_length + cfg.forecast_length, "training")
        starts, x = self._contexts(series, full_future=True)
        y = np.concatenate([s.values[st[:, None] + cfg.context_length + np.arange(cfg.forecast_length), 0]
                            for s, st in zip(series.values(), starts)])
        x1 = np.hstack([x, np.ones((len(x), 1))])
        penalty = self.alpha * np.eye(x1.shape[1])
        penalty[-1, -1] = 0.0  # the intercept is not shrunk
        self.coef = np.linalg.solve(x1.T @ x1 + penalty, x1.T @ y)
        return self

    def _forecast(self, contexts: np.ndarray) -> np.ndarray:
        return np.hstack([contexts, np.ones((len(contexts), 1))]) @ self.coef

    def _state(self) -> dict:
        return {"alpha": self.alpha, "coef": self.coef.tolist()}

    def _restore(self, state: dict) -> None:
        self.alpha, self.coef = state["alpha"], np.asarray(state["coef"])

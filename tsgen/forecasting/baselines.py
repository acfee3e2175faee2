"""Baselines every glucose forecaster must beat, on the same windows and the same forecast table.

* :class:`Persistence` repeats the last reading (the "no change" forecast).
* :class:`LinearRegression` is ridge regression from the context window of
  glucose to every horizon, fitted on the training windows (an autoregressive
  linear model; GlucoBench's linear baseline is of this kind).

Both are :class:`~.base.BaseTSFM` estimators built from a :class:`TTMConfig`
(its data part: columns, lengths, scaling, gap filling) and save the same
checkpoint as :class:`~.model.TTMForecaster`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..config import non_negative
from ..estimator import TrainingLog
from .base import BaseTSFM
from .config import TTMConfig
from .data import check_lengths, forecast_frame, window_starts


class _WindowForecaster(BaseTSFM):
    """Shared plumbing: context windows of the target from the input pipeline, the forecast table."""

    def _prepare(self, data, fit: bool = False):
        return self.preprocessor.series(data, fit)[0]

    def _contexts(
        self, series, stride: int = 1, full_future: bool = False, train=False
    ):
        """Window starts per series and the glucose contexts ``[n, context_length]``, each filled from
        its own readings (:meth:`~.data.Preprocessor.fill`)."""
        cfg = self.config
        starts = [
            window_starts(
                len(s),
                cfg.context_length,
                cfg.forecast_length,
                stride,
                full_future=full_future,
                observed=s.observed[:, 0],
                max_gap=cfg.max_gap_steps,
                need_target=train,
            )
            for s in series.values()
        ]
        ctx = [
            s.values[st[:, None] + np.arange(cfg.context_length)]
            for s, st in zip(series.values(), starts, strict=True)
        ]
        if not ctx or not sum(len(c) for c in ctx):
            return starts, np.zeros((0, cfg.context_length))
        return starts, self.preprocessor.fill(np.concatenate(ctx))[..., 0]

    def _forecast(self, contexts: np.ndarray) -> np.ndarray:
        """Scaled forecasts ``[n, forecast_length]`` from scaled contexts ``[n, context_length]``."""
        raise NotImplementedError

    def predict(
        self,
        data,
        stride: int = 1,
        full_future: bool = False,
        batch_size: int | None = None,
    ) -> pd.DataFrame:
        """Forecasts from every origin with a full context (``batch_size`` is accepted for the shared
        interface: these models forecast all windows at once)."""
        self._check_fitted()
        series = self._prepare(data)
        check_lengths(
            series, self.config.context_length, "a forecast (needs one full context)"
        )
        starts, contexts = self._contexts(series, stride, full_future)
        scaled = self._finite(self._forecast(contexts))
        glucose_mM = self.preprocessor.unscale_target(scaled[..., None])[..., 0]
        return forecast_frame(
            list(series.values()),
            starts,
            glucose_mM,
            self.preprocessor.observed_target(series),
            self.config.context_length,
            self.config.resolution_min,
            self.config.target_features[0],
        )


class Persistence(_WindowForecaster):
    """Every horizon gets the last reading of the context. Nothing is learned: no tensors, no history."""

    def fit(
        self,
        train_data,
        *,
        progress: bool | None = None,
        logging_dir: str | Path | None = None,
    ) -> Persistence:
        """Fit the input pipeline only (scaler, gap filler), so inputs go through the same steps as TTM's.

        ``progress`` and ``logging_dir`` are accepted for the shared contract; there is no epoch to report.
        """
        self._prepare(train_data, fit=True)
        return self

    def _forecast(self, contexts: np.ndarray) -> np.ndarray:
        return np.repeat(contexts[:, -1:], self.config.forecast_length, axis=1)

    def _tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def _load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        if tensors:
            raise KeyError(f"Persistence keeps no tensors; got {sorted(tensors)[:5]}")


class LinearRegression(_WindowForecaster):
    """Ridge regression (penalty ``alpha >= 0``, the intercept unpenalised) from the scaled glucose
    context window to each horizon; ``alpha`` is kept in ``state.json``, the coefficients as a tensor."""

    def __init__(
        self, config: TTMConfig, device: str | None = None, *, alpha: float = 1.0
    ):
        super().__init__(config, device)
        self.alpha = alpha
        non_negative(self, "alpha")
        # [context + 1, forecast], last row the intercept
        self.coef: np.ndarray | None = None

    def fit(
        self,
        train_data,
        *,
        progress: bool | None = None,
        logging_dir: str | Path | None = None,
    ) -> LinearRegression:
        """Solve the ridge problem on every training window; ``history`` gets one row, the training MSE
        (scaled glucose) as ``loss``, also written to TensorBoard in ``logging_dir`` (default: the config's)."""
        cfg = self.config
        series = self._prepare(train_data, fit=True)
        check_lengths(series, cfg.context_length + cfg.forecast_length, "training")
        starts, x = self._contexts(
            series, cfg.train_stride, full_future=True, train=True
        )
        y = np.concatenate(
            [
                s.values[
                    st[:, None] + cfg.context_length + np.arange(cfg.forecast_length), 0
                ]
                for s, st in zip(series.values(), starts, strict=True)
            ]
        )
        if not len(x):
            raise ValueError("no training window with a reading in its context")
        x1 = np.hstack([x, np.ones((len(x), 1))])
        # each horizon is solved on the windows where its target was observed
        seen = ~np.isnan(y)
        penalty = self.alpha * np.eye(x1.shape[1])
        penalty[-1, -1] = 0.0  # the intercept is not shrunk
        try:
            self.coef = np.stack(
                [
                    np.linalg.solve(
                        x1[seen[:, h]].T @ x1[seen[:, h]] + penalty,
                        x1[seen[:, h]].T @ y[seen[:, h], h],
                    )
                    for h in range(cfg.forecast_length)
                ],
                axis=1,
            )
        except np.linalg.LinAlgError:
            raise ValueError(
                f"LinearRegression(alpha={self.alpha:g}): the normal equations "
                f"are singular ({len(x)} training windows for "
                f"{cfg.context_length} context steps, or constant contexts); "
                "use alpha > 0 or more data"
            ) from None
        self.history = []
        logging_dir = cfg.logging_dir if logging_dir is None else logging_dir
        with TrainingLog(self.history, logging_dir or None) as log:
            log(1, loss=float(np.nanmean((x1 @ self.coef - y) ** 2)))
        return self

    def _check_fitted(self) -> None:
        if self.coef is None:
            raise RuntimeError("LinearRegression is not fitted: call fit() first")

    def _forecast(self, contexts: np.ndarray) -> np.ndarray:
        return np.hstack([contexts, np.ones((len(contexts), 1))]) @ self.coef

    def _tensors(self) -> dict[str, torch.Tensor]:
        self._check_fitted()
        return {"coef": torch.from_numpy(self.coef)}

    def _load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        if set(tensors) != {"coef"}:
            raise KeyError(
                f"LinearRegression keeps one tensor, 'coef'; got {sorted(tensors)[:5]}"
            )
        self.coef = tensors["coef"].cpu().numpy()

    def _state(self) -> dict:
        return {**super()._state(), "alpha": self.alpha}

    @classmethod
    def _build(cls, config: TTMConfig, state: dict, device: str) -> LinearRegression:
        return cls(config, device, alpha=state["alpha"])

"""Min-max scaling per feature, with its inverse (the TimeGAN normaliser)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .validation import as_float_array

EPS = 1e-7  # TimeGAN's guard against a constant feature


@dataclass
class MinMaxScaler:
    """Scale each feature (the last axis) to [0, 1]; NaN values are ignored and kept.

    Fit on training data only, then apply the same transform to validation and
    test data; :meth:`inverse_transform` maps model outputs back to the
    original units. ``to_dict`` / ``from_dict`` give a JSON-friendly state.

    ``fit`` takes ``[length, features]`` or ``[n, length, features]``: a 1-D
    array is refused rather than read as one time step of many features (each
    would scale to 0); pass one series as ``x[:, None]``. ``transform`` and
    ``inverse_transform`` refuse inf, which would come back as inf or NaN.
    """

    min_: np.ndarray | None = None
    max_: np.ndarray | None = None

    def fit(self, x) -> MinMaxScaler:
        arr = np.asarray(x, dtype=float)
        if arr.ndim == 1:
            raise ValueError(
                f"MinMaxScaler.fit: x is 1-D (shape {arr.shape}), which would be "
                "one time step of many features; pass one series as x[:, None] "
                "([length, 1])"
            )
        arr = as_float_array(arr, "x", ndim=(2, 3))
        flat = arr.reshape(-1, arr.shape[-1])
        unseen = np.isnan(flat).all(axis=0)
        if unseen.any():
            raise ValueError(
                f"feature(s) {np.flatnonzero(unseen).tolist()} "
                "have no observed value to fit on"
            )
        self.min_ = np.nanmin(flat, axis=0)
        self.max_ = np.nanmax(flat, axis=0)
        return self

    def _check_fitted(self, arr: np.ndarray, name: str) -> None:
        if self.min_ is None:
            raise RuntimeError("MinMaxScaler is not fitted: call fit() first")
        if np.isinf(arr).any():
            raise ValueError(
                f"MinMaxScaler.{name}: x holds {int(np.isinf(arr).sum())} infinite "
                "value(s); use NaN for missing values"
            )
        if arr.shape[-1] != self.min_.shape[0]:
            raise ValueError(
                f"expected {self.min_.shape[0]} features "
                f"(last axis); got shape {arr.shape}"
            )

    def transform(self, x) -> np.ndarray:
        arr = np.asarray(x, dtype=float)
        self._check_fitted(arr, "transform")
        return (arr - self.min_) / (self.max_ - self.min_ + EPS)

    def inverse_transform(self, x) -> np.ndarray:
        arr = np.asarray(x, dtype=float)
        self._check_fitted(arr, "inverse_transform")
        return arr * (self.max_ - self.min_ + EPS) + self.min_

    def fit_transform(self, x) -> np.ndarray:
        return self.fit(x).transform(x)

    def to_dict(self) -> dict:
        return {"min": self.min_.tolist(), "max": self.max_.tolist()}

    @classmethod
    def from_dict(cls, state: dict) -> MinMaxScaler:
        return cls(
            np.asarray(state["min"], dtype=float), np.asarray(state["max"], dtype=float)
        )

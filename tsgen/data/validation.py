"""Input checks shared by the data functions: fail early, name the problem."""

from __future__ import annotations

import numpy as np


def as_float_array(x, name: str = "X", ndim: int | tuple[int, ...] = 3) -> np.ndarray:
    """Return ``x`` as a float array after checking its rank and values.

    NaN marks a missing value and is allowed; +/-inf is not, and neither is a
    sample (the first axis of a 3-D array) with no observed value at all.
    """
    arr = np.asarray(x, dtype=float)
    ranks = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in ranks:
        layout = {
            1: "[length]",
            2: "[length, features]",
            3: "[n_samples, length, features]",
        }
        wanted = " or ".join(f"{r}-D {layout.get(r, '')}".strip() for r in ranks)
        raise ValueError(
            f"{name} must be {wanted}; got a {arr.ndim}-D array of shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if np.isinf(arr).any():
        n_inf = int(np.isinf(arr).sum())
        raise ValueError(
            f"{name} holds {n_inf} infinite value(s); use NaN for missing values"
        )
    if arr.ndim == 3:
        all_nan = np.isnan(arr).all(axis=(1, 2))
        if all_nan.any():
            idx = np.flatnonzero(all_nan)
            raise ValueError(
                f"{name} has {idx.size} all-NaN window(s) (first at index {idx[0]}): "
                "a window with no observed value cannot be used"
            )
    elif np.isnan(arr).all():
        raise ValueError(f"{name} is all NaN: there is no observed value")
    return arr


def check_rate(rate: float, name: str = "rate") -> float:
    """A missing rate must lie in [0, 1): removing everything leaves nothing to learn from."""
    rate = float(rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{name} must be in [0, 1); got {rate}")
    return rate

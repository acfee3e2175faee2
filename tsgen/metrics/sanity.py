"""Controlled distortions of a batch of series, to check that a metric moves the right way.

Each takes ``[n, length, features]`` and an ``amount`` where 0 leaves the
series unchanged and larger is further from the original:

* ``shift``: add ``amount`` to every value (a level offset);
* ``smooth``: a centred moving average over ``2 * amount + 1`` steps (edges
  repeated), which removes the fast part of each series;
* ``frequency``: stretch time by ``1 / (1 - amount)`` around the window's start,
  ``amount`` in [0, 1), read off the series by linear interpolation: the
  window shows a slower (lower-frequency) slice of the same series;
* ``noise``: add Gaussian noise of standard deviation ``amount``.
"""

from __future__ import annotations

import numpy as np

from ..config import number
from ..runtime import numpy_rng
from .base import check_series

DISTORTIONS = ("shift", "smooth", "frequency", "noise")


def distort(x, kind: str, amount: float, seed: int = 0) -> np.ndarray:
    """``x`` distorted by ``kind`` at strength ``amount`` (see the module docstring).

    ``amount`` must be a finite number >= 0: NaN or inf would return a batch
    of NaN or inf, which no metric can score.
    """
    x = check_series(x, "x").astype(np.float64)
    if kind not in DISTORTIONS:
        raise ValueError(f"unknown distortion {kind!r}; choose one of {DISTORTIONS}")
    amount = number(amount, "amount", minimum=0)
    if kind == "shift":
        return x + amount
    if kind == "noise":
        return x + numpy_rng(seed).normal(0.0, amount, x.shape)
    if kind == "smooth":
        half = int(amount)
        if half != amount:
            raise ValueError(f"smooth takes a whole number of steps; got {amount}")
        padded = np.concatenate(
            [np.repeat(x[:, :1], half, 1), x, np.repeat(x[:, -1:], half, 1)], axis=1
        )
        cumsum = np.concatenate(
            [np.zeros_like(x[:, :1]), np.cumsum(padded, axis=1)], axis=1
        )
        width = 2 * half + 1
        return (cumsum[:, width:] - cumsum[:, :-width]) / width
    if not amount < 1:
        raise ValueError(f"frequency takes an amount in [0, 1); got {amount}")
    length = x.shape[1]
    t_new = np.arange(length) * (1 - amount)
    lo = np.floor(t_new).astype(int)
    hi = np.minimum(lo + 1, length - 1)
    w = (t_new - lo)[None, :, None]
    return (1 - w) * x[:, lo] + w * x[:, hi]

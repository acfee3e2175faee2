"""Sliding windows and time-ordered splits."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .validation import as_float_array

SPLITS = ("train", "val", "test")


def _as_series(series) -> np.ndarray:
    arr = as_float_array(series, "series", ndim=(1, 2))
    return arr[:, None] if arr.ndim == 1 else arr


def sliding_windows(series, length: int, stride: int = 1) -> np.ndarray:
    """Cut a series ``[time, features]`` into windows ``[n, length, features]``.

    Windows start every ``stride`` steps; a tail shorter than ``length`` is dropped.
    """
    arr = _as_series(series)
    if int(length) != length or length < 1:
        raise ValueError(f"window length must be a positive integer; got {length!r}")
    if int(stride) != stride or stride < 1:
        raise ValueError(f"stride must be a positive integer; got {stride!r}")
    if length > arr.shape[0]:
        raise ValueError(
            f"window length {length} is longer than "
            f"the series ({arr.shape[0]} time steps)"
        )
    # sliding_window_view appends the window axis last: [n, features, length]
    view = sliding_window_view(arr, int(length), axis=0)[:: int(stride)]
    return np.ascontiguousarray(view.transpose(0, 2, 1))


def split_by_time(series, fractions=(0.7, 0.1, 0.2)) -> dict[str, np.ndarray]:
    """Split a series ``[time, features]`` into consecutive train/val/test segments."""
    arr = _as_series(series)
    fractions = np.asarray(fractions, dtype=float)
    if (
        fractions.shape != (3,)
        or (fractions < 0).any()
        or not np.isclose(fractions.sum(), 1.0)
    ):
        raise ValueError(
            "fractions must be three non-negative numbers "
            f"summing to 1; got {fractions.tolist()}"
        )
    bounds = np.round(np.cumsum(fractions) * arr.shape[0]).astype(int)
    starts = np.concatenate([[0], bounds[:-1]])
    return {name: arr[a:b] for name, a, b in zip(SPLITS, starts, bounds, strict=True)}


def windowed_splits(
    series, length: int, stride: int = 1, fractions=(0.7, 0.1, 0.2)
) -> dict[str, np.ndarray]:
    """Split in time order first, then window each segment.

    No test window shares a time step with a training or validation window, so
    scores on ``test`` are not inflated by overlap with what the model saw.
    """
    segments = split_by_time(series, fractions)
    out = {}
    for name, segment in segments.items():
        if segment.shape[0] < length:
            raise ValueError(
                f"the {name} segment has {segment.shape[0]} time steps, fewer than "
                f"the window length {length}; use shorter windows or a larger fraction"
            )
        out[name] = sliding_windows(segment, length, stride)
    return out

"""Sines with a known distribution shift, for testing adaptation."""

from __future__ import annotations

import numpy as np


def shifted_sines(
    n_samples: int = 1000,
    length: int = 24,
    n_features: int = 5,
    *,
    freq_range=(0.0, 0.1),
    phase_range=(0.0, 0.1),
    level: float = 0.0,
    scale: float = 1.0,
    seed: int | None = 0,
) -> np.ndarray:
    """``tsgen.data.make_sines`` with its frequency and phase ranges and an affine shift as options.

    Each channel is ``level + scale * (sin(f t + p) + 1) / 2`` with
    ``f ~ U(freq_range)`` and ``p ~ U(phase_range)``. At the defaults it returns
    exactly ``make_sines(n_samples, length, n_features, seed)`` (same draws in the
    same order), so a shifted test set differs from the training recipe only in
    what is asked for. Shape ``[n_samples, length, n_features]``.
    """
    for name, value in (
        ("n_samples", n_samples),
        ("length", length),
        ("n_features", n_features),
    ):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    for name, (lo, hi) in (("freq_range", freq_range), ("phase_range", phase_range)):
        if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
            raise ValueError(
                f"{name} must be a finite (low, high) with low <= high; got {(lo, hi)}"
            )
    if not (np.isfinite(level) and np.isfinite(scale) and scale > 0):
        raise ValueError(
            f"level must be finite and scale positive; got level={level}, scale={scale}"
        )
    rng = np.random.default_rng(seed)
    freq = rng.uniform(*freq_range, size=(n_samples, 1, n_features))
    phase = rng.uniform(*phase_range, size=(n_samples, 1, n_features))
    t = np.arange(length, dtype=float)[None, :, None]
    return level + scale * (np.sin(freq * t + phase) + 1.0) * 0.5

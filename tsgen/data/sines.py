"""Synthetic sines, the TimeGAN recipe (Yoon et al. 2019)."""

from __future__ import annotations

import numpy as np

from ..runtime import numpy_rng


def make_sines(
    n_samples: int = 1000, length: int = 24, n_features: int = 5, seed: int = 0
) -> np.ndarray:
    """Independent sine channels with random frequency and phase, in [0, 1].

    Each channel of each sample is ``sin(f * t + p)`` for ``t = 0..length-1``
    with ``f, p ~ U(0, 0.1)``, then mapped from [-1, 1] to [0, 1] as TimeGAN does.

    Returns an array of shape ``[n_samples, length, n_features]``.
    """
    for name, value in (
        ("n_samples", n_samples),
        ("length", length),
        ("n_features", n_features),
    ):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer; got {value!r}")
    rng = numpy_rng(seed)
    freq = rng.uniform(0.0, 0.1, size=(n_samples, 1, n_features))
    phase = rng.uniform(0.0, 0.1, size=(n_samples, 1, n_features))
    t = np.arange(length, dtype=float)[None, :, None]
    return (np.sin(freq * t + phase) + 1.0) * 0.5

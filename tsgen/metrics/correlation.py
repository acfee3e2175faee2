"""Correlation score (Diffusion-TS, Yuan & Qiao 2024): do generated series keep the cross-feature correlations?

Diffusion-TS (``Utils/cross_correlation.py``, after Ni et al.'s
signature-based metrics) standardises every feature over all series and time
steps of a set, averages the products of each feature pair (the lower triangle
of the correlation matrix, diagonal included) over time and series, and scores

    score = sum over pairs |corr_fake - corr_real| / 10.

Its function ``cacf_torch`` takes a maximum lag, and the metric calls it with
``max_lag=1``, whose loop covers lag 0 only: the published score compares
*contemporaneous* cross-correlations. We follow the published code; ``lag=1``
here is that setting, ``lags`` > 1 adds lagged terms for those who want them.
Evaluation as in their scripts: each repeat scores a random subset of
``len(real) // repeats`` series of each set (without replacement).
Lower is better; identical sets score 0.
"""

from __future__ import annotations

import numpy as np

from ..runtime import numpy_rng
from .base import MetricResult, check_count, check_pair, repeat


def cross_correlations(x: np.ndarray, lags: int = 1) -> np.ndarray:
    """Mean products of standardised feature pairs at lags ``0 .. lags-1``: ``[lags, n_pairs]``."""
    # torch's default (unbiased), as in the reference
    std = x.std(axis=(0, 1), ddof=1, keepdims=True)
    flat = np.flatnonzero(std.ravel() == 0)
    if flat.size:
        raise ValueError(
            f"feature(s) {flat.tolist()} are constant: their correlation is undefined"
        )
    z = (x - x.mean(axis=(0, 1), keepdims=True)) / std
    n, length, features = x.shape
    left, right = np.tril_indices(features)
    out = []
    for lag in range(lags):
        # the mean over series and time of z_i(t + lag) z_j(t) for every pair (i, j),
        # as one matrix product: memory of one copy of z, not of every pair's product
        later = z[:, lag:].reshape(-1, features)
        earlier = z[:, : length - lag].reshape(-1, features)
        out.append((later.T @ earlier / len(later))[left, right])
    return np.stack(out)


def correlation_distance(real, fake, lags: int = 1) -> float:
    """One evaluation of the correlation score on whole sets (no subsampling)."""
    real, fake = check_pair(real, fake, min_length=lags)
    real, fake = real.astype(np.float64), fake.astype(np.float64)
    return float(
        np.abs(cross_correlations(fake, lags) - cross_correlations(real, lags)).sum()
        / 10
    )


def correlation_score(
    real,
    fake,
    seed: int = 0,
    device: str = "cpu",
    repeats: int = 5,
    lags: int = 1,
    sample_size: int | None = None,
) -> MetricResult:
    """Diffusion-TS's correlation score (lower is better), over ``repeats`` random subsets.

    ``sample_size=None`` uses ``len(real) // repeats`` series per subset, the
    published evaluation; with ``repeats=1`` that is the whole real set.
    ``device`` is accepted for a uniform signature; the computation is NumPy.
    """
    real, fake = check_pair(real, fake, min_length=check_count(lags, "lags"))
    repeats = check_count(repeats, "repeats")
    size = (
        len(real) // repeats
        if sample_size is None
        else check_count(sample_size, "sample_size")
    )
    if size < 2 or size > min(len(real), len(fake)):
        raise ValueError(
            f"subsets of {size} series do not fit: need 2 <= size <= "
            f"min(len(real), len(fake)) = {min(len(real), len(fake))}"
        )

    def run_once(s, _device):
        rng = numpy_rng(s)
        r = real[rng.choice(len(real), size, replace=False)]
        f = fake[rng.choice(len(fake), size, replace=False)]
        return correlation_distance(r, f, lags)

    return repeat("correlation score", run_once, repeats, seed, device)

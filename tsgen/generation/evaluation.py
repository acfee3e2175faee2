"""The four generation metrics of one generated set, as one table row."""

from __future__ import annotations

import numpy as np

from ..data import make_sines, timegan_windows
from ..metrics import ContextFID, correlation_score, discriminative_score, predictive_score

METRICS = ("discriminative", "predictive", "context_fid", "correlation")
DATASETS = ("sines", "stock", "energy")


def benchmark_windows(name: str, length: int = 24, n_windows: int = 0, seed: int = 0) -> np.ndarray:
    """Complete windows ``[n, length, features]`` in [0, 1] of a generation benchmark.

    ``sines``: ``make_sines`` with five channels (10,000 windows when
    ``n_windows`` is 0); ``stock`` / ``energy``: the TimeGAN windows (stride 1,
    scaled over the whole series). ``n_windows > 0`` keeps a random subset,
    in time order.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {DATASETS}")
    if name == "sines":
        windows = make_sines(n_windows or 10000, length=length, n_features=5, seed=seed)
    else:
        windows = timegan_windows(name, length)[0]
    if n_windows > len(windows):
        raise ValueError(f"{name} has {len(windows)} windows of length {length}; asked for {n_windows}")
    keep = np.random.default_rng(seed).permutation(len(windows))[: n_windows or len(windows)]
    return windows[np.sort(keep)].astype(np.float32)


def generation_scores(real, fake, seed: int = 0, device: str = "cpu", disc_iterations: int = 2000,
                      pred_iterations: int = 5000, ts2vec_iterations: int | None = None, repeats: int = 5,
                      context: ContextFID | None = None) -> dict:
    """``{metric: MetricResult}`` for ``fake`` against the complete ``real`` windows.

    The iteration counts default to the published protocols. Pass a
    :class:`~tsgen.metrics.ContextFID` built on ``real`` to reuse its TS2Vec
    encoders across several generated sets.
    """
    if context is None:
        context = ContextFID(real, seed=seed, device=device, iterations=ts2vec_iterations, repeats=repeats)
    return {
        "discriminative": discriminative_score(real, fake, seed=seed, device=device, iterations=disc_iterations,
                                               repeats=repeats),
        "predictive": predictive_score(real, fake, seed=seed, device=device, iterations=pred_iterations,
                                       repeats=repeats),
        "context_fid": context(fake),
        "correlation": correlation_score(real, fake, seed=seed, repeats=repeats),
    }


def score_columns(scores: dict) -> dict:
    """Flatten ``{metric: MetricResult}`` to ``{metric: mean, metric_std: std}`` columns."""
    row = {}
    for name, result in scores.items():
        mean, std = result
        row[name], row[f"{name}_std"] = float(mean), float(std)
    return row

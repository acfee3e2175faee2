"""Missingness patterns, returned in the PyPOTS dict format.

Four patterns, all drawn from a seed so a chapter is reproducible:

``point``     each value is removed independently (MCAR, ``pygrinder.mcar``);
``timestep``  whole time steps are removed, every feature at once, a fixed
              number per sample: the irregular-sampling protocol of the
              irregular-to-regular generation paper;
``sequence``  runs of ``seq_len`` consecutive values of one feature
              (``pygrinder.seq_missing``);
``block``     ``block_len`` steps × ``block_width`` adjacent features
              (``pygrinder.block_missing``).

``rate`` is the fraction of the *observed* entries that are removed. pygrinder's
sequence and block generators overlap their runs, so one call removes less than
asked; :func:`add_missingness` tops them up with further runs until the removed
fraction is within ``RATE_TOLERANCE`` of ``rate``.
"""

from __future__ import annotations

import numpy as np
import pygrinder

from ..runtime import check_seed, numpy_rng, quiet, seeded
from .validation import as_float_array, check_rate

PATTERNS = ("point", "timestep", "sequence", "block")
RATE_TOLERANCE = 0.01
_MAX_TOP_UPS = 50
# pygrinder logs "hit_rate > 1" through TSDB's
# logger whenever a top-up asks for many runs
_PYGRINDER_LOGGER = "TSDB running log"


def _removed_fraction(x_ori: np.ndarray, x: np.ndarray) -> float:
    observed = ~np.isnan(x_ori)
    return float((observed & np.isnan(x)).sum() / observed.sum())


def _top_up(x: np.ndarray, rate: float, draw) -> np.ndarray:
    """Call ``draw(x, fraction)`` until about ``rate`` of the observed entries are gone."""
    out = x
    for _ in range(_MAX_TOP_UPS):
        gap = rate - _removed_fraction(x, out)
        if gap <= RATE_TOLERANCE / 2:
            break
        out = draw(out, gap)
    return out


def _mask_timestep(x: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    n, length, _ = x.shape
    n_drop = int(round(rate * length))
    # argsort of uniform noise = an independent random permutation per sample
    dropped = np.argsort(rng.random((n, length)), axis=1)[:, :n_drop]
    out = x.copy()
    out[np.arange(n)[:, None], dropped, :] = np.nan
    return out


def add_missingness(
    X,
    pattern: str = "point",
    rate: float = 0.3,
    seed: int = 0,
    seq_len: int = 4,
    block_len: int = 4,
    block_width: int = 2,
    allow_empty: bool = False,
) -> dict[str, np.ndarray]:
    """Remove values from ``X`` ``[n_samples, length, features]`` with one pattern.

    Returns the PyPOTS dict: ``X`` (with NaN where a value is missing), ``X_ori``
    (the input, with its own NaN if it had any), ``missing_mask`` (1 where ``X``
    is observed) and ``indicating_mask`` (1 where a value was removed here, so
    it can be used to score an imputation).

    A window left with no observed value is an error (a high rate on short or
    univariate windows); ``allow_empty=True`` returns it instead, for a caller
    that sets such windows aside (they carry nothing to impute from).

    pygrinder draws from NumPy's global generator: it runs inside
    :func:`tsgen.runtime.seeded`, so the caller's global state is left as it was.
    """
    x_ori = as_float_array(X, "X", ndim=3)
    seed = check_seed(seed)
    rate = check_rate(rate)
    if pattern not in PATTERNS:
        raise ValueError(
            f"unknown missingness pattern {pattern!r}; choose one of {PATTERNS}"
        )
    n, length, n_features = x_ori.shape
    if pattern == "sequence" and not 1 <= seq_len <= length:
        raise ValueError(
            f"seq_len must be in [1, {length}] (the window length); got {seq_len}"
        )
    if pattern == "block":
        if not 1 <= block_len <= length:
            raise ValueError(
                f"block_len must be in [1, {length}] "
                f"(the window length); got {block_len}"
            )
        if not 1 <= block_width <= n_features:
            raise ValueError(
                f"block_width must be in [1, {n_features}] "
                f"(the number of features); got {block_width}"
            )

    if rate == 0.0:
        x = x_ori.copy()
    elif pattern == "timestep":
        x = _mask_timestep(x_ori, rate, numpy_rng(seed))
    else:
        with seeded(seed), quiet(loggers=[_PYGRINDER_LOGGER]):
            if pattern == "point":
                x = pygrinder.mcar(x_ori, rate)
            elif pattern == "sequence":
                x = _top_up(
                    x_ori,
                    rate,
                    lambda x, gap: pygrinder.seq_missing(x, gap, int(seq_len)),
                )
            else:
                # pygrinder starts blocks at (features - width + 1) positions, each
                # covering `factor` of the entries: divide so `gap` is the fraction
                starts = n_features - block_width + 1
                x = _top_up(
                    x_ori,
                    rate,
                    lambda x, gap: pygrinder.block_missing(
                        x, gap / starts, int(block_len), int(block_width)
                    ),
                )

    missing_mask = (~np.isnan(x)).astype(np.float32)
    indicating_mask = (np.isnan(x) & ~np.isnan(x_ori)).astype(np.float32)
    if not allow_empty and (missing_mask.sum(axis=(1, 2)) == 0).any():
        raise ValueError(
            f"pattern {pattern!r} at rate {rate} removed every value of "
            "at least one window; lower the rate or use longer windows"
        )
    return {
        "X": x,
        "X_ori": x_ori,
        "missing_mask": missing_mask,
        "indicating_mask": indicating_mask,
    }


def missingness_by_pattern(
    x, rate: float, seed: int = 0, patterns: tuple[str, ...] = PATTERNS
) -> dict[str, dict]:
    """:func:`add_missingness` of ``x`` with each pattern at one ``rate`` (one seed for all)."""
    return {
        pattern: add_missingness(x, pattern, rate, seed=seed) for pattern in patterns
    }


def missing_rate(x) -> float:
    """Fraction of entries of ``x`` that are NaN."""
    return float(np.isnan(np.asarray(x, dtype=float)).mean())

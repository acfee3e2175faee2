"""Tables that describe data: sets of windows, and what each missingness pattern removes.

Both return one row per set or per (pattern, rate), so a chapter prints or
plots them without looping over data sets or patterns itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from .missing import PATTERNS, add_missingness
from .validation import as_float_array


def window_summary(
    windows: Mapping[str, np.ndarray], label: str = "dataset"
) -> pd.DataFrame:
    """One row per named array of windows ``[n, length, features]``: its shape and its min, max and mean.

    NaN (missing) values are left out of the statistics. ``label`` names the
    first column (the mapping's keys).
    """
    rows = []
    for name, w in windows.items():
        w = as_float_array(w, str(name), ndim=3)
        rows.append(
            {
                label: name,
                "windows": w.shape[0],
                "length": w.shape[1],
                "features": w.shape[2],
                "min": np.nanmin(w),
                "max": np.nanmax(w),
                "mean": np.nanmean(w),
            }
        )
    return pd.DataFrame(rows)


def missingness_summary(
    x, rates: Iterable[float], seed: int = 0, patterns: Iterable[str] = PATTERNS
) -> pd.DataFrame:
    """One row per pattern and target rate: the realized missing rate of ``x`` and its spread over windows.

    Columns: ``pattern``, ``target``, ``realized`` (fraction of all values
    missing), ``std over windows`` (standard deviation of the windows' own
    missing rates) and ``masks match NaNs`` (``missing_mask`` is 1 exactly where
    ``X`` is observed).
    """
    rows = []
    for pattern in patterns:
        for rate in rates:
            d = add_missingness(x, pattern, rate, seed=seed)
            missing = np.isnan(d["X"])
            rows.append(
                {
                    "pattern": pattern,
                    "target": float(rate),
                    "realized": missing.mean(),
                    "std over windows": missing.mean(axis=(1, 2)).std(),
                    "masks match NaNs": bool((d["missing_mask"] == ~missing).all()),
                }
            )
    return pd.DataFrame(rows)

"""Tables of results over repetitions: numeric mean and std, and the one "mean ± std" text format."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def mean_std(values, digits: int = 3) -> str:
    """``"mean ± std"`` of the non-missing ``values`` (sample std; ``± 0`` for one value; ``—`` for none)."""
    values = pd.Series(values, dtype=float).dropna()
    if values.empty:
        return "—"
    std = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():.{digits}f} ± {std:.{digits}f}"


def format_mean_std(mean, std, digits: int = 3) -> str:
    """``"mean ± std"`` from a mean and a std already computed (``—`` when the mean is missing)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    std = 0.0 if std is None or (isinstance(std, float) and math.isnan(std)) else std
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def summarize(
    frame: pd.DataFrame, by, columns, digits: int | None = None
) -> pd.DataFrame:
    """Group ``frame`` (one row per repetition) by ``by`` and give each column's mean and std.

    Returns the numeric table (columns ``"<col> mean"``, ``"<col> std"``) when
    ``digits`` is None, else one ``"mean ± std"`` text column per column.
    Groups keep their order of first appearance.
    """
    by, columns = list(np.atleast_1d(by)), list(np.atleast_1d(columns))
    grouped = frame.groupby(by, sort=False)[columns]
    if digits is not None:
        return grouped.agg(lambda v: mean_std(v, digits)).reset_index()
    stats = grouped.agg(["mean", lambda v: v.std(ddof=1) if v.count() > 1 else 0.0])
    stats.columns = [
        f"{col} {'mean' if stat == 'mean' else 'std'}" for col, stat in stats.columns
    ]
    return stats.reset_index()

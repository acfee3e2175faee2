"""Clinical accuracy of glucose forecasts: errors at horizons, MARD, Clarke error grid, time in range.

Glucose is in mg/dL unless a name says mmol/L (1 mmol/L = 18.016 mg/dL).
Forecast tables follow :mod:`tsgen.forecasting`: one row per (patient,
origin, horizon) with the horizon in ``horizon_min``, the forecast in
``bg_mgdl`` and the observed value in ``bg_mgdl_true``.

The Clarke error grid (Clarke et al., Diabetes Care 1987) sorts each
(reference, prediction) pair into zones: A within 20 % (or both below 70
mg/dL), B outside 20 % but benign, C overcorrection, D failure to detect
hypo- or hyperglycaemia, E treatment in the wrong direction. The zone
boundaries here are the published ones, as commonly coded.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MGDL_PER_MMOL = 18.016
ZONES = ("A", "B", "C", "D", "E")


def _check_mgdl(values: np.ndarray, name: str) -> None:
    """Glucose in mg/dL: no negative value, and not all below 30 (that is mmol/L)."""
    if (values < 0).any():
        raise ValueError(
            f"{name}: negative glucose values ({values.min():g}); glucose is >= 0 mg/dL"
        )
    if values.size and values.max() < 30:
        raise ValueError(
            f"{name}: every value is below 30, which looks like mmol/L; "
            f"this function takes mg/dL (multiply by {MGDL_PER_MMOL})"
        )


def _pair(y_true, y_pred, name: str = "glucose") -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=float).ravel()
    p = np.asarray(y_pred, dtype=float).ravel()
    if t.shape != p.shape:
        raise ValueError(
            f"{name}: reference and prediction differ in size ({t.size} vs {p.size})"
        )
    if t.size == 0:
        raise ValueError(f"{name}: no values to score")
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise ValueError(
            f"{name}: NaN or infinite values; drop unobserved targets before scoring"
        )
    return t, p


def rmse(y_true, y_pred) -> float:
    t, p = _pair(y_true, y_pred, "rmse")
    return float(np.sqrt(np.mean((p - t) ** 2)))


def mae(y_true, y_pred) -> float:
    t, p = _pair(y_true, y_pred, "mae")
    return float(np.mean(np.abs(p - t)))


def mard(y_true, y_pred) -> float:
    """Mean absolute relative difference, in percent of the reference."""
    t, p = _pair(y_true, y_pred, "mard")
    if (t <= 0).any():
        raise ValueError("mard: reference glucose must be positive")
    return float(100 * np.mean(np.abs(p - t) / t))


def clarke_zones(reference, prediction) -> np.ndarray:
    """The Clarke error grid zone ('A'..'E') of each (reference, prediction) pair, both in mg/dL.

    The reference must be glucose in mg/dL. A negative prediction (a linear
    model can forecast one) is a forecast of severe hypoglycaemia and is zoned
    as 0 mg/dL, the grid's edge, rather than stopping the scoring of a model.
    """
    r, p = _pair(reference, prediction, "clarke_zones")
    _check_mgdl(r, "clarke_zones reference")
    p = np.maximum(p, 0.0)
    zone_a = ((r <= 70) & (p <= 70)) | ((p <= 1.2 * r) & (p >= 0.8 * r))
    zone_e = ((r >= 180) & (p <= 70)) | ((r <= 70) & (p >= 180))
    zone_c = ((r >= 70) & (r <= 290) & (p >= r + 110)) | (
        (r >= 130) & (r <= 180) & (p <= 7 / 5 * r - 182)
    )
    zone_d = (
        ((r >= 240) & (p >= 70) & (p <= 180))
        | ((r <= 175 / 3) & (p <= 180) & (p >= 70))
        | ((r >= 175 / 3) & (r <= 70) & (p >= 6 / 5 * r))
    )
    # Precedence as in the published grid: A, then E, C, D; everything else is B.
    return np.select(
        [zone_a, zone_e, zone_c, zone_d], ["A", "E", "C", "D"], default="B"
    )


def clarke_shares(reference, prediction) -> dict[str, float]:
    """The fraction of pairs in each Clarke zone A..E (they sum to 1)."""
    zones = clarke_zones(reference, prediction)
    return {z: float(np.mean(zones == z)) for z in ZONES}


def time_in_range(
    glucose_mgdl, low: float = 70.0, high: float = 180.0
) -> dict[str, float]:
    """Fractions of readings below ``low``, within [low, high] and above ``high`` (NaN readings ignored)."""
    if not (np.isfinite(low) and np.isfinite(high)) or low >= high:
        raise ValueError(
            f"time_in_range: need finite low < high; got low={low!r}, high={high!r}"
        )
    g = np.asarray(glucose_mgdl, dtype=float).ravel()
    if np.isinf(g).any():
        raise ValueError("time_in_range: infinite glucose values")
    g = g[~np.isnan(g)]
    if g.size == 0:
        raise ValueError("time_in_range: no observed glucose value")
    _check_mgdl(g, "time_in_range")
    return {
        "below": float(np.mean(g < low)),
        "in range": float(np.mean((g >= low) & (g <= high))),
        "above": float(np.mean(g > high)),
    }


def horizon_metrics(
    forecasts: pd.DataFrame,
    horizons=(30, 60),
    pred_col: str = "bg_mgdl",
    true_col: str = "bg_mgdl_true",
    horizon_col: str = "horizon_min",
) -> pd.DataFrame:
    """RMSE and MAE (mg/dL and mmol/L), MARD and Clarke zone shares at each horizon in minutes.

    Rows whose observed value is missing are left out (they cannot be scored).
    """
    missing = [
        c for c in (pred_col, true_col, horizon_col) if c not in forecasts.columns
    ]
    if missing:
        raise ValueError(
            f"forecast table lacks column(s) {missing}; "
            f"it has {list(forecasts.columns)}"
        )
    rows = {}
    for h in horizons:
        at = forecasts[(forecasts[horizon_col] == h) & forecasts[true_col].notna()]
        if at.empty:
            raise ValueError(
                f"no scorable forecast at horizon {h} min (available: "
                f"{sorted(forecasts[horizon_col].unique())})"
            )
        t, p = at[true_col].to_numpy(), at[pred_col].to_numpy()
        rows[h] = {
            "RMSE mg/dL": rmse(t, p),
            "MAE mg/dL": mae(t, p),
            "RMSE mmol/L": rmse(t, p) / MGDL_PER_MMOL,
            "MAE mmol/L": mae(t, p) / MGDL_PER_MMOL,
            "MARD %": mard(t, p),
            **{f"zone {z}": s for z, s in clarke_shares(t, p).items()},
            "n": len(at),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "horizon (min)"
    return table


def glucobench_errors(
    forecasts: pd.DataFrame,
    horizon_min: int = 60,
    pred_col: str = "bg_mgdl",
    true_col: str = "bg_mgdl_true",
) -> dict[str, float]:
    """GlucoBench's reported accuracy (Sergazinov et al. 2023): per forecast, the MSE and MAE over its
    steps up to ``horizon_min`` (12 steps of 5 minutes), in mg/dL; then the median over forecasts.

    Returns ``{"GlucoBench RMSE mg/dL": sqrt(median MSE), "GlucoBench MAE mg/dL":
    median MAE, "forecasts": n}``: the two numbers of GlucoBench's tables (its
    ``output/summarize.ipynb`` takes the square root of the median MSE).
    Steps whose reading is missing are left out of a forecast's errors
    (GlucoBench interpolated them); a forecast with no observed step is left out.
    """
    at = forecasts[
        (forecasts["horizon_min"] <= horizon_min) & forecasts[true_col].notna()
    ]
    if at.empty:
        raise ValueError(f"no scorable forecast up to {horizon_min} min")
    err = at[pred_col] - at[true_col]
    keys = [at["p_num"], at["origin"]]
    mse = (err**2).groupby(keys).mean()
    mae = err.abs().groupby(keys).mean()
    return {
        "GlucoBench RMSE mg/dL": float(np.sqrt(mse.median())),
        "GlucoBench MAE mg/dL": float(mae.median()),
        "forecasts": int(len(mse)),
    }


def plot_clarke(
    reference, prediction, ax=None, title: str = "Clarke error grid", **scatter_kw
):
    """Scatter (reference, prediction) in mg/dL over the Clarke error grid; returns the axes."""
    import matplotlib.pyplot as plt

    r, p = _pair(reference, prediction, "plot_clarke")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(
        r, p, s=scatter_kw.pop("s", 4), alpha=scatter_kw.pop("alpha", 0.4), **scatter_kw
    )
    ax.plot([0, 400], [0, 400], ":", color="grey", lw=1)
    boundaries = [
        ([0, 175 / 3], [70, 70]),
        ([175 / 3, 400 / 1.2], [70, 400]),
        ([70, 70], [84, 400]),
        ([0, 70], [180, 180]),
        ([70, 290], [180, 400]),
        ([70, 70], [0, 56]),
        ([70, 400], [56, 320]),
        ([180, 180], [0, 70]),
        ([180, 400], [70, 70]),
        ([240, 240], [70, 180]),
        ([240, 400], [180, 180]),
        ([130, 180], [0, 70]),
    ]
    for xs, ys in boundaries:
        ax.plot(xs, ys, "-", color="k", lw=1)
    for label, x, y in [
        ("A", 30, 15),
        ("B", 370, 260),
        ("B", 280, 370),
        ("C", 160, 370),
        ("C", 160, 15),
        ("D", 30, 140),
        ("D", 370, 120),
        ("E", 30, 370),
        ("E", 370, 15),
    ]:
        ax.text(x, y, label, fontsize=12, ha="center", va="center")
    ax.set(
        xlim=(0, 400),
        ylim=(0, 400),
        xlabel="reference glucose (mg/dL)",
        ylabel="predicted glucose (mg/dL)",
        title=title,
        aspect="equal",
    )
    return ax

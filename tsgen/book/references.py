"""Published numbers the chapters compare with, typed once.

Every number here is quoted from the paper or the results files named in its
``source``; data set names are tsgen's (``sines``, ``stock``, ``energy``), so a
row joins a chapter's results table without renaming. Chapters read them with
:func:`references`; the results chapter shows them all.
"""

from __future__ import annotations

import pandas as pd

SAITS_PAPER = "SAITS paper (Du et al. 2023)"
IMAGENI2R_PAPER = "ImagenI2R (Fadlon et al. 2025)"
GLUCOBENCH = "GlucoBench (Sergazinov et al. 2023)"

_ROWS: list[dict] = (
    [
        {
            "system": "TTT imputer",
            "source": SAITS_PAPER,
            "model": model,
            "dataset": dataset,
            "missing": "10% point",
            "metric": "MAE",
            "value": value,
        }
        for model, values in {
            "SAITS": (0.137, 0.735, 0.092),
            "Transformer": (0.158, 0.823, 0.114),
            "BRITS": (0.153, 0.847, 0.130),
        }.items()
        for dataset, value in zip(
            ("Air-Quality", "Electricity", "ETTm1"), values, strict=True
        )
    ]
    + [
        # GlucoBench's Hall table (output/summarize.ipynb): per 12-step forecast
        # the MSE and MAE over 5-60 min in mg/dL, the median over forecasts (the
        # RMSE column is the square root of the median MSE), mean of 10 splits
        {
            "system": "TTM glucose forecasting",
            "source": GLUCOBENCH,
            "model": model,
            "dataset": "Hall",
            "test": test,
            "horizon (min)": "5-60",
            "metric": metric,
            "value": value,
        }
        for model, test, rmse, mae in (
            ("linear regression", "ID", 6.22, 5.24),
            ("XGBoost", "ID", 6.03, 5.18),
            ("NHiTS", "ID", 6.62, 5.79),
            ("Transformer", "ID", 6.70, 5.67),
            ("TFT", "ID", 10.70, 8.70),
            ("linear regression", "OOD", 7.32, 6.20),
            ("XGBoost", "OOD", 7.66, 6.69),
            ("NHiTS", "OOD", 8.33, 7.16),
            ("Transformer", "OOD", 8.22, 6.79),
            ("TFT", "OOD", 11.62, 9.50),
        )
        for metric, value in (
            ("GlucoBench RMSE mg/dL", rmse),
            ("GlucoBench MAE mg/dL", mae),
        )
    ]
    + [
        {
            "system": "TTM glucose forecasting",
            "source": "OhioT1DM, typical published models",
            "horizon (min)": 30,
            "metric": "RMSE mg/dL",
            "value": "about 18",
        },
    ]
    + [
        {
            "system": "Irregular-to-regular generation",
            "source": IMAGENI2R_PAPER,
            "model": "ImagenI2R",
            "dataset": dataset,
            "length": 24,
            "missing": rate,
            "metric": "discriminative",
            "value": value,
        }
        for dataset, values in {
            "stock": (0.007, 0.007, 0.010),
            "energy": (0.048, 0.065, 0.128),
            "sines": (0.013, 0.014, 0.008),
        }.items()
        for rate, value in zip((0.3, 0.5, 0.7), values, strict=True)
    ]
    + [
        # the paper quotes one predictive score per data set over its missing rates
        {
            "system": "Irregular-to-regular generation",
            "source": IMAGENI2R_PAPER,
            "model": "ImagenI2R",
            "dataset": dataset,
            "length": 24,
            "missing": None,
            "metric": "predictive",
            "value": value,
        }
        for dataset, value in {"stock": 0.012, "energy": 0.047, "sines": 0.069}.items()
    ]
)

REFERENCE_SYSTEMS = tuple(dict.fromkeys(row["system"] for row in _ROWS))


def references(system: str | None = None, **equal) -> pd.DataFrame:
    """The published rows of ``system`` (all when None), filtered by
    ``column=value`` pairs.

    >>> references(  # doctest: +SKIP
    ...     "Irregular-to-regular generation", metric="discriminative", dataset="stock"
    ... )
    """
    if system is not None and system not in REFERENCE_SYSTEMS:
        raise ValueError(
            f"unknown system {system!r}; systems with "
            f"published numbers: {list(REFERENCE_SYSTEMS)}"
        )
    frame = pd.DataFrame(
        [row for row in _ROWS if system is None or row["system"] == system]
    )
    for column, value in equal.items():
        if column not in frame:
            raise ValueError(
                f"no column {column!r} in the references "
                f"of {system}; columns: {list(frame)}"
            )
        frame = frame[frame[column] == value]
    return frame.dropna(axis=1, how="all").reset_index(drop=True)


def published_value(system: str, **equal) -> float:
    """The one published number matching ``equal`` (NaN when the paper has none)."""
    rows = references(system, **equal)
    if len(rows) > 1:
        raise ValueError(f"{len(rows)} published rows match {equal}; be more specific")
    return float(rows["value"].iloc[0]) if len(rows) else float("nan")

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
GLUCOBENCH = "GlucoBench (Sergazinov et al. 2023), best model per data set"

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
        {
            "system": "TTM glucose forecasting",
            "source": GLUCOBENCH,
            "horizon (min)": 60,
            "metric": "RMSE mg/dL",
            "value": "5.3-13.2",
        },
        {
            "system": "TTM glucose forecasting",
            "source": GLUCOBENCH,
            "horizon (min)": 60,
            "metric": "MAE mg/dL",
            "value": "4.4-11.2",
        },
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

"""Chapter 5's protocols as functions that return tables (one row per seed × condition).

* :func:`cohort_summary`: glucose statistics of a cohort, one row per age group.
* :func:`remove_readings` and :func:`gap_filling_comparison`: how well each
  ``imputation_strategy`` fills readings removed at random.
* :func:`glucose_comparison`: TTM zero-shot, fine-tuned and from scratch beside
  the persistence and linear-regression baselines, scored with the clinical
  metrics at each horizon, over training seeds.

Every model here gets its seed explicitly; nothing touches the caller's global
generators.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.glucose import MGDL_PER_MMOL, SAMPLE_MIN
from ..runtime import numpy_rng
from .baselines import LinearRegression, Persistence
from .config import TTMConfig
from .data import Preprocessor
from .model import TTMForecaster

MODELS = (
    "TTM zero-shot",
    "TTM fine-tuned",
    "TTM from scratch",
    "persistence",
    "linear regression",
)
PRETRAINED_MODELS = ("TTM zero-shot", "TTM fine-tuned")
GAP_FILLERS = ("linear", "forward_fill", "mean", "ttt_imputer")


def cohort_summary(
    cohort: pd.DataFrame, id_column: str = "p_num", target: str = "bg_mM"
) -> pd.DataFrame:
    """One row per age group (the part of a simglucose name before ``#``; other ids are their own group):
    patients, simulated days per patient, mean glucose (mg/dL), its coefficient of variation and the
    shares of readings below 70, in 70–180 and above 180 mg/dL."""
    from tsgen.metrics import clinical

    groups = cohort[id_column].astype(str).str.split("#").str[0]
    rows = []
    for group, part in cohort.groupby(groups, sort=False):
        mgdl = part[target] * MGDL_PER_MMOL
        tir = clinical.time_in_range(mgdl)
        n_patients = part[id_column].nunique()
        rows.append(
            {
                "group": group,
                "patients": n_patients,
                "days": len(part) * SAMPLE_MIN / (24 * 60) / n_patients,
                "mean mg/dL": mgdl.mean(),
                "CV %": 100 * mgdl.std() / mgdl.mean(),
                "below 70": tir["below"],
                "in 70-180": tir["in range"],
                "above 180": tir["above"],
            }
        )
    return pd.DataFrame(rows)


def remove_readings(
    frame: pd.DataFrame, rate: float, seed: int, column: str = "bg_mM"
) -> pd.DataFrame:
    """``frame`` with each reading of ``column`` removed (set to NaN) with probability ``rate``."""
    if not 0 < rate < 1:
        raise ValueError(f"rate must be in (0, 1); got {rate!r}")
    rng = numpy_rng(seed)
    return frame.assign(**{column: frame[column].mask(rng.random(len(frame)) < rate)})


def gap_filling_comparison(
    frame: pd.DataFrame,
    config: TTMConfig,
    *,
    strategies=GAP_FILLERS,
    missing_rate: float = 0.05,
    seeds=(0,),
    device: str = "cpu",
) -> pd.DataFrame:
    """Remove ``missing_rate`` of the target readings of ``frame`` (per seed) and score each gap filler on them.

    Each strategy is ``config`` with that ``imputation_strategy`` (its
    ``imputation_window`` and ``imputer_params`` for the TTT imputer, seeded
    with the row's seed), fitted on the gappy readings only. Returns one row per
    seed × strategy: ``seed``, ``strategy``, ``removed`` (readings scored),
    ``RMSE mg/dL``, ``MAE mg/dL``.
    """
    from tsgen.metrics import imputation_errors

    target, keys = config.target_features[0], [config.id_column, config.time_column]
    rows = []
    for seed in seeds:
        gappy = remove_readings(frame, missing_rate, seed, target)
        removed = (gappy[target].isna() & frame[target].notna()).to_numpy()
        truth = frame[removed]
        for strategy in strategies:
            strategy_config = replace(config, imputation_strategy=strategy, seed=seed)
            filled = Preprocessor(
                strategy_config.to_data_config(), device
            ).imputed_frame(gappy, fit=True)
            estimate = truth[keys].merge(filled, on=keys, how="left")[target].to_numpy()
            errors = imputation_errors(
                estimate * MGDL_PER_MMOL,
                truth[target].to_numpy() * MGDL_PER_MMOL,
                np.ones(len(truth)),
            )
            rows.append(
                {
                    "seed": seed,
                    "strategy": strategy,
                    "removed": int(removed.sum()),
                    "RMSE mg/dL": errors["rmse"],
                    "MAE mg/dL": errors["mae"],
                }
            )
    return pd.DataFrame(rows)


def _forecaster(
    name: str,
    config: TTMConfig,
    source: str | None,
    seed: int,
    finetune_learning_rate: float,
):
    if name == "TTM zero-shot":
        return TTMForecaster(
            replace(config, model_path=source, training_mode="zero_shot", seed=seed)
        )
    if name == "TTM fine-tuned":
        return TTMForecaster(
            replace(
                config,
                model_path=source,
                training_mode="fine_tune",
                seed=seed,
                learning_rate=finetune_learning_rate,
            )
        )
    if name == "TTM from scratch":
        return TTMForecaster(
            replace(config, model_path=None, training_mode="from_scratch", seed=seed)
        )
    baseline = Persistence if name == "persistence" else LinearRegression
    return baseline(replace(config, seed=seed))


def glucose_comparison(
    train: pd.DataFrame,
    test: pd.DataFrame,
    config: TTMConfig,
    *,
    pretrained: TTMForecaster | str | Path | None = None,
    models=MODELS,
    seeds=(0,),
    horizons=(30, 60),
    finetune_learning_rate: float | None = None,
    logging_dir: str | Path | None = None,
    return_forecasts: bool = False,
):
    """Train (or not) each of ``models`` on ``train``, forecast every origin of ``test`` whose whole horizon
    is in it, and score the forecasts with :func:`tsgen.metrics.clinical.horizon_metrics`.

    ``config`` gives every model its columns, lengths, batch size, epochs,
    learning rate and device; each run replaces its ``seed`` (and the TTM
    runs their ``model_path`` and ``training_mode``). ``pretrained`` is where
    "TTM zero-shot" and "TTM fine-tuned" start: a fitted :class:`TTMForecaster`,
    a checkpoint directory or a hub id. Fine-tuning uses
    ``finetune_learning_rate`` (default: the config's). Every model runs once
    per seed; the ones without randomness give the same row for every seed.
    ``logging_dir`` gets one TensorBoard folder per trained model and seed
    (None: no logs).

    Returns one row per seed × model × horizon: ``seed``, ``model``,
    ``horizon (min)`` and the clinical metrics (RMSE and MAE in mg/dL and
    mmol/L, MARD %, Clarke zone shares, ``n`` scored forecasts). With
    ``return_forecasts=True`` also the forecast tables of the first seed,
    stacked with a ``model`` column.
    """
    from tsgen.metrics import clinical

    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    if pretrained is None and any(m in PRETRAINED_MODELS for m in models):
        raise ValueError(
            f"{[m for m in models if m in PRETRAINED_MODELS]} "
            "need pretrained weights: pass pretrained="
        )
    seeds = list(seeds)
    rows, forecasts = [], []
    with tempfile.TemporaryDirectory() as tmp:
        source = (
            str(pretrained.save(Path(tmp) / "pretrained"))
            if isinstance(pretrained, TTMForecaster)
            else pretrained
        )
        for seed in seeds:
            for name in models:
                forecaster = _forecaster(
                    name,
                    config,
                    source,
                    seed,
                    finetune_learning_rate or config.learning_rate,
                )
                if name == "TTM zero-shot":
                    table = forecaster.predict_zero_shot(test, full_future=True)
                else:
                    run_logs = (
                        Path(logging_dir) / name.replace(" ", "_") / f"seed{seed}"
                        if logging_dir
                        else ""
                    )
                    table = forecaster.fit(train, logging_dir=run_logs).predict(
                        test, full_future=True
                    )
                scores = clinical.horizon_metrics(table, horizons)
                rows += [
                    {
                        "seed": seed,
                        "model": name,
                        "horizon (min)": h,
                        **scores.loc[h].to_dict(),
                    }
                    for h in horizons
                ]
                if return_forecasts and seed == seeds[0]:
                    forecasts.append(table.assign(model=name))
    scores = pd.DataFrame(rows).astype({"n": int})
    return (
        (scores, pd.concat(forecasts, ignore_index=True))
        if return_forecasts
        else scores
    )

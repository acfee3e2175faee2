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
import torch

from ..data.glucose import MGDL_PER_MMOL, SAMPLE_MIN
from ..runtime import numpy_rng
from .baselines import LinearRegression, Persistence
from .config import TTMConfig
from .data import Preprocessor, WindowDataset
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


# ---------------------------------------------------------------- real CGM data

REAL_MODELS = (
    "persistence",
    "linear regression",
    "TTM from scratch",
    "TTM zero-shot (sim)",
    "TTM fine-tuned",
    "TTM fine-tuned + TTA",
)
# GlucoBench's Hall setting (config/hall.yaml, bin/*_hall.py): forecasts from the
# 144th step of each test series on, every 6 steps, 12 steps ahead; its tuned
# linear regression reads 84 steps
GLUCOBENCH_FIRST_TARGET = 144
GLUCOBENCH_STRIDE = 6
GLUCOBENCH_LINREG_CONTEXT = 84


def glucobench_origins(forecasts: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``forecasts`` at GlucoBench's origins: the step before the 144th of each test series,
    then every 6 steps (``test``: the series on the 5-minute grid, ``p_num`` a series)."""
    start = test.groupby("p_num")["datetime"].min()
    position = (
        (forecasts["origin"] - forecasts["p_num"].map(start))
        / pd.Timedelta(minutes=SAMPLE_MIN)
    ).round()
    first = GLUCOBENCH_FIRST_TARGET - 1
    keep = (position >= first) & ((position - first) % GLUCOBENCH_STRIDE == 0)
    return forecasts[keep.to_numpy()]


class _TTMOnWindows(torch.nn.Module):
    """A TTM network as a forecaster of ``[B, L, C]`` windows (or dicts with ``X``), for the adaptation
    engines: its glucose forecast ``[B, H, n_targets]``."""

    def __init__(self, network, n_targets: int):
        super().__init__()
        self.network, self.n_targets = network, n_targets

    def forward(self, inputs):
        from tsgen.adaptation.base import split_inputs

        x, mask = split_inputs(inputs)
        out = self.network(past_values=x, past_observed_mask=mask, return_loss=False)
        return out.prediction_outputs[..., : self.n_targets]


def adapted_forecasts(
    forecaster: TTMForecaster,
    data,
    keep,
    engine: str = "tail_forecast",
    optimization: dict | None = None,
    options: dict | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Forecasts of ``forecaster`` adapted at test time, one window at a time, through an engine of
    :mod:`tsgen.adaptation` (:func:`~tsgen.adaptation.build_engine`).

    Each forecast origin ``keep(table)`` selects from the origins of
    ``data`` gets its own adaptation: ``optimization`` steps on the engine's
    self-supervised loss over that window's context only (``"tail_forecast"``:
    forecast the context's last steps from the rest), then the forecast, then
    the weights are restored. No reading after the origin is used, and every
    patient's forecasts come from weights adapted to that patient's own recent
    trace. The context is given with its gaps filled (as :meth:`predict` fills
    them) and all of it marked observed.
    """
    from tsgen.adaptation import build_engine

    cfg = forecaster.config
    series, starts = forecaster.prediction_windows(data, full_future=True)
    plain = forecaster.forecast_table(
        series,
        starts,
        np.zeros((sum(len(s) for s in starts), cfg.forecast_length, 1)),
    )
    chosen = keep(plain)
    wanted = set(zip(chosen["p_num"], chosen["origin"], strict=True))
    starts = [
        np.array(
            [
                st
                for st in st_list
                if (s.patient, s.times[st + cfg.context_length - 1]) in wanted
            ],
            dtype=int,
        )
        for s, st_list in zip(series.values(), starts, strict=True)
    ]
    dataset = WindowDataset(
        list(series.values()),
        starts,
        cfg.context_length,
        cfg.forecast_length,
        forecaster.preprocessor.fill,
    )
    wrapper = _TTMOnWindows(forecaster.model, forecaster.preprocessor.n_targets)
    example = torch.from_numpy(dataset.past[:1]).to(forecaster.device)
    adapter = build_engine(
        engine,
        wrapper,
        example_inputs=example,
        options=options,
        optimization_parameters=optimization,
        seed=seed,
    )
    adapter.eval()
    out = []
    for k in range(len(dataset)):
        window = torch.from_numpy(dataset.past[k : k + 1]).to(forecaster.device)
        forecast, _ = adapter(window)
        out.append(forecast[:, : cfg.forecast_length].cpu().numpy())
    scaled = (
        np.concatenate(out)
        if out
        else np.zeros((0, cfg.forecast_length, forecaster.preprocessor.n_targets))
    )
    return forecaster.forecast_table(series, starts, scaled)


def conformal_intervals(
    calibration: pd.DataFrame,
    forecasts: pd.DataFrame,
    levels=(0.8, 0.95),
) -> pd.DataFrame:
    """Split-conformal prediction intervals for ``forecasts`` from the errors on ``calibration``.

    Uses tsfm_public's ``WeightedConformalForecasterWrapper`` (uniform
    weights, absolute-error scores; one threshold per horizon step) fitted on
    the calibration forecasts whose whole horizon was observed. Returns
    ``forecasts`` with ``low <level>`` and ``high <level>`` columns (mg/dL).
    """
    from tsfm_public.toolkit.conformal import WeightedConformalForecasterWrapper

    def cube(table, column):
        wide = table.pivot_table(
            index=["p_num", "origin"],
            columns="horizon_min",
            values=column,
            dropna=False,
        )
        return wide

    truth, pred = cube(calibration, "bg_mgdl_true"), cube(calibration, "bg_mgdl")
    complete = truth.notna().all(axis=1)
    y_gt = truth[complete].to_numpy()[..., None]
    y_cal = pred[complete].to_numpy()[..., None]
    test_pred = cube(forecasts, "bg_mgdl")
    out = forecasts.copy()
    for level in levels:
        wrapper = WeightedConformalForecasterWrapper(false_alarm=round(1 - level, 10))
        wrapper.fit(y_gt, y_cal)
        bands = wrapper.predict(test_pred.to_numpy()[..., None])["prediction_interval"]
        for name, band in (("low", bands["y_low"]), ("high", bands["y_high"])):
            long = pd.DataFrame(
                band[..., 0], index=test_pred.index, columns=test_pred.columns
            )
            long = long.stack().rename(f"{name} {level:g}").reset_index()
            out = out.merge(long, on=["p_num", "origin", "horizon_min"], how="left")
    return out


def interval_coverage(
    intervals: pd.DataFrame, levels=(0.8, 0.95), horizons=(30, 60)
) -> pd.DataFrame:
    """Share of observed readings inside each interval, per level and horizon (and all horizons)."""
    rows = []
    seen = intervals[intervals["bg_mgdl_true"].notna()]
    for level in levels:
        low, high = seen[f"low {level:g}"], seen[f"high {level:g}"]
        inside = (seen["bg_mgdl_true"] >= low) & (seen["bg_mgdl_true"] <= high)
        width = high - low
        for h in (*horizons, "all"):
            at = slice(None) if h == "all" else (seen["horizon_min"] == h).to_numpy()
            rows.append(
                {
                    "level": level,
                    "horizon (min)": h,
                    "coverage": float(inside[at].mean()),
                    "width mg/dL": float(width[at].mean()),
                    "n": int(inside[at].size if h == "all" else at.sum()),
                }
            )
    return pd.DataFrame(rows)


def _scores(table, test, horizons) -> list[dict]:
    from tsgen.metrics import clinical

    table = glucobench_origins(table, test)
    bench = clinical.glucobench_errors(table, horizon_min=60)
    scores = clinical.horizon_metrics(table, horizons)
    rows = []
    for h in horizons:
        at = table[(table.horizon_min == h) & table.bg_mgdl_true.notna()]
        rows.append(
            {
                "horizon (min)": h,
                **scores.loc[h].to_dict(),
                "TIR forecast %": 100 * clinical.time_in_range(at.bg_mgdl)["in range"],
                "TIR observed %": 100
                * clinical.time_in_range(at.bg_mgdl_true)["in range"],
                **bench,
            }
        )
    return rows


def real_data_comparison(
    cohort: pd.DataFrame,
    config: TTMConfig,
    *,
    pretrained: TTMForecaster | str | Path | None = None,
    models=REAL_MODELS,
    seeds=(0,),
    horizons=(30, 60),
    split: dict | None = None,
    linreg_context: int = GLUCOBENCH_LINREG_CONTEXT,
    finetune_learning_rate: float | None = None,
    adaptation: dict | None = None,
    levels=(0.8, 0.95),
    pretrained_label: str | None = None,
    logging_dir: str | Path | None = None,
    progress: bool = False,
) -> dict[str, pd.DataFrame]:
    """The GlucoBench protocol on a real cohort, over seeds (each seed its own split and training seed).

    Per seed, :func:`tsgen.data.cgm.glucobench_split` (``split``: its keyword
    arguments) gives training series, validation segments, an in-distribution
    test (the last segment of the training patients, ``"ID"``) and held-out
    patients (``"OOD"``). Every model of ``models`` (:data:`REAL_MODELS`) is
    fitted on the training series (the TTMs stop early on the validation
    segments) and forecasts GlucoBench's origins of both tests: from the 144th
    step of each test series, every 6 steps, 12 steps ahead. "TTM zero-shot
    (sim)" is ``pretrained`` (a TTM trained on simulated patients, or its
    checkpoint) applied to the real patients as it is; "TTM fine-tuned"
    starts from it, at ``finetune_learning_rate``; "TTM fine-tuned + TTA"
    adapts the fine-tuned TTM to each forecast window
    (:func:`adapted_forecasts`; ``adaptation``: ``engine``, ``optimization``,
    ``options``). Linear regression reads ``linreg_context`` steps
    (GlucoBench's tuned 84), the others ``config.context_length``.
    ``pretrained_label`` names the pretrained weights in the ``weights``
    column (default: the hub id or path, or "pretrained TTM" for a model).

    Returns a dict of tables:

    * ``"scores"``: one row per seed x model x test x horizon with ``weights``
      (where the weights came from), the clinical metrics
      (:func:`tsgen.metrics.clinical.horizon_metrics`), time in range of the
      forecasts and of the readings, and GlucoBench's two numbers
      (:func:`tsgen.metrics.clinical.glucobench_errors`);
    * ``"coverage"``: split-conformal intervals of the fine-tuned TTM
      (:func:`conformal_intervals`, calibrated on its validation-segment
      forecasts): coverage and width per seed, test, level and horizon;
    * ``"patients"``: the fine-tuned TTM with and without adaptation, RMSE per
      seed, test patient and horizon;
    * ``"forecasts"``: the first seed's forecasts at GlucoBench's origins, one
      column per model, with the fine-tuned TTM's intervals.
    """
    from tsgen.data import cgm
    from tsgen.metrics import clinical

    unknown = [m for m in models if m not in REAL_MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {list(REAL_MODELS)}")
    needs_pretrained = [m for m in models if "zero-shot" in m or "fine-tuned" in m]
    if pretrained is None and needs_pretrained:
        raise ValueError(
            f"{needs_pretrained} need pretrained weights: pass pretrained="
        )
    adaptation = {"engine": "tail_forecast", **(adaptation or {})}
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty")
    scores, coverage, patients, forecasts = [], [], [], None
    forecasts_first = None
    with tempfile.TemporaryDirectory() as tmp:
        source = (
            str(pretrained.save(Path(tmp) / "pretrained"))
            if isinstance(pretrained, TTMForecaster)
            else pretrained
        )
        label = pretrained_label or (
            "pretrained TTM"
            if isinstance(pretrained, TTMForecaster)
            else f"pretrained {pretrained}"
        )
        for seed in seeds:
            parts = cgm.glucobench_split(cohort, seed=seed, **(split or {}))
            tests = {"ID": parts["test"], "OOD": parts["test_ood"]}
            tables: dict[str, dict[str, pd.DataFrame]] = {}
            fitted: dict[str, TTMForecaster] = {}
            for name in models:
                run_logs = (
                    Path(logging_dir) / name.replace(" ", "_") / f"seed{seed}"
                    if logging_dir
                    else None
                )
                if name == "TTM fine-tuned + TTA":
                    continue
                if name in ("persistence", "linear regression"):
                    baseline = (
                        Persistence if name == "persistence" else LinearRegression
                    )
                    model = baseline(
                        replace(config, seed=seed, context_length=linreg_context)
                        if name == "linear regression"
                        else replace(config, seed=seed)
                    ).fit(parts["train"])
                    weights = "none" if name == "persistence" else "fitted here"
                elif name == "TTM zero-shot (sim)":
                    model = (
                        pretrained
                        if isinstance(pretrained, TTMForecaster)
                        else TTMForecaster(
                            replace(
                                config, model_path=source, training_mode="zero_shot"
                            )
                        )
                    )
                else:
                    scratch = name == "TTM from scratch"
                    model = TTMForecaster(
                        replace(
                            config,
                            seed=seed,
                            model_path="random" if scratch else source,
                            training_mode="from_scratch" if scratch else "fine_tune",
                            learning_rate=config.learning_rate
                            if scratch
                            else finetune_learning_rate or config.learning_rate,
                        )
                    ).fit(
                        parts["train"],
                        valid_data=parts["valid"],
                        logging_dir=run_logs,
                        progress=progress,
                    )
                if name == "TTM from scratch":
                    weights = "random init, trained here"
                elif name == "TTM zero-shot (sim)":
                    weights = label
                elif name == "TTM fine-tuned":
                    weights = f"{label}, fine-tuned here"
                fitted[name] = model
                tables[name] = {
                    test: glucobench_origins(
                        model.predict(frame, full_future=True), frame
                    )
                    for test, frame in tests.items()
                }
                tables[name]["weights"] = weights
            if "TTM fine-tuned + TTA" in models:
                tuned = fitted["TTM fine-tuned"]
                tables["TTM fine-tuned + TTA"] = {
                    test: adapted_forecasts(
                        tuned,
                        frame,
                        lambda table, frame=frame: glucobench_origins(table, frame),
                        engine=adaptation["engine"],
                        optimization=adaptation.get("optimization"),
                        options=adaptation.get("options"),
                        seed=seed,
                    )
                    for test, frame in tests.items()
                }
                tables["TTM fine-tuned + TTA"]["weights"] = (
                    f"{label}, fine-tuned, adapted per window"
                )
            for name, by_test in tables.items():
                for test, frame in tests.items():
                    for row in _scores(by_test[test], frame, horizons):
                        scores.append(
                            {
                                "seed": seed,
                                "model": name,
                                "test": test,
                                "weights": by_test["weights"],
                                **row,
                            }
                        )
            if "TTM fine-tuned" in fitted:
                tuned = fitted["TTM fine-tuned"]
                calibration = tuned.predict(parts["valid"], full_future=True)
                for test in tests:
                    bands = conformal_intervals(
                        calibration, tables["TTM fine-tuned"][test], levels
                    )
                    coverage += [
                        {"seed": seed, "test": test, **r}
                        for r in interval_coverage(bands, levels, horizons).to_dict(
                            "records"
                        )
                    ]
                    if seed == seeds[0] and test == "OOD":
                        forecasts = bands
            if {"TTM fine-tuned", "TTM fine-tuned + TTA"} <= set(tables):
                for test in tests:
                    for name in ("TTM fine-tuned", "TTM fine-tuned + TTA"):
                        table = tables[name][test]
                        for (pid, h), at in table[table.bg_mgdl_true.notna()].groupby(
                            [table.p_num.str.split("/").str[0], "horizon_min"]
                        ):
                            if h in horizons:
                                patients.append(
                                    {
                                        "seed": seed,
                                        "test": test,
                                        "patient": pid,
                                        "model": name,
                                        "horizon (min)": h,
                                        "RMSE mg/dL": clinical.rmse(
                                            at.bg_mgdl_true, at.bg_mgdl
                                        ),
                                    }
                                )
            if seed == seeds[0]:
                keys = ["p_num", "origin", "horizon_min", "time", "bg_mgdl_true"]
                wide = None
                for name, by_test in tables.items():
                    part = by_test["OOD"][keys + ["bg_mgdl"]].rename(
                        columns={"bg_mgdl": name}
                    )
                    wide = (
                        part if wide is None else wide.merge(part, on=keys, how="outer")
                    )
                if forecasts is not None:
                    bands = [
                        c for c in forecasts.columns if c.startswith(("low", "high"))
                    ]
                    wide = wide.merge(
                        forecasts[["p_num", "origin", "horizon_min", *bands]],
                        on=["p_num", "origin", "horizon_min"],
                        how="left",
                    )
                forecasts_first = wide
    return {
        "scores": pd.DataFrame(scores).astype({"n": int}),
        "coverage": pd.DataFrame(coverage),
        "patients": pd.DataFrame(patients),
        "forecasts": forecasts_first,
    }

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from tsgen.forecasting import (
    TTMConfig,
    TTMForecaster,
    cohort_summary,
    gap_filling_comparison,
    glucose_comparison,
    remove_readings,
    time_split,
)
from tsgen.forecasting.experiments import MODELS


def cohort(n=150, patients=("adult#001", "adult#002", "child#001"), seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for k, p in enumerate(patients):
        t = pd.date_range("2024-01-01", periods=n, freq="5min")
        bg = 7 + 2 * np.sin(np.arange(n) / 8 + k) + rng.normal(0, 0.1, n)
        parts.append(pd.DataFrame({"datetime": t, "p_num": p, "bg_mM": bg}))
    return pd.concat(parts, ignore_index=True)


def config(**kw):
    return TTMConfig(
        **{
            "model_path": None,
            "context_length": 32,
            "forecast_length": 6,
            "num_epochs": 1,
            "batch_size": 32,
            "device": "cpu",
            **kw,
        }
    )


def test_cohort_summary_has_one_row_per_group():
    summary = cohort_summary(cohort())
    assert summary.group.tolist() == [
        "adult",
        "child",
    ] and summary.patients.tolist() == [2, 1]
    np.testing.assert_allclose(summary.days, 150 * 5 / 1440)
    np.testing.assert_allclose(
        summary[["below 70", "in 70-180", "above 180"]].sum(axis=1), 1.0
    )


def test_remove_readings_is_seeded():
    data = cohort()
    gappy = remove_readings(data, 0.2, seed=3)
    assert 0.1 < gappy.bg_mM.isna().mean() < 0.3 and data.bg_mM.notna().all()
    pd.testing.assert_frame_equal(gappy, remove_readings(data, 0.2, seed=3))
    with pytest.raises(ValueError, match="rate"):
        remove_readings(data, 1.5, seed=0)


def test_gap_filling_comparison_rows():
    tiny = {"d_model": 8, "n_heads": 2, "d_ffn": 16, "epochs": 2, "patience": None}
    table = gap_filling_comparison(
        cohort(),
        config(imputation_window=16, imputer_params=tiny),
        seeds=(0, 1),
        missing_rate=0.1,
    )
    assert list(table.columns) == [
        "seed",
        "strategy",
        "removed",
        "RMSE mg/dL",
        "MAE mg/dL",
    ]
    assert (
        len(table) == 2 * 4
        and table.groupby("seed").strategy.apply(list).tolist()
        == [["linear", "forward_fill", "mean", "ttt_imputer"]] * 2
    )
    assert (
        np.isfinite(table[["RMSE mg/dL", "MAE mg/dL"]]).all().all()
        and (table.removed > 0).all()
    )
    # linear interpolation of a smooth series beats the patient's mean
    linear, mean = (
        table[table.strategy == s]["RMSE mg/dL"].to_numpy() for s in ("linear", "mean")
    )
    assert (linear < mean).all()


@pytest.fixture(scope="module")
def split():
    data = cohort(n=200)
    pretrained = TTMForecaster(config(training_mode="from_scratch")).fit(
        data[data.p_num.str.startswith("adult")]
    )
    train, test = time_split(data[data.p_num.str.startswith("child")], 0.3, 32)
    return train, test, pretrained


@pytest.fixture(scope="module")
def comparison(split):
    train, test, pretrained = split
    return glucose_comparison(
        train,
        test,
        config(),
        pretrained=pretrained,
        seeds=(0, 1),
        horizons=(15, 30),
        return_forecasts=True,
    )


def test_glucose_comparison_rows(comparison):
    scores, forecasts = comparison
    assert list(scores.columns[:3]) == ["seed", "model", "horizon (min)"]
    assert {"RMSE mg/dL", "MAE mg/dL", "MARD %", "zone A", "zone E", "n"} <= set(
        scores.columns
    )
    assert len(scores) == 2 * len(MODELS) * 2
    assert np.isfinite(scores.drop(columns="model")).all().all()
    assert scores.n.nunique() == 1  # every model scored on the same origins
    # the models without randomness give the same
    # row for every seed; trained ones differ
    by_seed = scores.set_index(["model", "horizon (min)", "seed"])[
        "RMSE mg/dL"
    ].unstack("seed")
    for name in ("TTM zero-shot", "persistence", "linear regression"):
        assert by_seed.loc[name, 0].equals(by_seed.loc[name, 1])
    assert not by_seed.loc["TTM from scratch", 0].equals(
        by_seed.loc["TTM from scratch", 1]
    )
    assert forecasts.model.unique().tolist() == list(MODELS)
    # first seed only, every horizon step
    assert len(forecasts) == len(MODELS) * scores.n.iloc[0] * 6


def test_glucose_comparison_is_deterministic(split, comparison):
    train, test, _ = split
    again = glucose_comparison(
        train,
        test,
        config(),
        models=["TTM from scratch"],
        seeds=(1,),
        horizons=(15, 30),
    )
    expected = (
        comparison[0]
        .query("model == 'TTM from scratch' and seed == 1")
        .reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(again, expected)


def test_glucose_comparison_needs_pretrained_weights_for_zero_shot():
    with pytest.raises(ValueError, match="need pretrained weights"):
        glucose_comparison(cohort(), cohort(), config(), models=["TTM zero-shot"])
    with pytest.raises(ValueError, match="unknown model"):
        glucose_comparison(cohort(), cohort(), config(), models=["ARIMA"])


def test_glucose_comparison_logs_each_trained_run(tmp_path):
    data = cohort(n=200, patients=("child#001",))
    train, test = time_split(data, 0.3, 32)
    glucose_comparison(
        train,
        test,
        config(),
        models=["TTM from scratch", "persistence"],
        horizons=(30,),
        logging_dir=tmp_path,
    )
    assert list(
        (tmp_path / "TTM_from_scratch" / "seed0").rglob("events.out.tfevents.*")
    )
    assert not (tmp_path / "persistence").exists()


def test_real_data_comparison_on_a_tiny_cohort():
    from tsgen.forecasting.experiments import REAL_MODELS, real_data_comparison

    rng = np.random.default_rng(0)
    frames = []
    for k in range(6):
        t = pd.date_range("2020-01-01", periods=600, freq="5min")
        bg = 6 + np.sin(np.arange(600) / 12 + k) + rng.normal(0, 0.05, 600)
        bg[300:303] = np.nan  # a short gap, kept as NaN and filled per window
        frames.append(pd.DataFrame({"datetime": t, "p_num": f"p{k}", "bg_mM": bg}))
    cohort = pd.concat(frames, ignore_index=True)
    cfg = TTMConfig(
        model_path="random",
        context_length=32,
        forecast_length=12,
        num_epochs=1,
        batch_size=32,
        device="cpu",
        train_stride=4,
        max_gap_steps=6,
    )
    pretrained = TTMForecaster(replace(cfg, training_mode="from_scratch")).fit(cohort)
    out = real_data_comparison(
        cohort,
        cfg,
        pretrained=pretrained,
        seeds=[0],
        split={"test_percent_subjects": 0.2, "length_segment": 160},
        adaptation={"optimization": {"num_steps": 1, "lr": 1e-4}},
    )
    scores = out["scores"]
    assert set(scores.model) == set(REAL_MODELS) and set(scores.test) == {"ID", "OOD"}
    assert scores.weights.str.len().gt(0).all()
    assert (
        (scores.loc[scores.model == "TTM from scratch", "weights"])
        .str.startswith("random")
        .all()
    )
    assert np.isfinite(scores["GlucoBench RMSE mg/dL"]).all()
    # GlucoBench's origins: from the 144th step of each test series, every 6 steps
    ood = scores[(scores.test == "OOD") & (scores["horizon (min)"] == 60)]
    assert (ood.n == 2 * ((600 - 144 - 12) // 6 + 1)).all()
    cov = out["coverage"]
    assert set(cov.level) == {0.8, 0.95} and cov.coverage.between(0, 1).all()
    assert set(out["patients"].model) == {"TTM fine-tuned", "TTM fine-tuned + TTA"}
    assert {"low 0.8", "high 0.95", "persistence"} <= set(out["forecasts"].columns)

import json

import numpy as np
import pandas as pd
import pytest

from tsgen.forecasting import LinearRegression, Persistence, TTMConfig


def cohort(n=200, slope=0.01):
    t = pd.date_range("2024-01-01", periods=n, freq="5min")
    return pd.DataFrame(
        {"datetime": t, "p_num": "a", "bg_mM": 6 + slope * np.arange(n)}
    )


def config(**kw):
    return TTMConfig(
        **{
            "model_path": None,
            "context_length": 16,
            "forecast_length": 6,
            "device": "cpu",
            **kw,
        }
    )


def test_persistence_repeats_the_last_reading():
    persistence = Persistence(config())
    assert persistence.fit(cohort()) is persistence and persistence.history == []
    table = persistence.predict(cohort(), stride=5)
    for _, rows in table.groupby("origin"):
        assert rows.bg_mM.nunique() == 1
    first = table[table.origin == table.origin.min()]
    assert first.bg_mM.iloc[0] == pytest.approx(6 + 0.01 * 15)


def test_linear_regression_extrapolates_a_trend_and_beats_persistence():
    cfg = config()
    linear = LinearRegression(cfg, alpha=1e-6).fit(cohort())
    assert linear.history[0]["epoch"] == 1 and linear.history[0]["loss"] < 1e-6
    test = cohort(n=60).assign(bg_mM=lambda d: d.bg_mM + 0.5)
    table = linear.predict(test, full_future=True)
    np.testing.assert_allclose(table.bg_mM, table.bg_mM_true, atol=1e-3)
    persistence = Persistence(cfg).fit(cohort())
    assert (
        linear.evaluate(test, (30,)).loc[30, "RMSE mg/dL"]
        < persistence.evaluate(test, (30,)).loc[30, "RMSE mg/dL"]
    )


@pytest.mark.parametrize("alpha", [float("nan"), -1.0, float("inf"), True, "1"])
def test_bad_alpha_is_rejected(alpha):
    with pytest.raises(
        ValueError, match="LinearRegression.alpha must be a finite number >= 0"
    ):
        LinearRegression(config(), alpha=alpha)


def test_baseline_save_load(tmp_path):
    linear = LinearRegression(config(), alpha=0.5).fit(cohort())
    linear.save(tmp_path / "lin")
    state = json.loads((tmp_path / "lin" / "state.json").read_text())
    assert (
        state["kind"] == "LinearRegression"
        and state["alpha"] == 0.5
        and "preprocessor" in state
    )
    loaded = LinearRegression.load(tmp_path / "lin")
    assert loaded.alpha == 0.5 and loaded.history == linear.history
    pd.testing.assert_frame_equal(
        linear.predict(cohort(n=40)), loaded.predict(cohort(n=40))
    )
    with pytest.raises(
        ValueError, match="holds a LinearRegression checkpoint, not a Persistence"
    ):
        Persistence.load(tmp_path / "lin")
    persistence = Persistence(config()).fit(cohort())
    pd.testing.assert_frame_equal(
        Persistence.load(persistence.save(tmp_path / "p")).predict(cohort(n=40)),
        persistence.predict(cohort(n=40)),
    )


def test_unfitted_baselines_refuse_to_predict():
    with pytest.raises(RuntimeError, match="Persistence is not fitted"):
        Persistence(config()).predict(cohort())
    with pytest.raises(RuntimeError, match="LinearRegression is not fitted"):
        LinearRegression(config()).predict(cohort())


def test_linear_regression_logs_to_tensorboard(tmp_path):
    LinearRegression(config()).fit(cohort(), logging_dir=tmp_path / "tb")
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))


def test_baseline_save_load_with_the_ttt_imputer(tmp_path):
    rng = np.random.default_rng(0)
    gappy = cohort().assign(bg_mM=lambda d: d.bg_mM.mask(rng.random(len(d)) < 0.1))
    tiny = {"d_model": 8, "n_heads": 2, "d_ffn": 16, "epochs": 2, "patience": None}
    cfg = config(
        imputation_strategy="ttt_imputer", imputation_window=16, imputer_params=tiny
    )
    linear = LinearRegression(cfg).fit(gappy)
    linear.save(tmp_path / "lin")
    assert (tmp_path / "lin" / "imputer" / "weights.safetensors").exists()
    loaded = LinearRegression.load(tmp_path / "lin")
    pd.testing.assert_frame_equal(linear.predict(gappy), loaded.predict(gappy))


def test_a_forecast_that_is_not_finite_is_an_error():
    linear = LinearRegression(config(), alpha=1e-6).fit(cohort())
    linear.coef[0] = np.nan  # as weights that diverged would leave it
    with pytest.raises(ValueError, match="LinearRegression's forecasts are not finite"):
        linear.predict(cohort())


def test_singular_normal_equations_are_a_clear_error():
    flat = cohort(slope=0.0)  # every context the same: X'X is singular
    with pytest.raises(
        ValueError, match=r"alpha=0\): the normal equations are singular"
    ):
        LinearRegression(config(), alpha=0.0).fit(flat)

import numpy as np
import pandas as pd
import pytest

from tsgen.forecasting import LinearRegression, Persistence, TTMConfig


def cohort(n=200, slope=0.01):
    t = pd.date_range("2024-01-01", periods=n, freq="5min")
    return pd.DataFrame({"datetime": t, "p_num": "a", "bg_mM": 6 + slope * np.arange(n)})


def config():
    return TTMConfig(model_path=None, context_length=16, forecast_length=6, device="cpu")


def test_persistence_repeats_the_last_reading():
    table = Persistence(config()).fit(cohort()).predict(cohort(), stride=5)
    for _, rows in table.groupby("origin"):
        assert rows.bg_mM.nunique() == 1
    first = table[table.origin == table.origin.min()]
    assert first.bg_mM.iloc[0] == pytest.approx(6 + 0.01 * 15)


def test_linear_regression_extrapolates_a_trend_and_beats_persistence():
    cfg = config()
    linear = LinearRegression(cfg, alpha=1e-6).fit(cohort())
    test = cohort(n=60).assign(bg_mM=lambda d: d.bg_mM + 0.5)
    table = linear.predict(test, full_future=True)
    np.testing.assert_allclose(table.bg_mM, table.bg_mM_true, atol=1e-3)
    assert linear.evaluate(test, (30,)).loc[30, "RMSE mg/dL"] < Persistence(cfg).fit(cohort()).evaluate(test, (30,)).loc[30, "RMSE mg/dL"]


def test_baseline_save_load(tmp_path):
    linear = LinearRegression(config()).fit(cohort())
    linear.save(tmp_path / "lin")
    loaded = LinearRegression.load(tmp_path / "lin")
    pd.testing.assert_frame_equal(linear.predict(cohort(n=40)), loaded.predict(cohort(n=40)))
    with pytest.raises(ValueError, match="holds a LinearRegression"):
        Persistence.load(tmp_path / "lin")
    with pytest.raises(RuntimeError, match="not fitted"):
        Persistence(config()).predict(cohort())


def test_baseline_save_load_with_the_ttt_imputer(tmp_path):
    rng = np.random.default_rng(0)
    gappy = cohort().assign(bg_mM=lambda d: d.bg_mM.mask(rng.random(len(d)) < 0.1))
    tiny = {"d_model": 8, "n_heads": 2, "d_ffn": 16, "epochs": 2, "patience": None}
    cfg = TTMConfig(model_path=None, context_length=16, forecast_length=6, device="cpu", imputation_strategy="ttt",
                    imputation_window=16, imputer_params=tiny)
    linear = LinearRegression(cfg).fit(gappy)
    linear.save(tmp_path / "lin")
    assert (tmp_path / "lin" / "imputer" / "weights.safetensors").exists()
    loaded = LinearRegression.load(tmp_path / "lin")
    pd.testing.assert_frame_equal(linear.predict(gappy), loaded.predict(gappy))

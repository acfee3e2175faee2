import numpy as np
import pandas as pd
import pytest
import torch

from tsgen.forecasting import (
    BaseTSFM,
    LinearRegression,
    Persistence,
    TTMConfig,
    TTMForecaster,
)
from tsgen.forecasting.data import Preprocessor


def cohort(n=120):
    t = pd.date_range("2024-01-01", periods=n, freq="5min")
    return pd.DataFrame(
        {"datetime": t, "p_num": "a", "bg_mM": 6 + np.sin(np.arange(n) / 6)}
    )


def config(**kw):
    return TTMConfig(
        **{
            "model_path": None,
            "context_length": 16,
            "forecast_length": 4,
            "device": "cpu",
            "num_epochs": 1,
            "training_mode": "from_scratch",
            **kw,
        }
    )


@pytest.mark.parametrize("cls", [TTMForecaster, Persistence, LinearRegression])
def test_every_forecaster_shares_the_contract(cls, tmp_path):
    assert issubclass(cls, BaseTSFM)
    forecaster = cls(config(device="auto"), device="cpu")
    with pytest.raises(RuntimeError, match="not fitted"):
        forecaster.predict(cohort())
    torch.manual_seed(7)
    before = torch.get_rng_state(), np.random.get_state()[1].copy()
    assert forecaster.fit(cohort()) is forecaster
    table = forecaster.predict(cohort(), stride=7)
    assert (
        torch.equal(torch.get_rng_state(), before[0])
        and (np.random.get_state()[1] == before[1]).all()
    )
    assert forecaster.device == "cpu" and forecaster.preprocessor.fitted
    loaded = cls.load(forecaster.save(tmp_path / "checkpoint"))
    pd.testing.assert_frame_equal(loaded.predict(cohort(), stride=7), table)
    assert loaded.history == forecaster.history


def test_one_kind_does_not_load_as_another(tmp_path):
    TTMForecaster(config()).fit(cohort()).save(tmp_path / "ttm")
    LinearRegression(config()).fit(cohort()).save(tmp_path / "lin")
    with pytest.raises(
        ValueError, match="holds a TTMForecaster checkpoint, not a LinearRegression"
    ):
        LinearRegression.load(tmp_path / "ttm")
    with pytest.raises(
        ValueError, match="holds a LinearRegression checkpoint, not a TTMForecaster"
    ):
        TTMForecaster.load(tmp_path / "lin")
    with pytest.raises(TypeError, match=r"LinearRegression\.load\(path\)"):
        LinearRegression(config()).load(tmp_path / "lin")


def test_a_preprocessor_without_its_imputer_refuses_to_transform():
    pre = Preprocessor(config().to_data_config()).fit(
        *Preprocessor(config().to_data_config()).prepare(cohort())
    )
    state = {
        **pre.to_dict(),
        "config": {**pre.config.to_dict(), "imputation_strategy": "ttt_imputer"},
    }
    restored = Preprocessor.from_dict(state)
    with pytest.raises(RuntimeError, match="holds none"):
        restored.transform(cohort())
    with pytest.raises(ValueError, match="holds none"):
        restored.load_imputer("/nonexistent")

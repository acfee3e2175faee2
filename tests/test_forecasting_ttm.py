import logging

import numpy as np
import pandas as pd
import pytest

from tsgen.forecasting import (
    TTMConfig,
    TTMForecaster,
    create_ttm_zero_shot_config,
    hub_reachable,
    ttm_r2_architecture,
)

CTX, FL = 32, 6


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """A model this small trains faster on one thread; two fight over a busy 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def cohort(n=140, patients=("p1", "p2"), seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for k, p in enumerate(patients):
        t = pd.date_range("2024-01-01", periods=n, freq="5min")
        bg = 7 + 2 * np.sin(np.arange(n) / 8 + k) + rng.normal(0, 0.1, n)
        parts.append(pd.DataFrame({"datetime": t, "p_num": p, "bg_mM": bg, "iob": rng.uniform(0, 1, n)}))
    return pd.concat(parts, ignore_index=True)


def config(**kw):
    values = dict(model_path=None, context_length=CTX, forecast_length=FL, num_epochs=2, batch_size=16,
                  progress=False, device="cpu", training_mode="from_scratch")
    return TTMConfig(**{**values, **kw})


@pytest.fixture(scope="module")
def trained():
    return TTMForecaster(config()).fit(cohort())


def test_r2_architecture_matches_the_published_model():
    from tsfm_public.models.tinytimemixer import TinyTimeMixerForPrediction

    cfg = ttm_r2_architecture(512, 96)
    assert (cfg.patch_length, cfg.d_model, cfg.num_layers, cfg.adaptive_patching_levels) == (64, 192, 2, 3)
    assert (cfg.decoder_d_model, cfg.decoder_num_layers, cfg.head_dropout) == (128, 2, 0.7)
    assert sum(p.numel() for p in TinyTimeMixerForPrediction(cfg).parameters()) == 805_280
    with pytest.raises(ValueError, match="multiple of 8"):
        ttm_r2_architecture(100, 12)


def test_offline_fallback_says_what_it_did(caplog, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not hub_reachable()
    with caplog.at_level(logging.WARNING, logger="tsgen.forecasting.ttm"):
        f = TTMForecaster(config(model_path="ibm-granite/granite-timeseries-ttm-r2", training_mode="fine_tune"))
    assert "RANDOM weights" in caplog.text and "no hub access" in caplog.text
    assert f.weights_source.startswith("random init")
    with caplog.at_level(logging.WARNING, logger="tsgen.forecasting.ttm"):
        TTMForecaster(config(model_path=None, training_mode="fine_tune"))
    assert "model_path is None" in caplog.text


def test_predict_table(trained):
    table = trained.predict(cohort(n=60), stride=4)
    assert list(table.columns) == ["p_num", "origin", "horizon_min", "time", "bg_mM", "bg_mgdl",
                                   "bg_mM_true", "bg_mgdl_true"]
    assert sorted(table.horizon_min.unique()) == [5 * h for h in range(1, FL + 1)]
    assert np.isfinite(table.bg_mM).all()
    np.testing.assert_allclose(table.bg_mgdl, table.bg_mM * 18.016)
    # Origins at the end of the data forecast into the unknown: no observed value there.
    last = table[table.origin == table.origin.max()]
    assert last.bg_mM_true.isna().any()
    assert (table.time - table.origin == pd.to_timedelta(table.horizon_min, unit="min")).all()
    assert trained.history and "eval_loss" in trained.history[0]


def test_evaluate_reports_clinical_metrics(trained):
    scores = trained.evaluate(cohort(n=80), horizons=(15, 30))
    assert list(scores.index) == [15, 30]
    assert scores.filter(like="zone").sum(axis=1).round(6).tolist() == [1.0, 1.0]
    assert (scores["n"] == scores["n"].iloc[0]).all()  # the same origins at every horizon


def test_save_load_round_trip(trained, tmp_path):
    path = trained.save(tmp_path / "ttm")
    assert {"config.json", "preprocessor.json", "metadata.json"} <= {p.name for p in path.iterdir()}
    assert (path / "model" / "model.safetensors").exists()
    loaded = TTMForecaster.load(path)
    data = cohort(n=60, seed=3)
    pd.testing.assert_frame_equal(trained.predict(data), loaded.predict(data))
    assert loaded.config.training_mode == "from_scratch"


def test_save_load_round_trip_with_the_ttt_imputer(tmp_path):
    rng = np.random.default_rng(4)
    data = cohort().assign(bg_mM=lambda d: d.bg_mM.mask(rng.random(len(d)) < 0.1))
    tiny = {"d_model": 8, "n_heads": 2, "d_ffn": 16, "epochs": 2, "patience": None}
    trained = TTMForecaster(config(num_epochs=1, imputation_strategy="ttt", imputation_window=16,
                                   imputer_params=tiny)).fit(data)
    path = trained.save(tmp_path / "ttm")
    assert (path / "imputer" / "weights.safetensors").exists() and (path / "imputer" / "config.json").exists()
    loaded = TTMForecaster.load(path)
    assert loaded.preprocessor.imputer is not None and loaded.config.imputation_window == 16
    test = cohort(n=60, seed=3).assign(bg_mM=lambda d: d.bg_mM.mask(rng.random(len(d)) < 0.1))
    table = trained.predict(test)
    pd.testing.assert_frame_equal(table, loaded.predict(test))
    # imputed readings are never scored: their observed value is NaN in the table
    gaps = test[test.bg_mM.isna()].set_index(["p_num", "datetime"]).index
    at_gaps = table.set_index(["p_num", "time"]).index.isin(gaps)
    assert at_gaps.any() and table.bg_mM_true[at_gaps].isna().all() and table.bg_mM_true[~at_gaps].notna().any()


def test_zero_shot_from_local_checkpoint(trained, tmp_path):
    path = trained.save(tmp_path / "pretrained")
    zero = TTMForecaster(create_ttm_zero_shot_config(model_path=str(path), context_length=CTX, forecast_length=FL,
                                                     device="cpu", progress=False))
    assert zero.weights_source.startswith("local checkpoint")
    data = cohort(n=60, patients=("new",), seed=5)
    pd.testing.assert_frame_equal(zero.predict_zero_shot(data), trained.predict(data))
    with pytest.raises(ValueError, match="does not train"):
        zero.fit(data)


def test_training_is_deterministic():
    data = cohort()
    a = TTMForecaster(config(num_epochs=1)).fit(data).predict(data, stride=10)
    b = TTMForecaster(config(num_epochs=1)).fit(data).predict(data, stride=10)
    pd.testing.assert_frame_equal(a, b)


def test_covariates_with_channel_mixing():
    f = TTMForecaster(config(input_features=["iob"], decoder_mode="mix_channel", num_epochs=1)).fit(cohort())
    assert f.preprocessor.channels == ["bg_mM", "iob"]
    assert np.isfinite(f.predict(cohort(n=40), stride=5).bg_mM).all()


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.rename(columns={"bg_mM": "glucose"}), "lacks column"),
        (lambda d: d.assign(bg_mM=np.where(d.p_num == "p2", np.nan, d.bg_mM)), "all NaN"),
        (lambda d: d.groupby("p_num").head(30), "too short"),
        (lambda d: d.assign(bg_mM=d.bg_mM.where(d.index != 7, -np.inf)), "infinite"),
    ],
)
def test_bad_training_input_is_rejected(mutate, message):
    with pytest.raises(ValueError, match=message):
        TTMForecaster(config()).fit(mutate(cohort()))


def test_unknown_scaler_and_unfitted_predict():
    with pytest.raises(ValueError, match="robust"):
        TTMForecaster(config(scaler_type="robust"))
    with pytest.raises(RuntimeError, match="not fitted"):
        TTMForecaster(config()).predict(cohort())
    with pytest.raises(ValueError, match="no TTM checkpoint"):
        TTMForecaster(config(model_path=".", training_mode="fine_tune"))


def test_tensorboard_logs_and_checkpoints(tmp_path):
    f = TTMForecaster(config(num_epochs=1, logging_dir=str(tmp_path / "tb")))
    f.fit(cohort(), output_dir=tmp_path / "out")
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert list((tmp_path / "out").glob("checkpoint-*"))

import json
import random

import numpy as np
import pandas as pd
import pytest
import torch

from tsgen.forecasting import TTMConfig, TTMForecaster, create_ttm_zero_shot_config

CTX, FL = 32, 6


def cohort(n=140, patients=("p1", "p2"), seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for k, p in enumerate(patients):
        t = pd.date_range("2024-01-01", periods=n, freq="5min")
        bg = 7 + 2 * np.sin(np.arange(n) / 8 + k) + rng.normal(0, 0.1, n)
        parts.append(
            pd.DataFrame(
                {"datetime": t, "p_num": p, "bg_mM": bg, "iob": rng.uniform(0, 1, n)}
            )
        )
    return pd.concat(parts, ignore_index=True)


def config(**kw):
    values = dict(
        model_path=None,
        context_length=CTX,
        forecast_length=FL,
        num_epochs=2,
        batch_size=16,
        device="cpu",
        training_mode="from_scratch",
    )
    return TTMConfig(**{**values, **kw})


@pytest.fixture(scope="module")
def trained():
    return TTMForecaster(config()).fit(cohort())


def test_device_defaults_to_the_config():
    assert TTMForecaster(config()).device == "cpu"
    assert TTMForecaster(config(device="auto"), device="cpu").device == "cpu"
    with pytest.raises(TypeError, match="needs a TTMConfig"):
        TTMForecaster({"context_length": CTX})


def test_predict_table(trained):
    table = trained.predict(cohort(n=60), stride=4)
    assert list(table.columns) == [
        "p_num",
        "origin",
        "horizon_min",
        "time",
        "bg_mM",
        "bg_mgdl",
        "bg_mM_true",
        "bg_mgdl_true",
    ]
    assert sorted(table.horizon_min.unique()) == [5 * h for h in range(1, FL + 1)]
    assert np.isfinite(table.bg_mM).all()
    np.testing.assert_allclose(table.bg_mgdl, table.bg_mM * 18.016)
    # Origins at the end of the data forecast into the unknown: no observed value there.
    last = table[table.origin == table.origin.max()]
    assert last.bg_mM_true.isna().any()
    assert (
        table.time - table.origin == pd.to_timedelta(table.horizon_min, unit="min")
    ).all()
    assert [row["epoch"] for row in trained.history] == [1, 2]
    assert {"loss", "eval_loss"} <= set(trained.history[0])


def test_evaluate_reports_clinical_metrics(trained):
    scores = trained.evaluate(cohort(n=80), horizons=(15, 30))
    assert list(scores.index) == [15, 30]
    assert scores.filter(like="zone").sum(axis=1).round(6).tolist() == [1.0, 1.0]
    # the same origins at every horizon
    assert (scores["n"] == scores["n"].iloc[0]).all()


def test_save_load_round_trip(trained, tmp_path):
    path = trained.save(tmp_path / "ttm")
    assert {p.name for p in path.iterdir()} == {
        "config.json",
        "weights.safetensors",
        "state.json",
    }
    state = json.loads((path / "state.json").read_text())
    assert state["kind"] == "TTMForecaster" and state["history"] == trained.history
    assert state["network"]["context_length"] == CTX and state[
        "weights_source"
    ].startswith("random (")
    loaded = TTMForecaster.load(path)
    data = cohort(n=60, seed=3)
    pd.testing.assert_frame_equal(trained.predict(data), loaded.predict(data))
    assert loaded.config == trained.config and loaded.n_windows == trained.n_windows
    with pytest.raises(FileExistsError):
        trained.save(path)


def test_the_seeds_instance_load_says_what_to_write(trained, tmp_path):
    path = trained.save(tmp_path / "ttm")
    with pytest.raises(TypeError, match=r"TTMForecaster\.load\(path\)"):
        TTMForecaster(config()).load(path)


def test_fit_and_predict_leave_the_callers_generators_alone(trained):
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    before = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    forecaster = TTMForecaster(config(num_epochs=1))
    forecaster.fit(cohort()).predict(cohort(n=60), stride=10)
    assert torch.equal(torch.get_rng_state(), before[0])
    assert (
        np.random.get_state()[1] == before[1]
    ).all() and random.getstate() == before[2]


def test_save_load_round_trip_with_the_ttt_imputer(tmp_path):
    rng = np.random.default_rng(4)
    data = cohort().assign(bg_mM=lambda d: d.bg_mM.mask(rng.random(len(d)) < 0.1))
    tiny = {"d_model": 8, "n_heads": 2, "d_ffn": 16, "epochs": 2, "patience": None}
    trained = TTMForecaster(
        config(
            num_epochs=1,
            imputation_strategy="ttt_imputer",
            imputation_window=16,
            imputer_params=tiny,
        )
    ).fit(data)
    path = trained.save(tmp_path / "ttm")
    assert (path / "imputer" / "weights.safetensors").exists() and (
        path / "imputer" / "config.json"
    ).exists()
    loaded = TTMForecaster.load(path)
    assert (
        loaded.preprocessor.imputer is not None
        and loaded.config.imputation_window == 16
    )
    test = cohort(n=60, seed=3).assign(
        bg_mM=lambda d: d.bg_mM.mask(rng.random(len(d)) < 0.1)
    )
    table = trained.predict(test)
    pd.testing.assert_frame_equal(table, loaded.predict(test))
    # imputed readings are never scored: their observed value is NaN in the table
    gaps = test[test.bg_mM.isna()].set_index(["p_num", "datetime"]).index
    at_gaps = table.set_index(["p_num", "time"]).index.isin(gaps)
    assert (
        at_gaps.any()
        and table.bg_mM_true[at_gaps].isna().all()
        and table.bg_mM_true[~at_gaps].notna().any()
    )


def test_zero_shot_from_a_saved_forecaster(trained, tmp_path):
    path = trained.save(tmp_path / "pretrained")
    zero = TTMForecaster(
        create_ttm_zero_shot_config(
            model_path=str(path), context_length=CTX, forecast_length=FL, device="cpu"
        )
    )
    assert (
        zero.weights_source.startswith("local checkpoint") and zero.preprocessor.fitted
    )
    data = cohort(n=60, patients=("new",), seed=5)
    pd.testing.assert_frame_equal(zero.predict_zero_shot(data), trained.predict(data))
    with pytest.raises(ValueError, match="does not train"):
        zero.fit(data)


def test_fine_tuning_starts_from_the_saved_weights(trained, tmp_path):
    path = trained.save(tmp_path / "pretrained")
    tuned = TTMForecaster(config(model_path=str(path), training_mode="fine_tune"))
    for key, value in trained.model.state_dict().items():
        torch.testing.assert_close(tuned.model.state_dict()[key], value)


def test_training_is_deterministic():
    data = cohort()
    a = TTMForecaster(config(num_epochs=1)).fit(data).predict(data, stride=10)
    b = TTMForecaster(config(num_epochs=1)).fit(data).predict(data, stride=10)
    pd.testing.assert_frame_equal(a, b)


def test_covariates_with_channel_mixing():
    f = TTMForecaster(
        config(input_features=["iob"], decoder_mode="mix_channel", num_epochs=1)
    ).fit(cohort())
    assert f.preprocessor.channels == ["bg_mM", "iob"]
    assert np.isfinite(f.predict(cohort(n=40), stride=5).bg_mM).all()


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.rename(columns={"bg_mM": "glucose"}), "lacks column"),
        (
            lambda d: d.assign(bg_mM=np.where(d.p_num == "p2", np.nan, d.bg_mM)),
            "all NaN",
        ),
        (lambda d: d.groupby("p_num").head(30), "too short"),
        (lambda d: d.assign(bg_mM=d.bg_mM.where(d.index != 7, -np.inf)), "infinite"),
    ],
)
def test_bad_training_input_is_rejected(mutate, message):
    with pytest.raises(ValueError, match=message):
        TTMForecaster(config()).fit(mutate(cohort()))


def test_unfitted_predict_and_a_missing_checkpoint():
    with pytest.raises(RuntimeError, match="not fitted"):
        TTMForecaster(config()).predict(cohort())
    with pytest.raises(ValueError, match="no TTM checkpoint"):
        TTMForecaster(config(model_path=".", training_mode="fine_tune"))


def test_tensorboard_logs_and_checkpoints(tmp_path):
    f = TTMForecaster(config(num_epochs=1))
    f.fit(cohort(), logging_dir=tmp_path / "tb", output_dir=tmp_path / "out")
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert list((tmp_path / "out").glob("checkpoint-*"))
    TTMForecaster(config(num_epochs=1, logging_dir=str(tmp_path / "from_config"))).fit(
        cohort()
    )
    assert list((tmp_path / "from_config").rglob("events.out.tfevents.*"))


def test_a_later_reading_never_changes_a_forecast(trained):
    """The look-ahead test: a gap just before an origin is filled from the context only."""
    data = cohort(n=60, patients=("p1",))
    data.loc[38:40, "bg_mM"] = np.nan  # a gap ending at the origin (index 40)
    later = data.copy()
    later.loc[41, "bg_mM"] = 20.0  # the reading after the gap, far off
    a, b = (trained.predict(d.iloc[:42]) for d in (data, later))
    origin = data.datetime.iloc[40]
    np.testing.assert_array_equal(
        a[a.origin == origin].bg_mM.to_numpy(), b[b.origin == origin].bg_mM.to_numpy()
    )


def test_the_seed_usage_pattern(tmp_path):
    cfg = config(num_epochs=1, loss_function="huber")
    model = TTMForecaster(cfg, distributed_config=None)
    model.fit(cohort())
    table = model.predict(cohort(n=60), batch_size=32)
    path = model.save(tmp_path / "ttm")
    loaded = TTMForecaster.load(path)
    pd.testing.assert_frame_equal(loaded.predict(cohort(n=60), batch_size=7), table)
    zero = TTMForecaster(
        create_ttm_zero_shot_config(
            model_path=str(path),
            context_length=CTX,
            forecast_length=FL,
            num_epochs=0,
            device="cpu",
        )
    )
    pd.testing.assert_frame_equal(zero.predict_zero_shot(cohort(n=60)), table)
    assert zero.weights_source == f"local checkpoint {path}"
    with pytest.raises(
        ValueError, match="context of 32 steps but config.context_length"
    ):
        TTMForecaster(
            config(model_path=str(path), training_mode="fine_tune", context_length=64)
        )
    with pytest.raises(ValueError, match="not TrainingArguments for a distributed run"):
        TTMForecaster(cfg, distributed_config={"learning_rate": 1.0})
    with pytest.raises(ValueError, match="loss_function"):
        config(loss_function="pinball")


def test_a_checkpoint_without_its_preprocessor_is_rejected(trained, tmp_path):
    path = trained.save(tmp_path / "ttm")
    state = json.loads((path / "state.json").read_text())
    del state["preprocessor"]
    (path / "state.json").write_text(json.dumps(state))
    with pytest.raises(ValueError, match="preprocessor"):
        TTMForecaster.load(path)
    with pytest.raises(ValueError, match="preprocessor"):
        TTMForecaster(config(model_path=str(path), training_mode="fine_tune"))

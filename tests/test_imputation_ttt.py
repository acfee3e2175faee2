"""TTTImputer: the PyPOTS estimator, test-time adaptation, checkpoints, input checks."""

import json

import numpy as np
import pytest
import torch
from pypots.imputation.base import BaseNNImputer

from tsgen.data import add_missingness, make_sines
from tsgen.imputation import TTTImputer, TTTImputerConfig
from tsgen.metrics.imputation import imputation_errors

SMALL = dict(d_model=16, n_heads=2, n_layers=1, d_ffn=32, mini_batch_size=6, batch_size=16, epochs=3, patience=2)


@pytest.fixture(scope="module")
def data():
    X = make_sines(120, length=12, n_features=3, seed=0)
    return {
        "train": add_missingness(X[:80], "point", 0.3, seed=1),
        "val": add_missingness(X[80:100], "point", 0.3, seed=2),
        "test": add_missingness(X[100:], "point", 0.3, seed=3),
    }


@pytest.fixture(scope="module")
def fitted(data):
    imputer = TTTImputer(12, 3, **SMALL)
    imputer.fit({"X": data["train"]["X"]}, data["val"])
    return imputer


def test_is_a_pypots_imputer_with_history(fitted):
    assert isinstance(fitted, BaseNNImputer)
    frame = fitted.history.frame()
    assert list(frame.index) == list(range(1, len(frame) + 1)) and 1 <= len(frame) <= 3
    assert {"train_loss", "train_ORT_loss", "train_MIT_loss", "val_MSE"} <= set(frame.columns)
    assert 1 <= fitted.history.best_epoch <= len(frame)
    # the kept weights are those of the best validation epoch
    assert frame["val_MSE"].min() == pytest.approx(fitted.best_loss)


def test_imputation_shape_and_observed_entries_unchanged(fitted, data):
    test = data["test"]
    out = fitted.predict({"X": test["X"]})
    assert out["imputation"].shape == out["reconstruction"].shape == test["X"].shape
    observed = ~np.isnan(test["X"])
    np.testing.assert_array_equal(out["imputation"][observed], test["X"][observed].astype(np.float32))
    assert np.isfinite(out["imputation"]).all()
    # trained, it beats filling with zeros by far
    mae = imputation_errors(out["imputation"], test["X_ori"], test["indicating_mask"])["mae"]
    zeros = imputation_errors(np.nan_to_num(test["X"]), test["X_ori"], test["indicating_mask"])["mae"]
    assert mae < 0.5 * zeros


def test_training_is_seeded(data):
    runs = []
    for _ in range(2):
        imputer = TTTImputer(12, 3, **{**SMALL, "epochs": 1, "patience": None})
        imputer.fit({"X": data["train"]["X"]}, data["val"])
        runs.append(imputer.impute({"X": data["test"]["X"]}))
    np.testing.assert_array_equal(*runs)


ADAPT = {"num_steps": 3, "lr": 1e-2, "parameters": "all"}


def test_adaptation_changes_the_imputation_and_restores_weights(fitted, data):
    X = {"X": data["test"]["X"]}
    before = {k: v.clone() for k, v in fitted.model.state_dict().items()}
    plain = fitted.impute(X)
    adapted = fitted.impute(X, adaptation=ADAPT)
    again = fitted.impute(X, adaptation=ADAPT)
    assert np.abs(adapted - plain).max() > 1e-5  # adaptation did something
    np.testing.assert_array_equal(adapted, again)  # ... and nothing carried over
    for k, v in fitted.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    np.testing.assert_array_equal(fitted.impute(X), plain)
    observed = ~np.isnan(X["X"])
    np.testing.assert_array_equal(adapted[observed], X["X"][observed].astype(np.float32))


def test_adaptation_is_independent_of_batch_order(fitted, data):
    X = data["test"]["X"]  # 20 samples, batch_size 16: batches [0:16] and [16:20]
    together = fitted.impute({"X": X}, adaptation=ADAPT)
    second_first = fitted.impute({"X": X[16:]}, adaptation=ADAPT)
    first_after = fitted.impute({"X": X[:16]}, adaptation=ADAPT)
    np.testing.assert_array_equal(together[16:], second_first)
    np.testing.assert_array_equal(together[:16], first_after)


def test_adaptation_from_config_and_of_a_submodule(data):
    imputer = TTTImputer(12, 3, **SMALL, adaptation={"num_steps": 1, "lr": 1e-2, "parameters": "encoder"})
    assert imputer.config.adaptation["parameters"] == "encoder"
    assert imputer.impute({"X": data["test"]["X"]}).shape == data["test"]["X"].shape
    with pytest.raises(ValueError, match="no layer"):
        imputer.impute({"X": data["test"]["X"]}, adaptation={"num_steps": 1, "parameters": "decoder"})


def test_save_load_gives_identical_imputations(fitted, data, tmp_path):
    X = {"X": data["test"]["X"]}
    path = fitted.save(tmp_path / "ckpt")
    assert {p.name for p in path.iterdir()} == {"config.json", "weights.safetensors", "history.json"}
    loaded = TTTImputer.from_saved(path)
    np.testing.assert_array_equal(loaded.impute(X), fitted.impute(X))
    np.testing.assert_array_equal(loaded.impute(X, adaptation=ADAPT), fitted.impute(X, adaptation=ADAPT))
    assert loaded.history.epochs == fitted.history.epochs
    with pytest.raises(FileExistsError):
        fitted.save(path)
    other = TTTImputer(12, 3, **{**SMALL, "d_model": 32})
    with pytest.raises(ValueError, match="d_model"):
        other.load(path)
    with pytest.raises(ValueError, match="no TTTImputer checkpoint"):
        other.load(tmp_path)


def test_config_round_trip_and_bad_parameters():
    config = TTTImputerConfig(24, 5, layer_type="mlp", adaptation={"num_steps": 2})
    assert TTTImputerConfig.from_json(config.to_json()) == config
    assert json.loads(config.to_json())["adaptation"]["num_steps"] == 2
    with pytest.raises(ValueError, match="unknown field.*d_modle"):
        TTTImputer(12, 3, d_modle=16)
    with pytest.raises(ValueError, match="layer_type"):
        TTTImputerConfig(12, 3, layer_type="gru")
    with pytest.raises(ValueError, match="multiple of n_heads"):
        TTTImputerConfig(12, 3, d_model=10, n_heads=4)
    with pytest.raises(ValueError, match="unknown optimization parameter"):
        TTTImputerConfig(12, 3, adaptation={"steps": 2})


def test_bad_input_gets_a_clear_error(fitted, data):
    X = data["test"]["X"].copy()
    all_nan = X.copy()
    all_nan[2] = np.nan
    with pytest.raises(ValueError, match="all-NaN"):
        fitted.impute({"X": all_nan})
    with_inf = X.copy()
    with_inf[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        fitted.impute({"X": with_inf})
    with pytest.raises(ValueError, match="4 features"):
        fitted.impute({"X": np.concatenate([X, X[..., :1]], axis=-1)})
    with pytest.raises(ValueError, match="must be 3-D"):
        fitted.impute({"X": X[0]})
    with pytest.raises(ValueError, match="needs a val_set"):
        fitted.fit({"X": data["train"]["X"]})
    with pytest.raises(ValueError, match="X_ori"):
        fitted.fit({"X": data["train"]["X"]}, {"X": data["val"]["X"]})

"""TTTImputer: the PyPOTS estimator on the tsgen contract, adaptation by any engine, checkpoints."""

import json

import numpy as np
import pytest
import torch
from pypots.imputation.base import BaseNNImputer

from tsgen.adaptation import (
    BaseEngine,
    available_engines,
    register,
    replace_inputs,
    split_inputs,
)
from tsgen.adaptation.registry import _REGISTRY
from tsgen.data import add_missingness, make_sines
from tsgen.estimator import Estimator
from tsgen.imputation import TTTImputer, TTTImputerConfig
from tsgen.metrics.imputation import imputation_errors

SMALL = dict(
    d_model=16,
    n_heads=2,
    n_layers=1,
    d_ffn=32,
    mini_batch_size=6,
    batch_size=16,
    epochs=3,
    patience=2,
)
TINY = dict(
    d_model=8, n_heads=2, n_layers=1, d_ffn=8, batch_size=16, epochs=1, patience=None
)
ADAPT = {"num_steps": 3, "lr": 1e-2, "parameters": "all"}


def config(**changes) -> TTTImputerConfig:
    return TTTImputerConfig(12, 3, **{**SMALL, **changes})


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
    return TTTImputer(config()).fit({"X": data["train"]["X"]}, data["val"])


def rng_states():
    return torch.get_rng_state(), np.random.get_state()[1].copy()


def test_is_a_pypots_imputer_and_a_tsgen_estimator_with_history(fitted):
    assert isinstance(fitted, BaseNNImputer) and isinstance(fitted, Estimator)
    assert fitted.device == "cpu" and fitted.kind == "TTTImputer"
    history = fitted.history
    assert [row["epoch"] for row in history] == list(
        range(1, len(history) + 1)
    ) and 1 <= len(history) <= 3
    assert {"train_loss", "train_ORT_loss", "train_MIT_loss", "val_MSE"} <= set(
        history[0]
    )
    assert 1 <= fitted.best_epoch <= len(history)
    # the kept weights are those of the best validation epoch
    assert min(row["val_MSE"] for row in history) == pytest.approx(fitted.best_loss)


def test_imputation_shape_and_observed_entries_unchanged(fitted, data):
    test = data["test"]
    out = fitted.predict({"X": test["X"]})
    assert out["imputation"].shape == out["reconstruction"].shape == test["X"].shape
    observed = ~np.isnan(test["X"])
    # exactly the caller's values, not their float32 copies
    assert out["imputation"].dtype == test["X"].dtype
    np.testing.assert_array_equal(out["imputation"][observed], test["X"][observed])
    assert np.isfinite(out["imputation"]).all()
    # trained, it beats filling with zeros by far
    mae = imputation_errors(out["imputation"], test["X_ori"], test["indicating_mask"])[
        "mae"
    ]
    zeros = imputation_errors(
        np.nan_to_num(test["X"]), test["X_ori"], test["indicating_mask"]
    )["mae"]
    assert mae < 0.5 * zeros


def test_training_is_seeded_and_leaves_the_callers_generators_alone(data):
    before = rng_states()
    runs = [
        TTTImputer(config(**TINY))
        .fit({"X": data["train"]["X"]}, data["val"])
        .impute({"X": data["test"]["X"]})
        for _ in range(2)
    ]
    np.testing.assert_array_equal(*runs)
    after = rng_states()
    assert torch.equal(before[0], after[0]) and np.array_equal(before[1], after[1])


def test_without_validation_every_epoch_is_trained_and_the_last_kept(data, tmp_path):
    imputer = TTTImputer(config(epochs=3, patience=1))
    imputer.fit({"X": data["train"]["X"]}, logging_dir=tmp_path / "runs")
    assert [row["epoch"] for row in imputer.history] == [
        1,
        2,
        3,
    ] and imputer.best_epoch == 3
    assert "val_MSE" not in imputer.history[0]
    assert list((tmp_path / "runs").iterdir())  # TensorBoard scalars


def test_training_loss_option_is_the_error_of_the_ort_and_mit_terms(data):
    """ "mae" (SAITS's, the default) and "mse" (the seed's) give different losses and weights."""
    batch = {
        "X": torch.tensor(np.nan_to_num(data["val"]["X"]), dtype=torch.float32),
        "missing_mask": torch.tensor(data["val"]["missing_mask"]),
        "X_ori": torch.tensor(np.nan_to_num(data["val"]["X_ori"]), dtype=torch.float32),
        "indicating_mask": torch.tensor(data["val"]["indicating_mask"]),
    }
    losses = {}
    for name in ("mae", "mse"):
        imputer = TTTImputer(config(training_loss=name))
        imputer.model.train()
        out = imputer.model(batch, calc_criterion=True)
        gap = out["reconstruction"] - batch["X_ori"]
        error = gap.abs() if name == "mae" else gap**2
        mask = batch["indicating_mask"]
        expected = (error * mask).sum() / (mask.sum() + 1e-12)
        torch.testing.assert_close(out["MIT_loss"], expected)
        losses[name] = float(out["loss"].detach())
    assert TTTImputerConfig(12, 3).training_loss == "mae"
    assert losses["mae"] != pytest.approx(losses["mse"])
    trained = [
        TTTImputer(config(training_loss=name, epochs=1, patience=None))
        .fit({"X": data["train"]["X"]})
        .impute({"X": data["test"]["X"]})
        for name in ("mae", "mse")
    ]
    assert not np.allclose(*trained)


def test_inner_lr_scaling_reaches_every_ttt_layer(data):
    scalings = {}
    for name in ("constant", "inverse_position"):
        imputer = TTTImputer(config(inner_lr_scaling=name))
        seen = {
            m.inner_lr_scaling
            for m in imputer.model.encoder.modules()
            if hasattr(m, "inner_lr_scaling")
        }
        assert seen == {name}
        scalings[name] = imputer.model(
            {
                "X": torch.tensor(
                    np.nan_to_num(data["test"]["X"]), dtype=torch.float32
                ),
                "missing_mask": torch.tensor(data["test"]["missing_mask"]),
            }
        )["reconstruction"]
    assert not torch.allclose(scalings["constant"], scalings["inverse_position"])


def test_predict_before_fit_is_an_error(data):
    with pytest.raises(RuntimeError, match="not trained"):
        TTTImputer(config()).impute({"X": data["test"]["X"]})


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
    np.testing.assert_array_equal(adapted[observed], X["X"][observed])


def test_adaptation_is_independent_of_batch_order_and_keeps_the_global_generators(
    fitted, data
):
    X = data["test"]["X"]  # 20 samples, batch_size 16: batches [0:16] and [16:20]
    before = rng_states()
    together = fitted.impute({"X": X}, adaptation=ADAPT)
    second_first = fitted.impute({"X": X[16:]}, adaptation=ADAPT)
    first_after = fitted.impute({"X": X[:16]}, adaptation=ADAPT)
    np.testing.assert_array_equal(together[16:], second_first)
    np.testing.assert_array_equal(together[:16], first_after)
    after = rng_states()
    assert torch.equal(before[0], after[0]) and np.array_equal(before[1], after[1])


def test_adaptation_from_config_and_of_a_submodule(data):
    imputer = TTTImputer(
        config(**TINY, adaptation={"num_steps": 1, "lr": 1e-2, "parameters": "encoder"})
    )
    imputer.fit({"X": data["train"]["X"]})
    assert imputer.config.adaptation["parameters"] == "encoder"
    assert imputer.impute({"X": data["test"]["X"]}).shape == data["test"]["X"].shape
    with pytest.raises(ValueError, match="no layer"):
        imputer.impute(
            {"X": data["test"]["X"]},
            adaptation={"num_steps": 1, "parameters": "decoder"},
        )


@pytest.mark.parametrize(
    "engine, options",
    [
        ("it3", {}),
        ("masked", {"mask_ratio": 0.3}),
        ("tail_forecast", {"tail_length": 3}),
    ],
)
def test_every_registered_engine_adapts_the_imputer(data, engine, options):
    # engines with heads train them beside the imputer
    weight = 0.0 if engine == "tail_forecast" else 0.5
    imputer = TTTImputer(
        config(
            **TINY,
            adaptation_engine=engine,
            engine_options=options,
            engine_weight=weight,
        )
    )
    imputer.fit({"X": data["train"]["X"]}, data["val"])
    if weight:
        assert "train_engine_loss" in imputer.history[0]
    X = {"X": data["test"]["X"]}
    adapted = imputer.impute(X, adaptation=ADAPT)
    assert (
        np.isfinite(adapted).all() and np.abs(adapted - imputer.impute(X)).max() > 1e-6
    )


def test_an_engine_with_untrained_heads_refuses_to_adapt(data):
    # engine_weight 0: the head never learns
    imputer = TTTImputer(config(**TINY, adaptation_engine="masked"))
    imputer.fit({"X": data["train"]["X"]})
    with pytest.raises(
        ValueError, match="'masked' adapts through its own.*engine_weight > 0"
    ):
        imputer.impute({"X": data["test"]["X"]}, adaptation=ADAPT)


def test_an_engine_that_cannot_be_built_is_named():
    with pytest.raises(
        ValueError, match="adaptation_engine 'it3' cannot be built.*'decoder'"
    ):
        TTTImputer(config(adaptation_engine="it3", engine_layer="decoder"))
    with pytest.raises(
        ValueError, match="adaptation_engine 'masked' cannot be built.*warp"
    ):
        TTTImputer(config(adaptation_engine="masked", engine_options={"warp": 2}))


def test_an_engine_registered_by_a_student_is_built_by_name(data):
    name = "test_imputation_ttt_model.jitter"

    @register(name)
    class JitterEngine(BaseEngine):
        """Reconstruct the observed entries from a jittered copy of the input (no heads)."""

        def __init__(self, model, scale=0.1, optimization_parameters=None, seed=0):
            super().__init__(model, optimization_parameters, seed)
            self.scale = scale

        def ttt_forward(self, inputs, target=None):
            x, mask = split_inputs(inputs)
            noise = self.scale * (self.rand(x.shape, x.device) - 0.5)
            recon = self.model(replace_inputs(inputs, x + noise * mask, mask))
            return self.model(inputs), ((recon - x).pow(2) * mask).sum() / mask.sum()

    try:
        assert name in available_engines()
        imputer = TTTImputer(
            config(**TINY, adaptation_engine=name, engine_options={"scale": 0.5})
        )
        assert isinstance(imputer.engine, JitterEngine) and imputer.engine.scale == 0.5
        imputer.fit({"X": data["train"]["X"]})
        X = {"X": data["test"]["X"]}
        assert (
            np.abs(imputer.impute(X, adaptation=ADAPT) - imputer.impute(X)).max() > 1e-6
        )
    finally:
        del _REGISTRY[name]


def test_save_load_gives_identical_imputations(fitted, data, tmp_path):
    X = {"X": data["test"]["X"]}
    path = fitted.save(tmp_path / "ckpt")
    assert {p.name for p in path.iterdir()} == {
        "config.json",
        "weights.safetensors",
        "state.json",
    }
    state = json.loads((path / "state.json").read_text())
    assert state["kind"] == "TTTImputer" and state["best_epoch"] == fitted.best_epoch
    loaded = TTTImputer.load(path)
    np.testing.assert_array_equal(loaded.impute(X), fitted.impute(X))
    np.testing.assert_array_equal(
        loaded.impute(X, adaptation=ADAPT), fitted.impute(X, adaptation=ADAPT)
    )
    assert loaded.history == fitted.history and loaded.best_epoch == fitted.best_epoch
    with pytest.raises(FileExistsError):
        fitted.save(path)
    with pytest.raises(TypeError, match="TTTImputer.load\\(path\\)"):
        fitted.load(path)


def test_engine_heads_are_saved(data, tmp_path):
    imputer = TTTImputer(config(**TINY, adaptation_engine="masked", engine_weight=0.5))
    imputer.fit({"X": data["train"]["X"]})
    loaded = TTTImputer.load(imputer.save(tmp_path / "masked"))
    X = {"X": data["test"]["X"]}
    np.testing.assert_array_equal(
        loaded.impute(X, adaptation=ADAPT), imputer.impute(X, adaptation=ADAPT)
    )


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
    with pytest.raises(ValueError, match="X_ori"):
        fitted.fit({"X": data["train"]["X"]}, {"X": data["val"]["X"]})
    with pytest.raises(ValueError, match="adaptation must be a dict"):
        fitted.impute({"X": X}, adaptation=3)
    with pytest.raises(TypeError, match="needs a TTTImputerConfig"):
        TTTImputer({"n_steps": 12, "n_features": 3})

"""TTTForecaster: the estimator contract, every registered engine by name, checkpoints, input checks."""

import random

import numpy as np
import pytest
import torch

from tsgen.adaptation import (
    BaseEngine,
    TTTForecaster,
    TTTForecasterConfig,
    available_engines,
    register,
    shifted_sines,
)
from tsgen.adaptation.registry import _REGISTRY

# the tiniest config that trains (about 0.05 s on one CPU core)
SMALL = dict(
    context_length=12,
    horizon=4,
    n_features=2,
    hidden=16,
    epochs=3,
    batch_size=32,
    adaptation={"num_steps": 2, "lr": 1e-3},
)
FORECASTING_ENGINES = ["it3", "masked", "tail_forecast"]


def tiny(engine="it3", **overrides):
    return TTTForecasterConfig(**{**SMALL, "engine": engine, **overrides})


@pytest.fixture(scope="module")
def windows():
    return shifted_sines(128, length=16, n_features=2, seed=0)


@pytest.fixture(scope="module")
def fitted(windows):
    return TTTForecaster(tiny("it3")).fit(windows)


def global_states():
    return torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()


def same_states(a, b):
    return torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


@pytest.mark.parametrize("engine", [None, *FORECASTING_ENGINES])
def test_fit_predict_evaluate(engine, windows):
    model = TTTForecaster(tiny(engine))
    assert model.fit(windows) is model
    assert [row["epoch"] for row in model.history] == [1, 2, 3]
    assert model.history[-1]["task_loss"] < model.history[0]["task_loss"]
    assert ("ttt_loss" in model.history[0]) == (engine is not None)
    context = windows[:10, :12]
    plain = model.predict(context, adapt=False)
    assert plain.shape == (10, 4, 2)
    assert set(model.evaluate(windows, adapt=False)) == {"mse", "mae"}
    if engine is None:
        with pytest.raises(ValueError, match="no engine"):
            model.predict(context)
        return
    stored = {k: v.clone() for k, v in model.engine.state_dict().items()}
    adapted = model.predict(context)
    assert not np.array_equal(adapted, plain)
    assert np.array_equal(adapted, model.predict(context))
    assert np.array_equal(model.predict(context, adapt={"num_steps": 0}), plain)
    assert all(torch.equal(v, stored[k]) for k, v in model.engine.state_dict().items())


def test_every_registered_engine_is_built_by_name():
    for name in available_engines():
        if name == "self_reconstruction":
            continue  # needs a model that reconstructs its input: see the next test
        model = TTTForecaster(tiny(name))
        assert model.engine.name == name


def test_self_reconstruction_is_built_then_refused_with_the_reason():
    with pytest.raises(
        ValueError,
        match=r"cannot use engine 'self_reconstruction'.*reconstruction of its input",
    ):
        TTTForecaster(tiny("self_reconstruction"))


def test_an_engine_registered_by_a_student(windows):
    @register("_test_output_smoothness")
    class OutputSmoothness(BaseEngine):
        """Penalises jumps between forecast steps; one option, no head."""

        def __init__(self, model, weight=1.0, optimization_parameters=None, seed=0):
            super().__init__(model, optimization_parameters, seed)
            self.weight = weight

        def ttt_forward(self, inputs, target=None):
            outputs = self.model(inputs)
            return outputs, self.weight * outputs.diff(dim=1).pow(2).mean()

    try:
        model = TTTForecaster(
            tiny("_test_output_smoothness", engine_options={"weight": 2.0})
        ).fit(windows)
        assert isinstance(model.engine, OutputSmoothness) and model.engine.weight == 2.0
        context = windows[:8, :12]
        assert not np.array_equal(
            model.predict(context), model.predict(context, adapt=False)
        )
        with pytest.raises(ValueError, match="does not take engine_options"):
            TTTForecaster(
                tiny("_test_output_smoothness", engine_options={"wieght": 2.0})
            )
    finally:
        _REGISTRY.pop("_test_output_smoothness", None)


def test_engine_options_reach_the_engine():
    assert (
        TTTForecaster(
            tiny("masked", engine_options={"mask_ratio": 0.5})
        ).engine.mask_ratio
        == 0.5
    )
    # default: the horizon
    assert TTTForecaster(tiny("tail_forecast")).engine.tail_length == 4
    assert (
        TTTForecaster(
            tiny("tail_forecast", engine_options={"tail_length": 2})
        ).engine.tail_length
        == 2
    )


def test_same_seed_same_model_and_the_seed_matters(windows):
    a = TTTForecaster(tiny("masked")).fit(windows).predict(windows[:5, :12])
    b = TTTForecaster(tiny("masked")).fit(windows).predict(windows[:5, :12])
    c = TTTForecaster(tiny("masked", seed=1)).fit(windows).predict(windows[:5, :12])
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_the_callers_random_state_is_untouched(windows):
    torch.manual_seed(123)
    before = global_states()
    model = TTTForecaster(tiny("masked")).fit(windows)
    model.predict(windows[:5, :12])
    assert same_states(before, global_states())
    # and the caller's state does not change the model
    torch.manual_seed(999)
    again = TTTForecaster(tiny("masked")).fit(windows)
    assert np.array_equal(
        model.predict(windows[:5, :12]), again.predict(windows[:5, :12])
    )


def test_predict_before_fit_is_an_error(windows):
    with pytest.raises(RuntimeError, match="not trained.*fit"):
        TTTForecaster(tiny()).predict(windows[:2, :12])


def test_save_load_round_trip(tmp_path, fitted, windows):
    fitted.save(tmp_path / "model")
    loaded = TTTForecaster.load(tmp_path / "model")
    assert loaded.config == fitted.config and loaded.history == fitted.history
    context = windows[:8, :12]
    assert np.array_equal(loaded.predict(context), fitted.predict(context))
    assert np.array_equal(
        loaded.predict(context, adapt=False), fitted.predict(context, adapt=False)
    )
    with pytest.raises(FileExistsError):
        fitted.save(tmp_path / "model")
    with pytest.raises(ValueError, match="not a tsgen checkpoint"):
        TTTForecaster.load(tmp_path)
    with pytest.raises(TypeError, match=r"TTTForecaster\.load\(path\)"):
        fitted.load(tmp_path / "model")


def test_plain_model_round_trip(tmp_path, windows):
    model = TTTForecaster(tiny(None)).fit(windows)
    loaded = TTTForecaster.load(model.save(tmp_path / "plain"))
    assert np.array_equal(
        loaded.predict(windows[:4, :12], adapt=False),
        model.predict(windows[:4, :12], adapt=False),
    )


def test_loading_another_kind_is_an_error(tmp_path, fitted):
    from tsgen.estimator import STATE

    path = fitted.save(tmp_path / "model")
    state = (
        (path / STATE)
        .read_text()
        .replace('"kind": "TTTForecaster"', '"kind": "TTTImputer"')
    )
    (path / STATE).write_text(state)
    with pytest.raises(
        ValueError, match="holds a TTTImputer checkpoint, not a TTTForecaster"
    ):
        TTTForecaster.load(path)


def test_logging_dir_gets_tensorboard_scalars(tmp_path, windows):
    TTTForecaster(tiny("tail_forecast", epochs=1)).fit(
        windows, logging_dir=tmp_path / "runs"
    )
    assert list((tmp_path / "runs").glob("events.out.tfevents.*"))


def test_fit_continues_from_the_current_weights(windows):
    model = TTTForecaster(tiny("tail_forecast", epochs=1)).fit(windows).fit(windows)
    assert [row["epoch"] for row in model.history] == [1, 2]


def test_bad_input(windows):
    model = TTTForecaster(tiny("tail_forecast"))
    bad = windows.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(bad)
    with pytest.raises(ValueError, match=r"\[n, 16, 2\]"):
        model.fit(windows[:, :10])
    model.fit(windows)
    with pytest.raises(ValueError, match="infinite"):
        model.predict(np.full((2, 12, 2), np.inf))
    with pytest.raises(ValueError, match="3-D"):
        model.predict(windows[0, :12])
    with pytest.raises(TypeError, match="TTTForecasterConfig"):
        TTTForecaster(SMALL)


@pytest.mark.parametrize("engine", FORECASTING_ENGINES)
def test_forecasts_follow_the_context_not_its_position(engine, windows):
    model = TTTForecaster(tiny(engine)).fit(windows)
    context = windows[:12, :12]
    perm = np.random.default_rng(0).permutation(12)
    adapted = model.predict(context, batch_size=12)
    permuted = model.predict(context[perm], batch_size=12)
    np.testing.assert_allclose(permuted, adapted[perm], rtol=0, atol=1e-6)
    # per sample: the batch size no longer matters, and it is not per batch
    alone = model.predict(context, adapt={"scope": "sample"}, batch_size=1)
    together = model.predict(context, adapt={"scope": "sample"}, batch_size=12)
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-6)
    assert not np.allclose(together, adapted)
    guarded = model.predict(context, adapt={"safeguard": True}, batch_size=12)
    assert guarded.shape == adapted.shape and np.isfinite(guarded).all()

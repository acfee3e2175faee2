import numpy as np
import pytest
import torch

from tsgen.adaptation import TTTForecaster, TTTForecasterConfig, shifted_sines

SMALL = dict(context_length=12, horizon=4, n_features=2, hidden=16, epochs=3, batch_size=32, progress=False,
             adaptation={"num_steps": 2, "lr": 1e-3})


@pytest.fixture(scope="module")
def windows():
    return shifted_sines(128, length=16, n_features=2, seed=0)


def test_config_json_round_trip():
    config = TTTForecasterConfig(engine="masked", adaptation={"optimizer_name": "sgd", "lr": 0.01})
    again = TTTForecasterConfig.from_json(config.to_json())
    assert again == config and again.adaptation["optimizer"] == "sgd"


@pytest.mark.parametrize("kwargs, match", [({"engine": "tent"}, "unknown engine"), ({"epochs": 0}, "epochs"),
                                           ({"alpha": -1}, "alpha"), ({"adaptation": {"lr": -1}}, "lr")])
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TTTForecasterConfig(**kwargs)
    with pytest.raises(ValueError, match="unknown field.*engines"):
        TTTForecasterConfig.from_dict({"engines": "it3"})


@pytest.mark.parametrize("engine", [None, "it3", "masked", "tail_forecast"])
def test_fit_predict_evaluate(engine, windows):
    est = TTTForecaster(engine=engine, **SMALL).fit(windows)
    assert len(est.history) == 3 and est.history[-1]["task"] < est.history[0]["task"]
    context = windows[:10, :12]
    plain = est.predict(context, adapt=False)
    assert plain.shape == (10, 4, 2)
    assert set(est.evaluate(windows, adapt=False)) == {"mse", "mae"}
    if engine is None:
        with pytest.raises(ValueError, match="no engine"):
            est.predict(context)
        return
    state = {k: v.clone() for k, v in est.engine.state_dict().items()}
    adapted = est.predict(context)
    assert not np.array_equal(adapted, plain)
    assert np.array_equal(adapted, est.predict(context))
    assert np.array_equal(est.predict(context, adapt={"num_steps": 0}), plain)
    assert all(torch.equal(v, state[k]) for k, v in est.engine.state_dict().items())


def test_same_seed_same_model(windows):
    a = TTTForecaster(engine="masked", **SMALL).fit(windows).predict(windows[:5, :12])
    b = TTTForecaster(engine="masked", **SMALL).fit(windows).predict(windows[:5, :12])
    assert np.array_equal(a, b)


def test_save_load_round_trip(tmp_path, windows):
    est = TTTForecaster(engine="it3", **SMALL).fit(windows)
    est.save(tmp_path / "model")
    loaded = TTTForecaster.load(tmp_path / "model")
    assert loaded.config == est.config and loaded.history == est.history
    context = windows[:8, :12]
    assert np.array_equal(loaded.predict(context), est.predict(context))
    with pytest.raises(ValueError, match="not a saved TTTForecaster"):
        TTTForecaster.load(tmp_path)


def test_bad_input(windows):
    est = TTTForecaster(engine="tail_forecast", **SMALL)
    bad = windows.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.fit(bad)
    with pytest.raises(ValueError, match=r"\[n, 16, 2\]"):
        est.fit(windows[:, :10])
    with pytest.raises(ValueError, match="infinite"):
        est.predict(np.full((2, 12, 2), np.inf))
    with pytest.raises(ValueError, match="3-D"):
        est.predict(windows[0, :12])

"""One contract, every estimator: the same checks on each trainable thing in tsgen.

Each case builds the tiniest configuration of one estimator, fits it once
(module-scoped), and the tests check: ``fit`` returns ``self`` and records a
history; ``save`` / ``load`` round-trips to identical outputs; loading one
kind's checkpoint as another fails and names both; a save killed after its
first file leaves the previous checkpoint whole; ``fit`` and prediction
leave the caller's global random state as it was; prediction before ``fit`` is
a clear error; ``load`` called on an instance says how to load.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny_generation_config

from tsgen.estimator import Estimator


def rng_states():
    return torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()


def same_states(a, b) -> bool:
    return torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def windows(n=24, length=8, features=2, missing=0.2, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(length)[None, :, None]
    x = np.sin(t / 3 + rng.uniform(0, 6, (n, 1, features))).astype(np.float32)
    x[rng.random(x.shape) < missing] = np.nan
    return x


def cohort(n=140, patients=("p1", "p2"), seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for k, p in enumerate(patients):
        t = pd.date_range("2024-01-01", periods=n, freq="5min")
        bg = 7 + 2 * np.sin(np.arange(n) / 8 + k) + rng.normal(0, 0.1, n)
        parts.append(pd.DataFrame({"datetime": t, "p_num": p, "bg_mM": bg}))
    return pd.concat(parts, ignore_index=True)


@dataclass
class Case:
    build: Callable[[], Estimator]  # an unfitted estimator
    fit: Callable[[Estimator], Estimator]  # fit it (returns what fit returns)
    output: Callable[[Estimator], np.ndarray]  # a deterministic prediction


def ttt_imputer() -> Case:
    from tsgen.imputation import TTTImputer, TTTImputerConfig

    x = windows()
    truth = np.nan_to_num(x)
    val = {
        "X": np.where(np.random.default_rng(1).random(x.shape) < 0.2, np.nan, truth),
        "X_ori": truth,
    }
    config = TTTImputerConfig(
        n_steps=8,
        n_features=2,
        n_layers=1,
        d_model=8,
        n_heads=2,
        d_ffn=8,
        mini_batch_size=4,
        epochs=2,
        patience=None,
        batch_size=8,
    )
    return Case(
        lambda: TTTImputer(config),
        lambda m: m.fit({"X": x}, val),
        lambda m: m.impute({"X": x}),
    )


def ttt_forecaster() -> Case:
    from tsgen.adaptation import TTTForecaster, TTTForecasterConfig

    data = np.nan_to_num(windows(n=32, length=10, features=2, missing=0.0))
    config = TTTForecasterConfig(
        context_length=8,
        horizon=2,
        n_features=2,
        hidden=8,
        engine="it3",
        epochs=2,
        batch_size=16,
        adaptation={"num_steps": 1},
    )
    return Case(
        lambda: TTTForecaster(config),
        lambda m: m.fit(data),
        lambda m: m.predict(data[:, :8], adapt=True),
    )


def ttm_config(**kw):
    from tsgen.forecasting import TTMConfig

    values = dict(
        model_path=None,
        context_length=32,
        forecast_length=6,
        num_epochs=1,
        batch_size=16,
        progress=False,
        device="cpu",
        training_mode="from_scratch",
    )
    return TTMConfig(**{**values, **kw})


def forecast_values(model) -> np.ndarray:
    return model.predict(cohort(seed=1), stride=8)["bg_mM"].to_numpy()


def ttm_forecaster() -> Case:
    from tsgen.forecasting import TTMForecaster

    return Case(
        lambda: TTMForecaster(ttm_config()), lambda m: m.fit(cohort()), forecast_values
    )


def persistence() -> Case:
    from tsgen.forecasting import Persistence

    return Case(
        lambda: Persistence(ttm_config()), lambda m: m.fit(cohort()), forecast_values
    )


def linear_regression() -> Case:
    from tsgen.forecasting import LinearRegression

    return Case(
        lambda: LinearRegression(ttm_config()),
        lambda m: m.fit(cohort()),
        forecast_values,
    )


def imageni2r() -> Case:
    from tsgen.generation import ImagenI2R

    config = tiny_generation_config()
    x = windows(n=16, length=24, features=2, missing=0.3)
    return Case(
        lambda: ImagenI2R(config), lambda m: m.fit(x), lambda m: m.sample(3, seed=0)
    )


def ts2vec() -> Case:
    from tsgen.metrics.ts2vec import TS2Vec, TS2VecConfig

    x = np.nan_to_num(windows(n=16, length=12, features=2, missing=0.0))
    config = TS2VecConfig(
        input_dims=2, output_dims=8, hidden_dims=8, depth=1, iterations=2, batch_size=8
    )
    return Case(lambda: TS2Vec(config), lambda m: m.fit(x), lambda m: m.encode(x))


CASES = {
    "TTTImputer": ttt_imputer,
    "TTTForecaster": ttt_forecaster,
    "TTMForecaster": ttm_forecaster,
    "Persistence": persistence,
    "LinearRegression": linear_regression,
    "ImagenI2R": imageni2r,
    "TS2Vec": ts2vec,
}


@dataclass
class Fitted:
    case: Case
    model: Estimator
    returned: object
    states_kept: bool
    output: np.ndarray


@pytest.fixture(scope="module", params=list(CASES))
def fitted(request) -> Fitted:
    case = CASES[request.param]()
    model = case.build()
    before = rng_states()
    returned = case.fit(model)
    output = case.output(model)
    return Fitted(case, model, returned, same_states(before, rng_states()), output)


def test_fit_returns_self_and_keeps_a_history(fitted):
    assert fitted.returned is fitted.model
    assert isinstance(fitted.model.history, list)


def test_fit_and_predict_leave_the_global_random_state_alone(fitted):
    assert fitted.states_kept
    before = rng_states()
    fitted.case.output(fitted.model)
    assert same_states(before, rng_states())


def test_save_and_load_give_identical_outputs(fitted, tmp_path):
    path = fitted.model.save(tmp_path / "checkpoint")
    assert {"config.json", "weights.safetensors", "state.json"} <= {
        p.name for p in path.iterdir()
    }
    again = type(fitted.model).load(path, device="cpu")
    np.testing.assert_array_equal(fitted.case.output(again), fitted.output)
    assert again.history == fitted.model.history
    with pytest.raises(FileExistsError):
        fitted.model.save(path)


def test_a_save_killed_after_its_first_file_leaves_the_old_checkpoint(fitted, tmp_path):
    from test_faults import save_in_a_killed_child

    path = fitted.model.save(tmp_path / "checkpoint")
    before = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}
    save_in_a_killed_child(fitted.model, path, "after config.json")
    assert {p: p.read_bytes() for p in path.rglob("*") if p.is_file()} == before
    again = type(fitted.model).load(path, device="cpu")
    np.testing.assert_array_equal(fitted.case.output(again), fitted.output)


def test_loading_the_wrong_kind_fails_clearly(fitted, tmp_path):
    from tsgen.adaptation import TTTForecaster
    from tsgen.generation import ImagenI2R

    path = fitted.model.save(tmp_path / "checkpoint")
    kind = type(fitted.model).__name__
    other = ImagenI2R if kind == "TTTForecaster" else TTTForecaster
    with pytest.raises(
        ValueError, match=f"holds a {kind} checkpoint, not a {other.__name__}"
    ):
        other.load(path)


def test_predicting_before_fit_is_a_clear_error(fitted):
    with pytest.raises((RuntimeError, ValueError), match="fit"):
        fitted.case.output(fitted.case.build())


def test_load_on_an_instance_says_how_to_load(fitted):
    with pytest.raises(TypeError, match="load"):
        fitted.model.load("anywhere")

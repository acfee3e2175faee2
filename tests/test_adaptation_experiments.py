"""Chapter 4's protocol at tiny sizes: train_forecasters, shift_experiment, adaptation_grid, example_forecasts."""

import numpy as np
import pandas as pd
import pytest

from tsgen.adaptation import TTTForecasterConfig
from tsgen.adaptation.experiments import (
    SHIFTS,
    VALIDATION_DRAWS,
    adaptation_grid,
    example_forecasts,
    shift_experiment,
    shift_sets,
    train_forecasters,
)

CONFIG = TTTForecasterConfig(
    context_length=12,
    horizon=4,
    n_features=2,
    hidden=16,
    epochs=2,
    batch_size=32,
    adaptation={"num_steps": 2, "lr": 1e-3},
)
ENGINES = ["it3", "tail_forecast"]


@pytest.fixture(scope="module")
def models():
    return train_forecasters(CONFIG, ENGINES, seeds=[0, 1], n_train=64)


def test_train_forecasters(models):
    assert list(models) == [
        (name, seed) for seed in (0, 1) for name in ("plain", *ENGINES)
    ]
    assert models["plain", 1].engine is None and models["it3", 1].config.seed == 1
    assert all(len(m.history) == CONFIG.epochs for m in models.values())
    options = train_forecasters(
        CONFIG,
        ["masked"],
        seeds=[0],
        n_train=8,
        engine_options={"masked": {"mask_ratio": 0.5}},
    )
    assert options["masked", 0].engine.mask_ratio == 0.5
    with pytest.raises(ValueError, match="unknown engine 'maskd'"):
        train_forecasters(
            CONFIG, ["masked"], seeds=[0], n_train=8, engine_options={"maskd": {}}
        )


def test_shift_sets_are_the_named_shifts():
    sets = shift_sets(6, 16, 2, seed=5)
    assert list(sets) == list(SHIFTS) and all(
        w.shape == (6, 16, 2) for w in sets.values()
    )
    assert sets["level"].max() < sets["none"].max()
    assert np.array_equal(shift_sets(6, 16, 2, seed=5)["frequency"], sets["frequency"])
    validation = shift_sets(6, 16, 2, seed=5, draws=VALIDATION_DRAWS)
    assert not any(np.array_equal(validation[k], sets[k]) for k in SHIFTS)
    with pytest.raises(ValueError, match="at most 10 shifts"):
        shift_sets(2, 16, 2, seed=0, shifts={str(k): {} for k in range(11)})


def test_shift_experiment(models):
    results = shift_experiment(models, n_test=20, batch_size=10)
    assert len(results) == 2 * len(SHIFTS) * (1 + len(ENGINES))
    assert list(results.columns) == [
        "seed",
        "shift",
        "model",
        "mse",
        "mae",
        "mse_adapted",
        "mae_adapted",
        "change_pct",
    ]
    assert list(dict.fromkeys(results["shift"])) == list(SHIFTS)
    plain = results["model"] == "plain"
    adapted = ["mse_adapted", "mae_adapted", "change_pct"]
    assert results.loc[plain, adapted].isna().all().all()
    assert np.isfinite(results.loc[~plain, ["mse", "mae", *adapted]].to_numpy()).all()
    assert (results[["mse", "mae"]] > 0).all().all()
    pd.testing.assert_frame_equal(
        results, shift_experiment(models, n_test=20, batch_size=10)
    )


def test_adaptation_grid(models):
    grid = adaptation_grid(
        models,
        steps=[0, 2],
        lrs=[1e-4, 1e-3],
        n_windows=10,
        batch_size=10,
        shifts={"none": {}, "level": {"level": -0.3}},
    )
    assert len(grid) == 2 * 2 * len(ENGINES) * 2 * 2
    assert set(grid["model"]) == set(ENGINES)
    assert np.isfinite(grid[["mse", "mse_adapted", "change_pct"]].to_numpy()).all()
    assert (grid.loc[grid["steps"] == 0, "change_pct"] == 0).all()  # no step, no change
    assert (grid.loc[grid["steps"] == 2, "change_pct"] != 0).any()


def test_example_forecasts(models):
    windows = shift_sets(10, 16, 2, seed=0)["frequency"]
    frame = example_forecasts(models, windows, seed=0, batch_size=10)
    assert list(frame.columns) == ["model", "step", "truth", "no_adaptation", "adapted"]
    assert len(frame) == len(ENGINES) * CONFIG.horizon and list(frame["step"][:4]) == [
        12,
        13,
        14,
        15,
    ]
    assert np.array_equal(frame["truth"][:4], windows[0, 12:, 0])

"""Chapter 4's protocol at tiny sizes: training, shift_experiment, adaptation_grid, the rule."""

import numpy as np
import pandas as pd
import pytest

from tsgen.adaptation import TTTForecasterConfig
from tsgen.adaptation.experiments import (
    SHIFTS,
    VALIDATION_DRAWS,
    adaptation_goal,
    adaptation_grid,
    choose_adaptation,
    chosen_settings,
    example_forecasts,
    goal_summary,
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


def test_shift_experiment_takes_adaptation_overrides(models):
    base = shift_experiment(models, n_test=20, batch_size=10)
    it3 = base["model"] == "it3"
    # per model: the others keep their config's adaptation
    off = shift_experiment(
        models, n_test=20, batch_size=10, adapt={"it3": {"num_steps": 0}}
    )
    assert (off.loc[it3, "change_pct"] == 0).all()
    pd.testing.assert_frame_equal(off[~it3], base[~it3])
    # for all models
    guarded = shift_experiment(
        models, n_test=20, batch_size=10, adapt={"safeguard": True}
    )
    assert np.isfinite(guarded.loc[it3, "mse_adapted"]).all()
    with pytest.raises(ValueError, match="mixes model names"):
        shift_experiment(
            models, n_test=20, batch_size=10, adapt={"it3": {}, "lr": 1e-3}
        )
    with pytest.raises(ValueError, match="adapt must be"):
        shift_experiment(models, n_test=20, batch_size=10, adapt=[("lr", 1e-3)])


def _grid(cells: dict, seeds=(0, 1, 2), mse=(1.0, 1.2, 0.8)) -> pd.DataFrame:
    """A grid: unadapted MSE ``mse`` per seed, change ``cells[model, steps, lr, shift]`` %."""
    rows = []
    for (model, steps, lr, shift), change in cells.items():
        for seed, value in zip(seeds, mse, strict=True):
            rows.append(
                {
                    "seed": seed,
                    "shift": shift,
                    "model": model,
                    "steps": steps,
                    "lr": lr,
                    "mse": value,
                    "mse_adapted": value * (1 + change / 100),
                    "change_pct": change,
                }
            )
    return pd.DataFrame(rows)


def test_choose_adaptation_is_the_best_admissible_cell():
    # unadapted MSE 1.0 +- 0.2 in distribution: margin 0.5 allows +10 %
    grid = _grid(
        {
            # a: the best shifted gain hurts in distribution: not admissible
            ("a", 5, 1e-3, "none"): 30.0,
            ("a", 5, 1e-3, "level"): -80.0,
            ("a", 1, 1e-4, "none"): 5.0,
            ("a", 1, 1e-4, "level"): -40.0,
            # b: every cell hurts under the shift: no adaptation
            ("b", 1, 1e-4, "none"): -1.0,
            ("b", 1, 1e-4, "level"): 20.0,
        }
    )
    choice = choose_adaptation(grid).set_index("model")
    assert choice.loc["a", "steps"] == 1 and choice.loc["a", "lr"] == 1e-4
    assert choice.loc["a", "shifted_change_pct"] == pytest.approx(-40.0)
    assert choice.loc["a", "allowed_change_pct"] == pytest.approx(10.0)
    assert choice.loc["a", "admissible"] == 1
    assert choice.loc["b", "steps"] == 0 and np.isnan(choice.loc["b", "lr"])
    # a wider margin admits a's large step
    assert choose_adaptation(grid, margin=2).set_index("model").loc["a", "steps"] == 5
    assert chosen_settings(choose_adaptation(grid)) == {
        "a": {"num_steps": 1, "lr": 1e-4},
        "b": {"num_steps": 0},
    }
    with pytest.raises(ValueError, match="in_distribution"):
        choose_adaptation(grid, in_distribution="calm")
    with pytest.raises(ValueError, match="grid must be"):
        choose_adaptation(grid.drop(columns="lr"))
    with pytest.raises(ValueError, match="margin"):
        choose_adaptation(grid, margin=-1)


def test_choose_adaptation_on_a_real_grid(models):
    grid = adaptation_grid(
        models,
        steps=[1, 2],
        lrs=[1e-4, 1e-2],
        n_windows=10,
        batch_size=10,
        shifts={"none": {}, "level": {"level": -0.3}},
    )
    choice = choose_adaptation(grid)
    assert list(choice["model"]) == ENGINES
    ok = choice["in_distribution_change_pct"] <= choice["allowed_change_pct"]
    assert ok.all() and (choice["shifted_change_pct"] <= 0).all()


def test_adaptation_goal(models):
    results = shift_experiment(models, n_test=20, batch_size=10)
    off = shift_experiment(
        models,
        n_test=20,
        batch_size=10,
        adapt={name: {"num_steps": 0} for name in ENGINES},
    )
    goal = adaptation_goal(results, {"off": off})
    assert len(goal) == len(SHIFTS) * len(ENGINES)
    assert set(goal["model"]) == set(ENGINES)
    # no adaptation is within the spread of no adaptation, with no change
    assert goal["off within spread"].all() and (goal["off change %"] == 0).all()
    assert np.allclose(
        goal["setting mse"],
        results[results["model"] != "plain"]
        .groupby(["shift", "model"], sort=False)["mse_adapted"]
        .mean(),
    )
    with pytest.raises(ValueError, match="no row"):
        adaptation_goal(results, {"off": off[off["model"] != "it3"]})
    summary = goal_summary(goal)
    assert list(summary["way"]) == ["off"] * len(SHIFTS)
    assert list(summary["shift"]) == list(SHIFTS)
    assert summary.loc[0, "engine"] == "every engine" and summary.loc[0, "met"]
    # under a shift: the engine that is best with the setting
    level = goal[goal["shift"] == "level"]
    best = level.loc[level["setting mse"].idxmin(), "model"]
    row = summary[summary["shift"] == "level"].iloc[0]
    assert row["engine"] == best
    assert row["met"] == bool(
        level.set_index("model").loc[best, "off mse"]
        - level.set_index("model").loc[best, "setting mse"]
        <= level.set_index("model").loc[best, "mse_std"]
    )

"""The chapters' protocols: time-ordered splits, one code path for every model, comparison, ablations, speed."""

import numpy as np
import pandas as pd
import pytest
import torch

from tsgen.data import add_missingness, make_sines
from tsgen.imputation import (
    MODELS,
    ablation_variants,
    ablations,
    adaptation_sweep,
    direction_sensitivity,
    dual_form_comparison,
    fit_and_score,
    imputation_splits,
    make_imputer,
    score_imputations,
    speed_comparison,
    split_summary,
    standardised,
    window_stats,
)
from tsgen.imputation.experiments import (
    cgm_windows,
    pattern_comparison,
    pattern_verdict,
)

TINY = dict(
    d_model=8, n_heads=2, n_layers=1, d_ffn=8, epochs=1, patience=None, batch_size=16
)
WINDOWS = {"train": 16, "val": 8, "test": 8}


@pytest.fixture(scope="module")
def splits():
    X = make_sines(60, length=8, n_features=2, seed=0)
    return {
        name: add_missingness(X[sl], "point", 0.3, seed=i)
        for i, (name, sl) in enumerate(
            [("train", slice(0, 40)), ("val", slice(40, 50)), ("test", slice(50, 60))]
        )
    }


def test_imputation_splits_are_scaled_on_train_and_subsampled():
    splits = imputation_splits(
        "stock", 0.3, seed=0, length=12, max_windows={"train": 40, "test": 10}
    )
    assert [len(splits[s]["X"]) for s in ("train", "val", "test")][0::2] == [40, 10]
    assert splits["val"]["X"].shape[1:] == (12, 6)
    train = splits["train"]["X_ori"]
    # the scaler saw (a superset of) these windows
    assert train.min() >= 0 and train.max() <= 1
    assert abs(np.isnan(splits["test"]["X"]).mean() - 0.3) < 0.05
    with pytest.raises(ValueError, match="unknown split"):
        imputation_splits("stock", 0.3, max_windows={"valid": 3})


def test_split_summary():
    summary = split_summary(
        ["stock"], 0.3, length=12, max_windows={"train": 40, "test": 10}
    )
    assert (
        list(summary["split"]) == ["train", "val", "test"]
        and summary.loc[0, "windows"] == 40
    )
    assert (summary["features"] == 6).all() and summary["missing"].between(
        0.25, 0.35
    ).all()


def test_window_stats_use_observed_values_only():
    X = np.array([[[1.0], [np.nan], [3.0]], [[np.nan], [np.nan], [np.nan]]])
    mean, scale = window_stats(X, floor=0.5)
    assert mean.shape == (2, 1, 1)
    assert mean[0, 0, 0] == 2.0 and scale[0, 0, 0] == 1.5
    assert mean[1, 0, 0] == 0.0 and scale[1, 0, 0] == 0.5
    data = standardised(
        {"X": X[:1], "X_ori": np.array([[[1.0], [2.0], [3.0]]]), "indicating_mask": 1}
    )
    np.testing.assert_allclose(
        data["X_ori"][0, :, 0], [-1 / 1.01, 0, 1 / 1.01], rtol=1e-6
    )
    assert data["indicating_mask"] == 1


def test_every_model_runs_in_one_code_path_and_leaves_the_global_generators_alone(
    splits,
):
    state = torch.get_rng_state()
    rows = {}
    for model in MODELS:
        rows[model] = fit_and_score(make_imputer(model, 8, 2, **TINY), splits)
        assert np.isfinite(
            [rows[model][k] for k in ("mae", "mse", "rmse", "mre")]
        ).all(), model
    assert torch.equal(state, torch.get_rng_state())
    # the same seed gives the same scores; linear interpolation
    # does not care about per-window standardisation
    again = fit_and_score(make_imputer("SAITS", 8, 2, **TINY), splits)
    assert again["mae"] == rows["SAITS"]["mae"]
    raw = fit_and_score(make_imputer("Lerp", 8, 2), splits, window_norm=False)
    assert raw["mae"] == pytest.approx(rows["Lerp"]["mae"], rel=1e-9)
    with pytest.raises(ValueError, match="unknown model"):
        make_imputer("GRU-D", 8, 2)
    with pytest.raises(ValueError, match="TTTImputer parameters"):
        make_imputer("SAITS", 8, 2, layer_type="mlp")


def test_score_imputations(splits):
    test = splits["test"]
    table = score_imputations(
        {"zeros": np.nan_to_num(test["X"]), "truth": test["X_ori"]}, test
    )
    assert (
        list(table["model"]) == ["zeros", "truth"]
        and table.loc[1, "mae"] == 0 < table.loc[0, "mae"]
    )


def test_ablations_with_adaptation_rows():
    variants = ablation_variants(
        "linear", True, mini_batch_sizes=[2], loss_weights=[(1.0, 0.0)]
    )
    assert list(variants) == [
        "reference",
        "TTT-MLP",
        "inner mini-batch 2",
        "unidirectional",
        "inner lr 1/t (TTT paper)",
        "MSE loss (the seed's)",
        "ORT 1 / MIT 0",
    ]
    assert variants["inner lr 1/t (TTT paper)"] == {
        "inner_lr_scaling": "inverse_position"
    }
    other = ablation_variants("linear", True, training_loss="mse")
    assert other["MAE loss (SAITS's)"] == {"training_loss": "mae"}
    assert variants["ORT 1 / MIT 0"] == {"ORT_weight": 1.0, "MIT_weight": 0.0}
    table = ablations(
        "stock",
        0.3,
        [0],
        {"reference": {}, "unidirectional": {"bidirectional": False}},
        adaptation_steps=[0, 2],
        adaptation_lr=1e-2,
        length=8,
        max_windows=WINDOWS,
        size=TINY,
    )
    assert list(table["variant"]) == [
        "reference",
        "adaptation, 0 steps",
        "adaptation, 2 steps",
        "unidirectional",
    ]
    assert np.isfinite(table["mae"]).all()
    # zero steps of adaptation is the reference model itself
    assert table.loc[1, "mae"] == pytest.approx(table.loc[0, "mae"], rel=1e-6)


def test_adaptation_sweep(splits):
    imputer = make_imputer("TTTImputer", 8, 2, **TINY)
    fit_and_score(imputer, splits)
    sweep = adaptation_sweep(imputer, splits, [0, 3], lr=1e-2)
    assert list(sweep["steps"]) == [0, 3] and sweep.loc[0, "mae"] != sweep.loc[1, "mae"]


def test_direction_sensitivity():
    frame = direction_sensitivity(8, 2, 4, length=10, step=5, seed=0)
    forward = frame[frame["layer"] == "forward only"].set_index("input_step")[
        "gradient_norm"
    ]
    both = frame[frame["layer"] == "bidirectional"].set_index("input_step")[
        "gradient_norm"
    ]
    assert len(forward) == len(both) == 10
    assert (forward.loc[6:] == 0).all() and (both.loc[6:] > 0).all()
    pd.testing.assert_frame_equal(
        frame, direction_sensitivity(8, 2, 4, length=10, step=5, seed=0)
    )


def test_speed_comparisons():
    speed = speed_comparison(
        length=8,
        n_features=2,
        batch=4,
        d_model=8,
        n_layers=1,
        n_heads=2,
        mini_batch_size=4,
        repeats=1,
    )
    assert (
        speed["model"].iloc[0] == "SAITS"
        and speed["ratio_to_SAITS"].iloc[0] == 1
        and len(speed) == 4
    )
    assert (speed["ms"] > 0).all()
    dual = dual_form_comparison(
        batch=2, length=8, d_model=8, n_heads=2, mini_batch_size=4, repeats=1
    )
    assert (
        list(dual["layer"]) == ["TTT-Linear", "TTT-MLP"]
        and (dual["max_difference"] < 1e-4).all()
    )


def test_asking_for_more_windows_than_a_split_has_says_so():
    with pytest.warns(UserWarning, match=r"max_windows\['val'\]=500 .* has \(345 "):
        splits = imputation_splits("stock", 0.3, max_windows={"val": 500})
    assert len(splits["val"]["X"]) == 345


def test_cgm_windows_keep_real_short_gaps_only():
    windows = cgm_windows(24, max_gap_min=30)
    assert set(windows) == {"train", "val", "test"}
    assert all(w.shape[1:] == (24, 1) for w in windows.values())
    gaps = np.isnan(np.concatenate(list(windows.values())))
    assert gaps.any()  # the sensor's own gaps stay as missingness
    # a 30-minute threshold cuts at 6 silent steps: no window holds a longer gap
    run = np.zeros(gaps.shape[0], dtype=int)
    longest = 0
    for t in range(24):
        run = np.where(gaps[:, t, 0], run + 1, 0)
        longest = max(longest, run.max())
    assert 0 < longest <= 5
    with pytest.raises(ValueError, match="max_gap_min"):
        cgm_windows(24, max_gap_min=2)


def test_cgm_splits_score_only_hidden_readings_and_set_empty_windows_aside():
    limits = {"train": 64, "val": 32, "test": 64}
    splits = imputation_splits("cgm", 0.3, length=12, max_windows=limits)
    test = splits["test"]
    real_gaps = np.isnan(test["X_ori"])
    assert test["indicating_mask"][real_gaps].sum() == 0
    assert abs(test["indicating_mask"].sum() / (~real_gaps).sum() - 0.3) < 0.05
    # 90 % of 8 readings: many windows lose everything and are set aside
    sparse = imputation_splits("cgm", 0.9, length=8, max_windows=limits)
    assert 0 < len(sparse["test"]["X"]) < 64
    assert (sparse["test"]["missing_mask"].sum(axis=(1, 2)) > 0).all()
    # one feature: the block's width is capped instead of refused
    block = imputation_splits(
        "cgm", 0.5, length=12, max_windows=limits, pattern="block", block_width=2
    )
    assert block["test"]["X"].shape[-1] == 1


def test_imputation_splits_with_block_pattern_are_seeded():
    kwargs = dict(
        length=12, max_windows=WINDOWS, pattern="block", block_len=4, block_width=2
    )
    a = imputation_splits("stock", 0.5, seed=0, **kwargs)
    b = imputation_splits("stock", 0.5, seed=0, **kwargs)
    c = imputation_splits("stock", 0.5, seed=1, **kwargs)
    assert np.array_equal(a["test"]["missing_mask"], b["test"]["missing_mask"])
    assert not np.array_equal(a["test"]["missing_mask"], c["test"]["missing_mask"])
    held = a["test"]["indicating_mask"].mean()
    assert abs(held - 0.5) < 0.02
    # each missing block spans adjacent features over the same steps
    gone = np.isnan(a["test"]["X"])
    assert (gone.sum(axis=2) != 1).any()


def test_pattern_comparison_rows_determinism_and_verdict():
    kwargs = dict(
        models=("TTTImputer", "SAITS", "LOCF", "Lerp"),
        max_windows=WINDOWS,
        size=TINY,
    )
    grid = [("point", 0.3), ("block", 0.5)]
    runs = pattern_comparison(["stock", "cgm"], grid, [8], [0, 1], **kwargs)
    # block is skipped on the univariate CGM data (it is a subsequence there)
    assert len(runs) == (2 + 1) * 2 * 4
    assert set(runs.loc[runs["dataset"] == "cgm", "pattern"]) == {"point"}
    assert {"dataset", "pattern", "rate", "window", "seed", "model"} <= set(runs)
    assert np.isfinite(runs[["mae", "mse", "mre"]]).all().all()
    again = pattern_comparison(["stock", "cgm"], grid, [8], [0, 1], **kwargs)
    pd.testing.assert_series_equal(runs["mae"], again["mae"])

    verdict = pattern_verdict(runs)
    assert len(verdict) == 3 and verdict["best other"].eq("LOCF").all()
    row = verdict.loc[("stock", "block", 0.5, 8)]
    mean = runs[(runs["dataset"] == "stock") & (runs["pattern"] == "block")]
    mean = mean.groupby("model")["mae"].mean()
    assert row["vs SAITS %"] == pytest.approx(
        100 * (mean["TTTImputer"] / mean["SAITS"] - 1)
    )
    assert row["best other mae"] == pytest.approx(mean["LOCF"])


def test_pattern_grid_bad_input():
    with pytest.raises(ValueError, match="patterns must be"):
        pattern_comparison(["stock"], [("stripes", 0.3)], [8], [0])
    with pytest.raises(ValueError, match="run_fraction"):
        pattern_comparison(["stock"], [("point", 0.3)], [8], [0], run_fraction=0)
    with pytest.raises(ValueError, match="unknown model"):
        pattern_comparison(["stock"], [("point", 0.3)], [8], [0], models=["GRU-D"])
    runs = pd.DataFrame(
        {"dataset": ["s"], "pattern": ["point"], "rate": [0.1], "window": [8]}
        | {"model": ["SAITS"], "mae": [0.1]}
    )
    with pytest.raises(ValueError, match="no rows of"):
        pattern_verdict(runs)

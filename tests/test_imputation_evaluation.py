"""The comparison helpers: time-ordered splits, one code path for every model, window normalisation."""

import numpy as np
import pytest

from tsgen.data import add_missingness, make_sines
from tsgen.imputation import MODELS, compare, fit_and_score, imputation_splits, make_imputer, summarize, window_stats


def test_imputation_splits_are_scaled_on_train_and_subsampled():
    splits = imputation_splits("stock", 0.3, seed=0, length=12, max_windows={"train": 40, "test": 10})
    assert [len(splits[s]["X"]) for s in ("train", "val", "test")][0::2] == [40, 10]
    assert splits["val"]["X"].shape[1:] == (12, 6)
    train = splits["train"]["X_ori"]
    assert train.min() >= 0 and train.max() <= 1  # the scaler saw (a superset of) these windows
    assert abs(np.isnan(splits["test"]["X"]).mean() - 0.3) < 0.05
    with pytest.raises(ValueError, match="unknown split"):
        imputation_splits("stock", 0.3, max_windows={"valid": 3})


def test_window_stats_use_observed_values_only():
    X = np.array([[[1.0], [np.nan], [3.0]], [[np.nan], [np.nan], [np.nan]]])
    mean, scale = window_stats(X, floor=0.5)
    assert mean.shape == (2, 1, 1)
    assert mean[0, 0, 0] == 2.0 and scale[0, 0, 0] == 1.5
    assert mean[1, 0, 0] == 0.0 and scale[1, 0, 0] == 0.5


def test_every_model_runs_in_one_code_path():
    X = make_sines(60, length=8, n_features=2, seed=0)
    splits = {name: add_missingness(X[sl], "point", 0.3, seed=i)
              for i, (name, sl) in enumerate([("train", slice(0, 40)), ("val", slice(40, 50)), ("test", slice(50, 60))])}
    rows = {}
    for model in MODELS:
        imputer = make_imputer(model, 8, 2, d_model=8, n_heads=2, n_layers=1, d_ffn=8, epochs=1, patience=None,
                               batch_size=16)
        rows[model] = fit_and_score(imputer, splits)
        assert np.isfinite([rows[model][k] for k in ("mae", "mse", "rmse", "mre")]).all(), model
    # linear interpolation does not care about per-window standardisation
    raw = fit_and_score(make_imputer("Lerp", 8, 2), splits, window_norm=False)
    assert raw["mae"] == pytest.approx(rows["Lerp"]["mae"], rel=1e-9)
    with pytest.raises(ValueError, match="unknown model"):
        make_imputer("GRU-D", 8, 2)
    with pytest.raises(ValueError, match="TTTImputer parameters"):
        make_imputer("SAITS", 8, 2, layer_type="mlp")


def test_compare_and_summarize():
    results = compare(["stock"], [0.2], [0, 1], models=("LOCF", "Lerp"), length=8,
                      max_windows={"train": 8, "val": 4, "test": 6}, progress=False)
    assert len(results) == 4 and set(results["model"]) == {"LOCF", "linear interpolation"}
    table = summarize(results)
    assert list(table.columns) == ["mae_mean", "mae_std", "mse_mean", "mse_std", "mre_mean", "mre_std"]
    assert len(table) == 2 and (table["mae_std"] >= 0).all()

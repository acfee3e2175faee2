import numpy as np
import pandas as pd
import pytest

from tsgen.forecasting import TTMConfig, time_split
from tsgen.forecasting.data import Preprocessor, check_lengths, impute, window_starts


def frame(n=60, patients=("a", "b"), seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for k, p in enumerate(patients):
        t = pd.date_range("2024-01-01", periods=n, freq="5min")
        parts.append(
            pd.DataFrame(
                {
                    "datetime": t,
                    "p_num": p,
                    "bg_mM": 7 + np.sin(np.arange(n) / 5 + k) + rng.normal(0, 0.1, n),
                    "iob": rng.uniform(0, 2, n),
                    "cob": 0.0,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def preprocessor(**kw):
    return Preprocessor(
        TTMConfig(
            model_path=None, context_length=16, forecast_length=4, **kw
        ).to_data_config()
    )


def test_quality_report_and_zero_variance_drop(caplog):
    pre = preprocessor(input_features=["iob", "cob"])
    series, report = pre.prepare(frame())
    assert set(report.columns) >= {"nan share", "inf", "zero variance"}
    assert report.loc[report.column == "cob", "zero variance"].all()
    with caplog.at_level("WARNING"):
        pre.fit(series, report)
    assert pre.channels == ["bg_mM", "iob"] and "cob" in caplog.text
    scaled, _ = pre.transform(frame())
    assert scaled["a"].values.shape == (60, 2)
    stacked = np.concatenate([s.values for s in scaled.values()])
    np.testing.assert_allclose(stacked.mean(0), 0, atol=1e-9)
    np.testing.assert_allclose(
        pre.unscale_target(scaled["a"].values[:, :1])[:, 0], frame()["bg_mM"][:60]
    )


def test_resampling_and_imputation():
    data = frame(n=12, patients=("a",)).drop(index=[3, 4])  # a 15-minute gap
    data.loc[7, "bg_mM"] = np.nan
    pre = preprocessor()
    raw, report = pre.prepare(data)
    # gaps stay NaN until transform
    assert len(raw["a"]) == 12 and np.isnan(raw["a"].values[[3, 4, 7], 0]).all()
    series, _ = pre.series(data, fit=True)
    s = series["a"]
    # scaled, gaps still NaN: each context window is filled on its own
    assert len(s) == 12 and np.isnan(s.values[[3, 4, 7], 0]).all()
    assert (
        s.observed[:, 0].tolist()
        == [True] * 3 + [False] * 2 + [True] * 2 + [False] + [True] * 4
    )
    filled = pre.fill(s.values[None])[0]
    expected = np.interp(3, [2, 5], data["bg_mM"].loc[[2, 5]])
    assert pre.unscale_target(filled[3:4, :1])[0, 0] == pytest.approx(expected)
    assert report["nan share"].max() == pytest.approx(1 / 10)


def test_context_filling_never_looks_ahead():
    """A gap just before a context's end is filled from that context only: a later reading changes nothing."""
    pre = preprocessor()
    data = frame(n=12, patients=("a",))
    data.loc[9:10, "bg_mM"] = np.nan  # gap at the end of the context [0, 11)
    pre.series(data, fit=True)
    late = data.copy()
    late.loc[11, "bg_mM"] = 30.0  # the reading after the gap
    contexts = [pre.series(d)[0]["a"].values[None, :11] for d in (data, late)]
    a, b = (pre.fill(c) for c in contexts)
    np.testing.assert_array_equal(a, b)
    # the trailing gap repeats the last reading before it
    assert a[0, 9, 0] == a[0, 8, 0] == a[0, 10, 0]


@pytest.mark.parametrize("strategy", ["mean", "median", "forward_fill", "linear"])
def test_impute_strategies(strategy):
    x = np.array([[1.0], [np.nan], [3.0], [np.nan]])
    out = impute(x, strategy)
    expected = {
        "mean": [1, 2, 3, 2],
        "median": [1, 2, 3, 2],
        "forward_fill": [1, 1, 3, 3],
        "linear": [1, 2, 3, 3],
    }
    assert out[:, 0].tolist() == expected[strategy]
    with pytest.raises(ValueError, match="learned from training data"):
        impute(x, "ttt_imputer")


# ---- the TTT imputer strategy: a tiny imputer, a few epochs (about a second per fit)
TINY_TTT = {
    "d_model": 8,
    "n_heads": 2,
    "d_ffn": 16,
    "epochs": 3,
    "patience": None,
    "batch_size": 16,
}


def ttt_preprocessor(**kw):
    return preprocessor(
        imputation_strategy="ttt_imputer",
        imputation_window=8,
        imputer_params=TINY_TTT,
        **kw,
    )


def gappy_frame():
    data = frame(n=80)
    rng = np.random.default_rng(1)
    data["bg_mM"] = data.bg_mM.mask(rng.random(len(data)) < 0.15)
    # patient a: iob unobserved over all of window 24-31
    data.loc[data.index[22:34], "iob"] = np.nan
    return data.drop(index=[5, 6, 7])  # and a 15-minute hole in the grid


@pytest.fixture(scope="module")
def ttt_fitted():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # a network this small trains faster on one thread
    pre = ttt_preprocessor(input_features=["iob"])
    series, _ = pre.series(gappy_frame(), fit=True)
    yield pre, series
    torch.set_num_threads(before)


def test_ttt_strategy_fills_every_gap_and_keeps_observed_values(ttt_fitted):
    pre, series = ttt_fitted
    assert (
        pre.imputer is not None
        and pre.imputer.config.n_steps == 8
        and pre.imputer.config.n_features == 2
    )
    raw, _ = pre.prepare(gappy_frame())
    x = (raw["a"].values - pre.center) / pre.scale
    np.testing.assert_array_equal(series["a"].values, x)
    # windows of 16 steps, filled each from itself: every gap, observed values as they were
    windows = np.lib.stride_tricks.sliding_window_view(x, 16, axis=0)[::8]
    windows = np.moveaxis(windows, -1, 1)
    filled = pre.fill(windows)
    gaps = np.isnan(windows)
    assert not np.isnan(filled).any() and gaps.any()
    np.testing.assert_array_equal(filled[~gaps], windows[~gaps])
    # the imputer, not linear interpolation, filled the glucose gaps
    linear = np.stack([impute(w, "linear") for w in windows * pre.scale + pre.center])
    linear = (linear - pre.center) / pre.scale
    assert not np.allclose(filled[gaps[..., 0], 0], linear[gaps[..., 0], 0])
    # iob is unobserved over all of steps 24-31: the window starting at 24 takes
    # the linear fallback there
    np.testing.assert_allclose(filled[3, :8, 1], linear[3, :8, 1])
    # the same in original units, as a table
    table = pre.imputed_frame(gappy_frame())
    assert (
        list(table.columns) == ["p_num", "datetime", "bg_mM", "iob"]
        and not table.isna().any().any()
    )
    merged = gappy_frame().merge(
        table, on=["p_num", "datetime"], suffixes=("", "_filled")
    )
    seen = merged.bg_mM.notna()
    np.testing.assert_allclose(
        merged.bg_mM_filled[seen], merged.bg_mM[seen], rtol=1e-12
    )


def test_ttt_window_grid_covers_the_series():
    from tsgen.forecasting.data import window_grid

    assert window_grid(16, 8).tolist() == [0, 8]
    # the last window is aligned to the end
    assert window_grid(19, 8).tolist() == [0, 8, 11]
    with pytest.raises(ValueError, match="shorter than one window"):
        window_grid(5, 8)


def test_ttt_preprocessor_round_trips(ttt_fitted, tmp_path):
    pre, series = ttt_fitted
    state = pre.to_dict()
    pre.save_imputer(tmp_path)
    assert (tmp_path / "imputer" / "weights.safetensors").exists()
    loaded = Preprocessor.from_dict(state)
    with pytest.raises(RuntimeError, match="holds none"):
        loaded.transform(gappy_frame())
    loaded.load_imputer(tmp_path)
    again, _ = loaded.transform(gappy_frame())
    for pid in series:
        np.testing.assert_array_equal(again[pid].values, series[pid].values)


def test_ttt_training_is_seeded(ttt_fitted):
    pre, series = ttt_fitted
    again, _ = ttt_preprocessor(input_features=["iob"]).series(gappy_frame(), fit=True)
    np.testing.assert_array_equal(again["b"].values, series["b"].values)


@pytest.mark.parametrize(
    "settings, message",
    [
        (
            {"imputation_strategy": "knn"},
            r"choose one of \['mean', 'median', "
            r"'forward_fill', 'linear', 'ttt_imputer'\]",
        ),
        (
            {"imputation_strategy": "ttt_imputer", "imputation_window": 1},
            "imputation_window must be an integer >= 2",
        ),
        (
            {"imputation_strategy": "ttt_imputer", "imputer_params": {"depth": 3}},
            r"unknown field\(s\) \['depth'\]",
        ),
        (
            {"imputation_strategy": "ttt_imputer", "imputer_params": {"n_steps": 3}},
            "may not set",
        ),
    ],
)
def test_bad_imputation_settings_are_rejected(settings, message):
    with pytest.raises(ValueError, match=message):
        TTMConfig(model_path=None, **settings)


def test_ttt_needs_series_longer_than_a_window():
    with pytest.raises(
        ValueError, match="series too short for imputation_strategy 'ttt_imputer'"
    ):
        preprocessor(
            imputation_strategy="ttt_imputer",
            imputation_window=64,
            imputer_params=TINY_TTT,
        ).series(frame(), fit=True)
    # 60 steps: the last 12 validate, too few for one window of 16
    with pytest.raises(ValueError, match="needs training and validation windows"):
        preprocessor(
            imputation_strategy="ttt_imputer",
            imputation_window=16,
            imputer_params=TINY_TTT,
        ).series(frame(), fit=True)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.drop(columns="bg_mM"), "lacks column"),
        (
            lambda d: d.assign(bg_mM=np.where(d.p_num == "b", np.nan, d.bg_mM)),
            "patient 'b' has no observed 'bg_mM'",
        ),
        (lambda d: d.assign(bg_mM=d.bg_mM.where(d.index != 5, np.inf)), "infinite"),
        (lambda d: d.drop(columns="iob"), "covariate column"),
    ],
)
def test_bad_input_is_rejected(mutate, message):
    with pytest.raises(ValueError, match=message):
        preprocessor(input_features=["iob"]).prepare(mutate(frame()))


def test_inputs_as_dict_and_unknown_name():
    data = frame()
    as_dict = {p: g.drop(columns="p_num") for p, g in data.groupby("p_num")}
    series, _ = preprocessor().prepare(as_dict)
    assert sorted(series) == ["a", "b"]
    with pytest.raises(ValueError, match="unknown data set"):
        preprocessor().prepare("no-such-cohort")


def test_windows_and_lengths():
    starts = window_starts(30, 16, 4, last_target=24)
    assert starts[0] == 0 and starts[-1] + 16 + 4 == 24
    valid = window_starts(30, 16, 4, first_target=24)
    assert valid[0] + 16 == 24 and valid[-1] + 16 + 4 == 30
    with pytest.raises(ValueError, match="too short"):
        check_lengths(preprocessor().prepare(frame(n=10))[0], 20, "training")


def test_time_split_keeps_context():
    train, test = time_split(frame(), 0.25, context_length=16)
    assert len(train) == 2 * 45 and len(test) == 2 * (15 + 16)


def test_refit_reconsiders_dropped_covariates():
    pre = preprocessor(input_features=["iob", "cob"])
    pre.series(frame(), fit=True)
    assert pre.channels == ["bg_mM", "iob"]
    varying = frame().assign(cob=lambda d: np.arange(len(d), dtype=float))
    scaled, _ = pre.series(varying, fit=True)
    assert pre.channels == ["bg_mM", "iob", "cob"] and scaled["a"].values.shape[1] == 3


def test_ttt_default_patience_follows_a_short_budget():
    from tsgen.forecasting.config import ttt_imputer_settings

    # the default (10) would exceed the epochs
    assert ttt_imputer_settings({"epochs": 2})["patience"] == 2
    assert ttt_imputer_settings({"epochs": 40, "patience": None})["patience"] is None
    TTMConfig(
        model_path=None, imputation_strategy="ttt_imputer", imputer_params={"epochs": 2}
    )

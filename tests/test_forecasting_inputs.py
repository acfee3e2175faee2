import numpy as np
import pandas as pd
import pytest

from tsgen.forecasting import TTMConfig, time_split
from tsgen.forecasting.inputs import Preprocessor, check_lengths, impute, quality_report, window_starts


def frame(n=60, patients=("a", "b"), seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for k, p in enumerate(patients):
        t = pd.date_range("2024-01-01", periods=n, freq="5min")
        parts.append(pd.DataFrame({"datetime": t, "p_num": p, "bg_mM": 7 + np.sin(np.arange(n) / 5 + k) + rng.normal(0, 0.1, n),
                                   "iob": rng.uniform(0, 2, n), "cob": 0.0}))
    return pd.concat(parts, ignore_index=True)


def preprocessor(**kw):
    return Preprocessor(TTMConfig(model_path=None, context_length=16, forecast_length=4, **kw).to_data_config())


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
    np.testing.assert_allclose(pre.unscale_target(scaled["a"].values[:, :1])[:, 0], frame()["bg_mM"][:60])


def test_resampling_and_imputation():
    data = frame(n=12, patients=("a",)).drop(index=[3, 4])  # a 15-minute gap
    data.loc[7, "bg_mM"] = np.nan
    pre = preprocessor()
    series, report = pre.prepare(data)
    s = series["a"]
    assert len(s) == 12 and not np.isnan(s.values).any()
    assert s.observed[:, 0].tolist() == [True] * 3 + [False] * 2 + [True] * 2 + [False] + [True] * 4
    expected = np.interp(3, [2, 5], data["bg_mM"].loc[[2, 5]])
    assert s.values[3, 0] == pytest.approx(expected)
    assert report["nan share"].max() == pytest.approx(1 / 10)


@pytest.mark.parametrize("strategy", ["mean", "median", "forward_fill", "linear"])
def test_impute_strategies(strategy):
    x = np.array([[1.0], [np.nan], [3.0], [np.nan]])
    out = impute(x, strategy)
    expected = {"mean": [1, 2, 3, 2], "median": [1, 2, 3, 2], "forward_fill": [1, 1, 3, 3], "linear": [1, 2, 3, 3]}
    assert out[:, 0].tolist() == expected[strategy]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.drop(columns="bg_mM"), "lacks column"),
        (lambda d: d.assign(bg_mM=np.where(d.p_num == "b", np.nan, d.bg_mM)), "patient 'b' has no observed 'bg_mM'"),
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

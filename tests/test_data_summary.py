import numpy as np
import pytest

from tsgen.data import PATTERNS, missingness_summary, window_summary


def test_window_summary(sines):
    x = sines.copy()
    x[0, 0, 0] = np.nan  # ignored by the statistics
    table = window_summary({"a": x, "b": x[:5, :10, :2] * 2}, label="set")
    assert list(table.columns) == [
        "set",
        "windows",
        "length",
        "features",
        "min",
        "max",
        "mean",
    ]
    assert table["set"].tolist() == ["a", "b"]
    assert table[["windows", "length", "features"]].to_numpy().tolist() == [
        [200, 24, 5],
        [5, 10, 2],
    ]
    assert (
        table.loc[0, "max"] == pytest.approx(np.nanmax(x))
        and np.isfinite(table["mean"]).all()
    )


def test_missingness_summary_rows_and_rates(sines):
    table = missingness_summary(sines, [0.2, 0.5], seed=0)
    assert len(table) == len(PATTERNS) * 2
    assert table["pattern"].tolist()[:2] == [PATTERNS[0]] * 2 and table[
        "target"
    ].tolist()[:2] == [0.2, 0.5]
    assert (abs(table["realized"] - table["target"]) < 0.03).all()
    assert table["masks match NaNs"].all()
    timestep = table[table["pattern"] == "timestep"]
    # the same number of steps from every window
    assert np.allclose(timestep["std over windows"], 0)
    assert table.equals(missingness_summary(sines, [0.2, 0.5], seed=0))

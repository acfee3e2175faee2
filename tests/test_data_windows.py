import numpy as np
import pytest

from tsgen.data import sliding_windows, split_by_time, windowed_splits


def test_sliding_windows_values():
    series = np.arange(20.0).reshape(10, 2)
    w = sliding_windows(series, length=4, stride=3)
    assert w.shape == (3, 4, 2)  # starts 0, 3, 6
    assert np.array_equal(w[1], series[3:7])
    assert w.flags["C_CONTIGUOUS"]


def test_one_dimensional_series_gets_a_feature_axis():
    assert sliding_windows(np.arange(5.0), 3).shape == (3, 3, 1)


def test_split_is_time_ordered_and_complete():
    series = np.arange(100.0)[:, None]
    parts = split_by_time(series, (0.6, 0.2, 0.2))
    assert [len(p) for p in parts.values()] == [60, 20, 20]
    assert np.array_equal(np.concatenate(list(parts.values())), series)


def test_no_test_window_shares_a_time_step_with_training():
    t = np.arange(500.0)[:, None]  # the value is the time index
    w = windowed_splits(t, length=24, stride=1, fractions=(0.7, 0.1, 0.2))
    assert w["train"].max() < w["val"].min() and w["val"].max() < w["test"].min()
    assert {k: v.shape[1:] for k, v in w.items()} == {k: (24, 1) for k in w}


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: sliding_windows(np.zeros((10, 2)), 11), "longer than the series"),
        (lambda: sliding_windows(np.zeros((10, 2)), 0), "positive integer"),
        (lambda: sliding_windows(np.zeros((10, 2)), 3, stride=0), "stride"),
        (lambda: sliding_windows(np.zeros((2, 3, 4)), 2), "1-D .* or 2-D"),
        (lambda: sliding_windows(np.full((10, 2), np.nan), 3), "all NaN"),
        (lambda: sliding_windows(np.array([[0.0], [np.inf], [1.0]]), 2), "infinite"),
        (lambda: split_by_time(np.zeros((10, 1)), (0.5, 0.5)), "three non-negative"),
        (
            lambda: windowed_splits(np.zeros((50, 1)), 24, fractions=(0.8, 0.1, 0.1)),
            "val segment has 5",
        ),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()

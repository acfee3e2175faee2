import numpy as np
import pytest
import torch

from tsgen.data import PATTERNS, add_missingness, missing_rate
from tsgen.data.missing import RATE_TOLERANCE


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_rate_within_tolerance(sines, pattern, rate):
    d = add_missingness(sines, pattern, rate, seed=0)
    # timestep removes whole steps of a 24-step window: multiples of 1/24
    tol = (
        0.5 / sines.shape[1]
        if pattern == "timestep"
        else 0.02
        if pattern == "point"
        else RATE_TOLERANCE
    )
    assert abs(missing_rate(d["X"]) - rate) <= tol + 1e-9


@pytest.mark.parametrize("pattern", PATTERNS)
def test_pypots_format_and_mask_consistency(sines, pattern):
    d = add_missingness(sines, pattern, 0.4, seed=1)
    assert set(d) == {"X", "X_ori", "missing_mask", "indicating_mask"}
    assert all(v.shape == sines.shape for v in d.values())
    assert np.array_equal(d["missing_mask"] == 1, ~np.isnan(d["X"]))
    assert np.array_equal(
        d["indicating_mask"] == 1, np.isnan(d["X"]) & ~np.isnan(d["X_ori"])
    )
    observed = d["missing_mask"] == 1
    # kept values are untouched
    assert np.array_equal(d["X"][observed], sines[observed])
    assert np.array_equal(d["X_ori"], sines)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_seed_determines_mask(sines, pattern):
    a = add_missingness(sines, pattern, 0.3, seed=7)["missing_mask"]
    b = add_missingness(sines, pattern, 0.3, seed=7)["missing_mask"]
    c = add_missingness(sines, pattern, 0.3, seed=8)["missing_mask"]
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_global_random_state_is_left_alone(sines, pattern):
    np.random.seed(123), torch.manual_seed(123)
    expected = np.random.rand(3), torch.rand(3)
    np.random.seed(123), torch.manual_seed(123)
    add_missingness(sines, pattern, 0.3, seed=0)
    assert np.array_equal(np.random.rand(3), expected[0]) and torch.equal(
        torch.rand(3), expected[1]
    )


def test_seed_must_be_a_non_negative_integer(sines):
    for seed in (None, -1, 1.5):
        with pytest.raises(ValueError, match="seed"):
            add_missingness(sines, "point", 0.3, seed=seed)


def test_timestep_removes_whole_steps(sines):
    d = add_missingness(sines, "timestep", 0.5, seed=0)
    step_missing = np.isnan(d["X"]).any(axis=2)
    assert np.array_equal(step_missing, np.isnan(d["X"]).all(axis=2))
    assert (step_missing.sum(axis=1) == 12).all()


def test_block_spans_adjacent_features(sines):
    d = add_missingness(sines[:50], "block", 0.2, seed=0, block_len=6, block_width=3)
    # every missing value lies in a run of >= 6 steps of its feature
    gone = np.isnan(d["X"]).transpose(0, 2, 1).reshape(-1, sines.shape[1])
    for row in gone[gone.any(axis=1)]:
        edges = np.diff(np.concatenate([[0], row.astype(int), [0]]))
        runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
        assert (runs >= 6).all()


def test_existing_nans_are_kept_and_not_counted_as_removed(sines):
    x = sines.copy()
    x[:, 0, 0] = np.nan
    d = add_missingness(x, "point", 0.3, seed=0)
    assert np.isnan(d["X"][:, 0, 0]).all()
    assert d["indicating_mask"][:, 0, 0].sum() == 0


def test_rate_zero_removes_nothing(sines):
    d = add_missingness(sines, "sequence", 0.0)
    assert not np.isnan(d["X"]).any() and d["indicating_mask"].sum() == 0


def _with(value, index=3):
    def make(x):
        x = x.copy()
        x[index] = value
        return x

    return make


@pytest.mark.parametrize(
    "make_x, kwargs, message",
    [
        (lambda x: x[0], {}, "3-D"),
        (lambda x: x[..., None], {}, "3-D"),
        (lambda x: x, {"rate": 1.0}, r"\[0, 1\)"),
        (lambda x: x, {"rate": -0.1}, r"\[0, 1\)"),
        (lambda x: x, {"pattern": "stripes"}, "unknown missingness pattern"),
        (lambda x: x, {"pattern": "sequence", "seq_len": 30}, "seq_len"),
        (lambda x: x, {"pattern": "block", "block_width": 6}, "block_width"),
        (_with(np.inf), {}, "infinite"),
        (_with(np.nan), {}, "all-NaN window"),
    ],
)
def test_bad_input(sines, make_x, kwargs, message):
    with pytest.raises(ValueError, match=message):
        add_missingness(make_x(sines), **kwargs)


def test_error_when_a_window_would_lose_everything():
    x = np.random.default_rng(0).random((20, 4, 2))
    with pytest.raises(ValueError, match="removed every value"):
        add_missingness(x, "block", 0.95, seed=0, block_len=4, block_width=2)


def _missing_runs(x: np.ndarray) -> np.ndarray:
    """Lengths of the runs of NaN along time, over every window and feature."""
    gone = np.isnan(x).transpose(0, 2, 1).reshape(-1, x.shape[1]).astype(int)
    edges = np.diff(np.pad(gone, ((0, 0), (1, 1))), axis=1)
    return np.flatnonzero(edges.ravel() == -1) - np.flatnonzero(edges.ravel() == 1)


def test_subsequences_are_runs_in_one_feature(sines):
    d = add_missingness(sines[:50], "sequence", 0.5, seed=0, seq_len=6)
    assert (_missing_runs(d["X"]) >= 6).all()
    # runs are per feature: some steps lose one feature and keep others
    step_gone = np.isnan(d["X"])
    assert (step_gone.any(axis=2) & ~step_gone.all(axis=2)).any()


def test_rate_counts_only_observed_entries_of_data_with_gaps(sines):
    x = sines.copy()
    x[:, 5:9, 0] = np.nan  # a real gap: not removed here, not scored
    for pattern in ("point", "sequence", "block"):
        d = add_missingness(x, pattern, 0.5, seed=3)
        held = d["indicating_mask"].sum() / (~np.isnan(x)).sum()
        assert abs(held - 0.5) <= 0.02 and d["indicating_mask"][:, 5:9, 0].sum() == 0


def test_empty_windows_are_returned_when_allowed():
    x = np.random.default_rng(0).random((200, 4, 1))
    with pytest.raises(ValueError, match="removed every value"):
        add_missingness(x, "point", 0.9, seed=0)
    d = add_missingness(x, "point", 0.9, seed=0, allow_empty=True)
    empty = d["missing_mask"].sum(axis=(1, 2)) == 0
    assert 0 < empty.sum() < len(x)
    again = add_missingness(x, "point", 0.9, seed=0, allow_empty=True)
    assert np.array_equal(d["missing_mask"], again["missing_mask"])

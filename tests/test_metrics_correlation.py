import numpy as np
import pytest

from tsgen.data import make_sines
from tsgen.metrics import (
    correlation_distance,
    correlation_score,
    cross_correlations,
    distort,
)


def test_identical_sets_score_zero():
    x = make_sines(100, seed=0)
    assert correlation_score(x, x, repeats=1).mean == pytest.approx(0.0, abs=1e-12)
    assert correlation_distance(x, x) == 0.0


def test_level_shift_and_scale_do_not_change_correlations():
    x = make_sines(50, seed=0)
    # float32 inputs: zero up to round-off
    assert correlation_distance(x, 3 * distort(x, "shift", 0.5)) == pytest.approx(
        0.0, abs=1e-6
    )


def test_known_value_correlated_versus_anticorrelated():
    base = np.random.default_rng(0).normal(size=(40, 10, 1))
    real = np.concatenate([base, base], axis=2)  # correlation +1
    fake = np.concatenate([base, -base], axis=2)  # correlation -1
    # the mean of products of unbiased z-scores is (n - 1) / n * correlation
    n = base.size
    assert correlation_distance(real, fake) == pytest.approx(2 * (n - 1) / n / 10)


def test_independent_sample_near_noise_far_and_seeded():
    real, other = make_sines(500, seed=0), make_sines(500, seed=1)
    noise = np.random.default_rng(0).uniform(0, 1, real.shape)
    near = correlation_score(real, other, seed=0)
    far = correlation_score(real, noise, seed=0)
    assert len(near.values) == 5 and near.mean < far.mean
    assert correlation_score(real, other, seed=0).values == near.values


def test_errors():
    x = make_sines(20, seed=0)
    with pytest.raises(ValueError, match="constant"):
        constant = x.copy()
        constant[:, :, 1] = 0.5
        correlation_distance(x, constant)
    with pytest.raises(ValueError, match="subsets"):
        correlation_score(x, x, repeats=20)
    with pytest.raises(ValueError, match="features"):
        correlation_score(x, x[:, :, :2])


def test_cross_correlations_are_the_mean_products_of_each_feature_pair():
    x = np.random.default_rng(0).normal(size=(6, 20, 4)).cumsum(axis=1)
    z = (x - x.mean(axis=(0, 1))) / x.std(axis=(0, 1), ddof=1)
    left, right = np.tril_indices(4)
    expected = [
        (z[:, lag:, left] * z[:, : 20 - lag, right]).mean(axis=(0, 1))
        for lag in range(3)
    ]
    np.testing.assert_allclose(cross_correlations(x, 3), expected, rtol=1e-12)

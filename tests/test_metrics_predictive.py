import numpy as np
import pytest

from tsgen.data import make_sines
from tsgen.metrics import predictive_score

FAST = dict(iterations=150, batch_size=64, repeats=1)


def test_training_on_noise_predicts_real_series_worse():
    real = make_sines(200, seed=0)
    other = make_sines(200, seed=1)
    noise = np.random.default_rng(0).uniform(0, 1, real.shape)
    near = predictive_score(real, other, seed=0, **FAST).mean
    far = predictive_score(real, noise, seed=0, **FAST).mean
    assert far > near > 0


def test_same_seed_same_score():
    real = make_sines(50, seed=0)
    a = predictive_score(real, real, seed=1, iterations=10, repeats=2)
    b = predictive_score(real, real, seed=1, iterations=10, repeats=2)
    c = predictive_score(real, real, seed=2, iterations=10, repeats=2)
    assert a.values == b.values and a.values != c.values


def test_single_feature_and_sets_of_different_size():
    real = make_sines(30, n_features=1, seed=0)
    assert (
        predictive_score(
            real, make_sines(7, n_features=1, seed=1), iterations=3, repeats=1
        ).mean
        > 0
    )


def test_errors():
    real = make_sines(20, seed=0)
    with pytest.raises(ValueError, match="at least 2 time steps"):
        predictive_score(real[:, :1], real[:, :1])
    with pytest.raises(ValueError, match="length"):
        predictive_score(real, real[:, :10])
    with pytest.raises(ValueError, match="infinite"):
        bad = real.copy()
        bad[1, 2, 3] = np.inf
        predictive_score(bad, real)
    with pytest.raises(ValueError, match="3-D"):
        predictive_score(real[0], real)

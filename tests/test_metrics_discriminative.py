import numpy as np
import pytest

from tsgen.data import make_sines
from tsgen.metrics import discriminative_score
from tsgen.metrics.discriminative import GRUClassifier

FAST = dict(iterations=400, batch_size=64, repeats=1)


@pytest.fixture(scope="module")
def sets():
    real = make_sines(200, seed=0)
    other = make_sines(200, seed=1)
    noise = np.random.default_rng(0).uniform(0, 1, real.shape)
    return real, other, noise


def test_noise_is_far_and_an_independent_sample_is_near_the_floor(sets):
    real, other, noise = sets
    near = discriminative_score(real, other, seed=0, **FAST).mean
    far = discriminative_score(real, noise, seed=0, **FAST).mean
    assert 0 <= near <= 0.2
    assert far >= 0.35  # noise vs smooth sines: almost perfectly separable
    assert far > near


def test_same_seed_same_score_and_repeats(sets):
    real, _, noise = sets
    kwargs = dict(iterations=20, batch_size=32, repeats=2)
    a = discriminative_score(real, noise, seed=3, **kwargs)
    b = discriminative_score(real, noise, seed=3, **kwargs)
    assert a.values == b.values and len(a.values) == 2
    mean, std = a
    assert mean == pytest.approx(np.mean(a.values)) and std >= 0


def test_hidden_size_is_at_least_one():
    assert GRUClassifier(1, max(1, 1 // 2)).gru.hidden_size == 1
    real = make_sines(20, n_features=1, seed=0)
    assert (
        0 <= discriminative_score(real, real[::-1], iterations=2, repeats=1).mean <= 0.5
    )


def test_errors():
    real = make_sines(20, seed=0)
    with pytest.raises(ValueError, match="NaN"):
        bad = real.copy()
        bad[0, 0, 0] = np.nan
        discriminative_score(real, bad)
    with pytest.raises(ValueError, match="features"):
        discriminative_score(real, real[:, :, :3])
    with pytest.raises(ValueError, match="at least 5"):
        discriminative_score(real, real[:4])
    with pytest.raises(ValueError, match="iterations"):
        discriminative_score(real, real, iterations=0)

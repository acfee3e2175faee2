import numpy as np
import pytest

from tsgen.data import make_sines
from tsgen.metrics import ContextFID, context_fid, distort, frechet_distance


def test_frechet_distance_of_a_set_with_itself_is_zero():
    a = np.random.default_rng(0).normal(size=(200, 10))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_a_shifted_set_is_the_squared_shift():
    a = np.random.default_rng(0).normal(size=(300, 4)) @ np.diag([1.0, 2.0, 0.5, 3.0])
    shift = np.array([1.0, -2.0, 0.5, 0.0])
    assert frechet_distance(a, a + shift) == pytest.approx(np.sum(shift**2), rel=1e-6)


def test_frechet_distance_of_gaussians_in_one_dimension():
    # (mu1 - mu2)^2 + (s1 - s2)^2 for 1-D Gaussians; here with the sample moments
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, (500, 1)), rng.normal(2, 3, (500, 1))
    expected = (a.mean() - b.mean()) ** 2 + (a.std(ddof=1) - b.std(ddof=1)) ** 2
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_context_fid_orders_self_independent_sample_shift_and_noise():
    real = make_sines(150, seed=0)
    scorer = ContextFID(real, seed=0, iterations=40, repeats=1)
    self_fid = scorer(real).mean
    other = scorer(make_sines(150, seed=1)).mean
    shifted = [scorer(distort(real, "shift", s)).mean for s in (0.1, 0.3, 1.0)]
    noise = scorer(np.random.default_rng(0).uniform(0, 1, real.shape)).mean
    assert self_fid == pytest.approx(0.0, abs=1e-6)
    assert other < shifted[0] < shifted[1] < shifted[2]
    assert other < noise


def test_context_fid_is_seeded():
    real, fake = make_sines(40, seed=0), make_sines(40, seed=1)
    kwargs = dict(seed=2, iterations=5, repeats=2)
    assert (
        context_fid(real, fake, **kwargs).values
        == context_fid(real, fake, **kwargs).values
    )


def test_errors():
    real = make_sines(20, seed=0)
    with pytest.raises(ValueError, match="features"):
        context_fid(real, real[:, :, :2], iterations=1, repeats=1)
    with pytest.raises(ValueError, match="NaN"):
        context_fid(real, np.full_like(real, np.nan), iterations=1, repeats=1)
    with pytest.raises(ValueError, match="2-D"):
        frechet_distance(np.zeros(5), np.zeros(5))

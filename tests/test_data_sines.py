import numpy as np
import pytest

from tsgen.data import make_sines


def test_shape_and_range():
    x = make_sines(50, length=24, n_features=5, seed=1)
    assert x.shape == (50, 24, 5)
    assert x.min() >= 0.0 and x.max() <= 1.0
    # frequency and phase ~ U(0, 0.1) keep the argument in [0, 2.4]: sin >= 0
    assert x.min() >= 0.5 - 1e-12


def test_channels_are_sines_with_small_frequency():
    x = make_sines(20, length=24, n_features=3, seed=2)
    s = 2 * x - 1  # back to [-1, 1]
    # a sine satisfies s[t+1] + s[t-1] = 2 cos(f) s[t], with f in (0, 0.1)
    ratio = (s[:, 2:] + s[:, :-2]) / (2 * s[:, 1:-1])
    cos_f = ratio.mean(axis=1)
    assert np.allclose(ratio, cos_f[:, None], atol=1e-6)
    assert (cos_f > np.cos(0.1) - 1e-9).all() and (cos_f <= 1.0).all()


def test_seed_determines_data():
    assert np.array_equal(make_sines(10, seed=3), make_sines(10, seed=3))
    assert not np.array_equal(make_sines(10, seed=3), make_sines(10, seed=4))


@pytest.mark.parametrize(
    "kwargs", [{"n_samples": 0}, {"length": -1}, {"n_features": 2.5}]
)
def test_bad_sizes(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        make_sines(**{"n_samples": 5, **kwargs})

import numpy as np
import pytest

from tsgen.adaptation import shifted_sines
from tsgen.data import make_sines


def test_defaults_reproduce_make_sines():
    assert np.array_equal(
        shifted_sines(20, length=30, n_features=4, seed=5),
        make_sines(20, 30, 4, seed=5),
    )


def test_frequencies_lie_in_the_asked_range():
    x = shifted_sines(30, length=24, n_features=3, freq_range=(0.2, 0.3), seed=1)
    s = 2 * x - 1
    # sin recurrence: 2 cos(f)
    cos_f = ((s[:, 2:] + s[:, :-2]) / (2 * s[:, 1:-1])).mean(axis=1)
    # the ratio is unstable where s ~ 0
    near_zero = np.abs(s[:, 1:-1]).min(axis=1) < 1e-3
    f = np.arccos(np.clip(cos_f[~near_zero], -1, 1))
    assert ((f > 0.2 - 1e-6) & (f < 0.3 + 1e-6)).all()


def test_level_and_scale():
    base = shifted_sines(10, seed=2)
    moved = shifted_sines(10, level=-0.3, scale=2.0, seed=2)
    assert np.allclose(moved, -0.3 + 2.0 * base)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_samples": 0}, "n_samples"),
        ({"freq_range": (0.2, 0.1)}, "freq_range"),
        ({"scale": 0.0}, "scale"),
        ({"level": np.inf}, "level"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        shifted_sines(**{"n_samples": 5, **kwargs})

import numpy as np
import pytest

from tsgen.data import make_sines
from tsgen.metrics import DISTORTIONS, distort


@pytest.mark.parametrize("kind", DISTORTIONS)
def test_amount_zero_is_the_identity(kind):
    x = make_sines(5, seed=0)
    assert np.allclose(distort(x, kind, 0), x)


def test_distortions_do_what_they_say():
    x = make_sines(5, seed=0)
    assert np.allclose(distort(x, "shift", 0.2), x + 0.2)
    line = np.arange(24, dtype=float)[None, :, None] * np.ones((2, 1, 3))
    # a line survives averaging
    assert np.allclose(distort(line, "smooth", 2)[:, 2:-2], line[:, 2:-2])
    # time runs at half speed
    assert np.allclose(distort(line, "frequency", 0.5), line * 0.5)
    noisy = distort(x, "noise", 0.1, seed=1)
    assert abs((noisy - x).std() - 0.1) < 0.01


def test_further_means_more_different():
    x = make_sines(20, seed=0)
    for kind, amounts in {
        "smooth": [1, 3, 6],
        "frequency": [0.2, 0.5, 0.8],
        "noise": [0.05, 0.1, 0.2],
    }.items():
        gaps = [np.abs(distort(x, kind, a) - x).mean() for a in amounts]
        assert gaps == sorted(gaps), kind


def test_errors():
    x = make_sines(2, seed=0)
    with pytest.raises(ValueError, match="unknown distortion"):
        distort(x, "warp", 1)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        distort(x, "frequency", 1.0)
    with pytest.raises(ValueError, match="whole number"):
        distort(x, "smooth", 1.5)
    with pytest.raises(ValueError, match=">= 0"):
        distort(x, "shift", -1)

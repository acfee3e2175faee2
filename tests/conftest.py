import numpy as np
import pytest

from tsgen.data import make_sines


@pytest.fixture
def sines():
    return make_sines(200, length=24, n_features=5, seed=0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)

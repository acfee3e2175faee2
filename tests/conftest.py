import numpy as np
import pytest

from tsgen.data import make_sines


@pytest.fixture
def sines():
    return make_sines(200, length=24, n_features=5, seed=0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """One torch thread for the whole session: these models are tiny, two threads
    contending for the CI machine's two cores are far slower than one, and a
    module-scoped fixture then computes with the same thread count as its tests."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

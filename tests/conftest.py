from pathlib import Path

import nbformat
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


def write_notebook(path: Path, parameters: str, *cells: str) -> Path:
    """A notebook at ``path`` with a tagged ``parameters`` cell and code ``cells``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = nbformat.v4.new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(cell) for cell in cells)]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def tiny_generation_config():
    """The smallest ImagenI2R that runs every phase: 24 steps, 2 features, 8x8 images."""
    from tsgen.generation import GenerationConfig

    return GenerationConfig(
        length=24,
        n_features=2,
        delay=3,
        embedding=8,
        tst_d_model=8,
        tst_heads=2,
        tst_layers=1,
        tst_feedforward=8,
        decoder_layers=1,
        unet_channels=(8, 8),
        unet_attention=(False, False),
        tst_epochs=1,
        epochs=1,
        batch_size=16,
        sampling_steps=2,
    )

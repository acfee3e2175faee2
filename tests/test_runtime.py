import logging
import random
import warnings

import numpy as np
import pytest
import torch

from tsgen import runtime


def global_states():
    return torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()


def assert_same_states(before, after):
    assert torch.equal(before[0], after[0])
    assert np.array_equal(before[1], after[1])
    assert before[2] == after[2]


def test_seeded_is_reproducible_and_restores_the_callers_state():
    before = global_states()
    with runtime.seeded(3):
        first = (torch.rand(2), np.random.rand(), random.random())
    assert_same_states(before, global_states())
    with runtime.seeded(3):
        second = (torch.rand(2), np.random.rand(), random.random())
    assert torch.equal(first[0], second[0]) and first[1:] == second[1:]


def test_seeded_restores_even_when_the_block_fails():
    before = global_states()
    with pytest.raises(RuntimeError), runtime.seeded(1):
        torch.rand(3)
        raise RuntimeError("boom")
    assert_same_states(before, global_states())


@pytest.mark.parametrize("seed", ["abc", 1.5, True, -1, None])
def test_bad_seeds_are_clear_errors(seed):
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        runtime.check_seed(seed)


def test_generators_and_derived_seeds():
    assert torch.equal(
        torch.rand(3, generator=runtime.torch_generator(4)),
        torch.rand(3, generator=runtime.torch_generator(4)),
    )
    assert runtime.numpy_rng(4).random() == runtime.numpy_rng(4).random()
    assert runtime.derive_seed(0, 1) == runtime.derive_seed(0, 1)
    assert len({runtime.derive_seed(0, k) for k in range(50)}) == 50
    assert runtime.derive_seed(0, 1) != runtime.derive_seed(1, 1)


def test_resolve_device():
    assert runtime.resolve_device("cpu") == "cpu"
    assert runtime.resolve_device(None) == "cpu"
    assert runtime.resolve_device("auto") in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device must be"):
        runtime.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA"):
            runtime.resolve_device("cuda:0")


def test_quiet_is_scoped_and_narrow(caplog):
    log = logging.getLogger("tsgen.test.noisy")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with runtime.quiet(
            loggers=["tsgen.test.noisy"], warnings_=[(UserWarning, "harmless")]
        ):
            log.warning("hidden")
            warnings.warn("harmless chatter", UserWarning, stacklevel=1)
            warnings.warn("something that matters", UserWarning, stacklevel=1)
        log.warning("shown")
    assert [str(w.message) for w in caught] == ["something that matters"]
    assert [r.getMessage() for r in caplog.records if r.name == "tsgen.test.noisy"] == [
        "shown"
    ]
    assert not log.disabled


def test_progress_is_off_unless_asked(capsys):
    assert list(runtime.progress(range(3))) == [0, 1, 2]
    assert capsys.readouterr().err == ""
    assert list(runtime.progress(range(2), enabled=True, desc="demo")) == [0, 1]
    assert "demo" in capsys.readouterr().err


def test_atomic_file_replaces_the_file_whole_or_leaves_it_as_it_was(tmp_path):
    path = tmp_path / "new" / "data.txt"
    with runtime.atomic_file(path) as partial:
        partial.write_text("first")
        assert not path.exists()  # nothing visible until the block succeeds
    assert path.read_text() == "first"
    with pytest.raises(RuntimeError, match="interrupted"):
        with runtime.atomic_file(path) as partial:
            partial.write_text("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "first"
    assert sorted(p.name for p in path.parent.iterdir()) == ["data.txt"]

import numpy as np
import pytest
import torch

from tsgen.metrics.base import MetricResult, check_count, check_pair, repeat


def test_result_unpacks_as_mean_and_std():
    result = MetricResult("m", (1.0, 2.0, 3.0), seconds=0.5)
    mean, std = result
    # sample std, ddof=1
    assert mean == pytest.approx(2.0) and std == pytest.approx(1.0)
    # Student t with 2 degrees of freedom: 4.303 * 1 / sqrt(3)
    assert result.ci95 == pytest.approx(4.3027 / np.sqrt(3), rel=1e-3)
    assert "2.0000 ± 1.0000" in str(result)


def test_single_repeat_has_zero_spread():
    result = MetricResult("m", (0.25,), seconds=0.0)
    assert tuple(result) == (0.25, 0.0) and result.ci95 == 0.0


def test_repeat_uses_consecutive_seeds_and_keeps_global_state():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    result = repeat(
        "m", lambda s, d: s + torch.rand(1).item() * 0, repeats=3, seed=10, device="cpu"
    )
    assert result.values == (10.0, 11.0, 12.0)
    # the caller's random stream is untouched
    assert torch.equal(torch.rand(1), expected_next)
    assert torch.get_num_threads() == threads


def test_repeat_refuses_non_finite_values():
    with pytest.raises(ValueError, match="non-finite"):
        repeat("m", lambda s, d: float("nan"), repeats=1, seed=0, device="cpu")
    with pytest.raises(ValueError, match="repeats"):
        repeat("m", lambda s, d: 0.0, repeats=0, seed=0, device="cpu")


@pytest.mark.parametrize(
    "real, fake, message",
    [
        (np.zeros((4, 5)), np.zeros((4, 5, 2)), "real must be 3-D"),
        (np.zeros((4, 5, 2)), np.zeros((4, 5, 3)), "features"),
        (np.zeros((4, 5, 2)), np.zeros((4, 6, 2)), "length"),
        (np.zeros((4, 5, 2)), np.full((4, 5, 2), np.nan), "NaN"),
        (np.full((4, 5, 2), np.inf), np.zeros((4, 5, 2)), "infinite"),
        (np.zeros((1, 5, 2)), np.zeros((4, 5, 2)), "at least 2 series"),
        (np.zeros((0, 5, 2)), np.zeros((4, 5, 2)), "empty"),
    ],
)
def test_bad_inputs_are_named(real, fake, message):
    with pytest.raises(ValueError, match=message):
        check_pair(real, fake)


@pytest.mark.parametrize("value", [0, 2.5, True, "3", None, float("nan")])
def test_counts_must_be_whole_numbers(value):
    with pytest.raises(ValueError, match="iterations"):
        check_count(value, "iterations")


def test_a_whole_float_is_a_count():
    assert check_count(3.0, "repeats") == 3 and isinstance(
        check_count(np.int64(3), "repeats"), int
    )

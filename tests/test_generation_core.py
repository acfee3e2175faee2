import numpy as np
import pytest
import torch

from tsgen.generation import GenerationConfig
from tsgen.generation.core import (
    TSTCompleter,
    linear_fill,
    masked_mse,
    propagate_values,
    zero_fill,
)

nan = float("nan")


def test_propagate_values_fills_forward_then_backward():
    x = torch.tensor([[nan, 2.0, nan, nan, 5.0, nan]]).view(1, 6, 1)
    assert propagate_values(x).flatten().tolist() == [2, 2, 2, 2, 5, 5]


def test_feature_never_observed_in_a_window_is_zero_and_all_nan_window_is_an_error():
    x = torch.tensor([[[1.0, nan], [nan, nan]]])
    assert propagate_values(x).tolist() == [[[1.0, 0.0], [1.0, 0.0]]]
    with pytest.raises(ValueError, match="no observed value"):
        propagate_values(torch.full((2, 3, 1), nan))
    with pytest.raises(ValueError, match="infinite"):
        propagate_values(torch.tensor([[[float("inf")]]]))
    with pytest.raises(ValueError, match="batch, length, features"):
        propagate_values(torch.zeros(3, 4))


def test_linear_fill_matches_numpy_interp():
    rng = np.random.default_rng(0)
    x = rng.random((5, 30, 3))
    x[rng.random(x.shape) < 0.5] = np.nan
    x[:, 0, :] = 0.25  # keep every feature observed somewhere
    filled = linear_fill(torch.tensor(x)).numpy()
    for i in range(5):
        for f in range(3):
            seen = ~np.isnan(x[i, :, f])
            expected = np.interp(np.arange(30), np.flatnonzero(seen), x[i, seen, f])
            np.testing.assert_allclose(filled[i, :, f], expected, atol=1e-12)
    assert zero_fill(torch.tensor([[[nan], [3.0]]])).flatten().tolist() == [0.0, 3.0]


def test_masked_mse_ignores_unobserved_entries():
    prediction = torch.zeros(1, 4, 1, requires_grad=True)
    target = torch.tensor([1.0, nan, 3.0, nan]).view(1, 4, 1)
    loss = masked_mse(prediction, target, ~torch.isnan(target))
    assert loss.item() == pytest.approx(5.0)
    loss.backward()
    assert prediction.grad.flatten()[[1, 3]].abs().sum() == 0


@pytest.mark.parametrize(
    "norm,pos", [("BatchNorm", "fixed"), ("LayerNorm", "learnable")]
)
def test_completer_keeps_observed_values_and_outputs_in_unit_interval(norm, pos):
    torch.manual_seed(0)
    config = GenerationConfig(
        length=12,
        n_features=3,
        delay=2,
        embedding=4,
        tst_d_model=8,
        tst_heads=2,
        tst_layers=1,
        tst_feedforward=16,
        tst_norm=norm,
        tst_pos_encoding=pos,
    )
    completer = TSTCompleter.from_config(config)
    x = torch.rand(6, 12, 3)
    x[:, ::3] = nan
    recon = completer(x)
    assert recon.shape == x.shape and (recon > 0).all() and (recon < 1).all()
    done = completer.complete(x)
    seen = ~torch.isnan(x)
    assert torch.equal(done[seen], x[seen]) and not torch.isnan(done).any()
    # a few steps of training lower the reconstruction loss on observed entries
    optimizer = torch.optim.Adam(completer.parameters(), lr=1e-2)
    first = completer.loss(x).item()
    for _ in range(30):
        optimizer.zero_grad()
        completer.loss(x).backward()
        optimizer.step()
    assert completer.loss(x).item() < first

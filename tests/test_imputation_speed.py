"""Timing helpers: a real training batch, forward + backward timed, the model left as it was; the per-token loop."""

import numpy as np
import pytest
import torch

from tsgen.data import make_sines
from tsgen.imputation import make_imputer
from tsgen.imputation.layers import TTTMLP, TTTLinear
from tsgen.imputation.speed import (
    forward_seconds,
    imputer_step_seconds,
    interleaved_step_seconds,
    per_token_reference,
    step_seconds,
    training_batch,
)


def test_training_batch_masks():
    batch = training_batch(
        make_sines(8, length=10, n_features=2, seed=0), rate=0.25, seed=0
    )
    assert set(batch) == {"X", "missing_mask", "X_ori", "indicating_mask"}
    hidden, observed = batch["indicating_mask"].bool(), batch["missing_mask"].bool()
    assert not (hidden & observed).any() and (hidden | observed).all()
    assert (batch["X"][hidden] == 0).all() and abs(
        hidden.float().mean().item() - 0.25
    ) < 0.05


def test_imputer_step_seconds_times_and_leaves_model_clean():
    batch = training_batch(make_sines(8, length=10, n_features=2, seed=0))
    imputer = make_imputer(
        "TTTImputer", 10, 2, d_model=8, n_heads=2, n_layers=1, d_ffn=8
    )
    before = {k: v.clone() for k, v in imputer.model.state_dict().items()}
    seconds = imputer_step_seconds(imputer, batch, repeats=2)
    assert seconds > 0 and not imputer.model.training
    assert all(p.grad is None for p in imputer.model.parameters())
    # timing never steps
    assert all(torch.equal(v, before[k]) for k, v in imputer.model.state_dict().items())


def test_step_and_forward_seconds_check_arguments():
    w = torch.ones(3, requires_grad=True)
    assert step_seconds(lambda: (w * 2).sum(), repeats=3, warmup=0) >= 0
    assert np.allclose(w.grad.numpy(), 6.0)  # three backward passes, no optimizer
    assert forward_seconds(lambda: (w * 2).sum(), repeats=2) >= 0
    assert np.allclose(w.grad.numpy(), 6.0)  # no gradient from the forward timings
    for timer in (step_seconds, forward_seconds):
        with pytest.raises(ValueError, match="repeats"):
            timer(lambda: w.sum(), repeats=0)


def test_per_token_reference_is_the_layers_forward():
    torch.manual_seed(0)
    layer = TTTLinear(8, 2, mini_batch_size=3)
    x = torch.randn(2, 7, 8)
    with torch.no_grad():
        assert torch.allclose(per_token_reference(layer, x), layer(x), atol=1e-5)


def test_interleaved_step_seconds_times_every_model_and_leaves_them_clean():
    batch = training_batch(make_sines(4, length=6, n_features=2, seed=0))
    imputers = {
        name: make_imputer(name, 6, 2, d_model=8, n_heads=2, n_layers=1, d_ffn=8)
        for name in ("SAITS", "TTTImputer")
    }
    seconds = interleaved_step_seconds(imputers, batch, repeats=2)
    assert set(seconds) == set(imputers) and all(s > 0 for s in seconds.values())
    for imputer in imputers.values():
        assert not imputer.model.training
        assert all(p.grad is None for p in imputer.model.parameters())
    with pytest.raises(ValueError, match="repeats"):
        interleaved_step_seconds(imputers, batch, repeats=0)


def test_per_token_reference_scales_the_inner_lr_by_one_over_position():
    # θ_t = θ_0 − (1/t) Σ_{s≤t} η_s ∇ℓ_s: with base_lr doubled and t = 2, the second
    # token sees the same weights as under the constant scaling with the lr halved back
    torch.manual_seed(0)
    x = torch.randn(2, 2, 8, dtype=torch.float64)

    def reference(scaling, base_lr):
        torch.manual_seed(1)
        layer = TTTMLP(8, 2, 2, base_lr=base_lr, inner_lr_scaling=scaling).double()
        return per_token_reference(layer, x)

    halved = reference("inverse_position", 2.0)
    assert torch.allclose(halved[:, 1], reference("constant", 1.0)[:, 1])
    assert not torch.allclose(halved[:, 1], reference("constant", 2.0)[:, 1])

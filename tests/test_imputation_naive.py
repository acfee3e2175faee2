"""The naive TTT RNN: a per-step gradient update of its hidden state, trained on observed entries."""

import numpy as np
import pytest
import torch

from tsgen.data import add_missingness, make_sines
from tsgen.imputation import NaiveTTTImputer, train_naive


def test_hidden_state_is_updated_by_gradient_steps():
    model = NaiveTTTImputer(2, d_hidden=4, inner_lr=0.5, seed=0)
    x = torch.randn(3, 5, 2)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (3, 5, 2)
    # with no inner learning the state stays W0 = 0
    # and the output is the readout bias alone
    model.inner_lr = 0.0
    with torch.no_grad():
        still = model(x)
    assert torch.allclose(still, model.readout.bias.expand_as(still))
    assert not torch.allclose(out, still)


def test_training_lowers_the_loss_and_imputation_keeps_observed_values():
    data = add_missingness(
        make_sines(64, length=10, n_features=2, seed=0), "point", 0.3, seed=0
    )
    model = NaiveTTTImputer(2, d_hidden=8, seed=0)
    losses = train_naive(model, data["X"], epochs=4, lr=1e-2, batch_size=16)
    assert len(losses) == 4 and losses[-1] < losses[0]
    imputed = model.impute(data["X"])
    observed = ~np.isnan(data["X"])
    np.testing.assert_array_equal(imputed[observed], data["X"][observed])
    assert np.isfinite(imputed).all()


def test_initialisation_is_seeded_and_leaves_the_global_generator_alone():
    state = torch.get_rng_state()
    first, second = NaiveTTTImputer(2, seed=3), NaiveTTTImputer(2, seed=3)
    assert torch.equal(state, torch.get_rng_state())
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            first.state_dict().values(), second.state_dict().values(), strict=True
        )
    )
    assert not torch.equal(first.key.weight, NaiveTTTImputer(2, seed=4).key.weight)


def test_bad_input():
    model = NaiveTTTImputer(2)
    with pytest.raises(ValueError, match="expected X"):
        model(torch.zeros(1, 4, 3))
    with pytest.raises(ValueError, match="features"):
        train_naive(model, np.zeros((4, 5, 3)))
    X = np.zeros((2, 4, 2))
    X[1] = np.nan
    with pytest.raises(ValueError, match="all-NaN"):
        model.impute(X)

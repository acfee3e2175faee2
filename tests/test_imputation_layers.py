"""TTT layers: the dual form against a per-token loop, shapes, heads, bidirectionality."""

import pytest
import torch

from tsgen.imputation.layers import (
    TTTMLP,
    BidirectionalTTT,
    TTTBlock,
    TTTEncoder,
    TTTLinear,
    make_ttt_layer,
)
from tsgen.imputation.speed import per_token_reference


@pytest.mark.parametrize("cls", [TTTLinear, TTTMLP])
@pytest.mark.parametrize("mini_batch_size", [1, 4, 7])
def test_dual_form_equals_per_token_loop(cls, mini_batch_size):
    torch.manual_seed(0)
    layer = cls(
        d_model=16, n_heads=2, mini_batch_size=mini_batch_size, base_lr=1.0
    ).double()
    # larger initial weights than the default so the inner updates matter
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name in ("W0", "W1", "W2"):
                p.normal_(0, 0.3)
    x = torch.randn(3, 18, 16, dtype=torch.float64)  # 18 is not a multiple of 4 or 7
    with torch.no_grad():
        dual = layer(x)
    loop = per_token_reference(layer, x)
    assert dual.shape == (3, 18, 16)
    assert torch.allclose(dual, loop, atol=1e-5, rtol=0)
    # the inner updates change the output: a layer whose lr is ~0 gives something else
    layer.base_lr = 1e-9
    with torch.no_grad():
        frozen = layer(x)
    assert (frozen - dual).abs().max() > 1e-3


def test_dual_form_in_float32_matches_within_1e5():
    torch.manual_seed(1)
    layer = TTTLinear(d_model=16, n_heads=4, mini_batch_size=8)
    x = torch.randn(2, 24, 16)
    with torch.no_grad():
        dual = layer(x)
    assert torch.allclose(dual, per_token_reference(layer, x), atol=1e-5, rtol=0)


def test_unidirectional_layer_is_causal_and_bidirectional_is_not():
    torch.manual_seed(0)
    x = torch.randn(1, 12, 8)
    later = x.clone()
    later[:, 8:] += 1.0  # change only the future of step 7
    uni = TTTLinear(8, 2, mini_batch_size=4)
    bi = BidirectionalTTT(
        TTTLinear(8, 2, mini_batch_size=4), TTTLinear(8, 2, mini_batch_size=4)
    )
    with torch.no_grad():
        assert torch.allclose(uni(x)[:, :8], uni(later)[:, :8], atol=1e-6)
        assert not torch.allclose(bi(x)[:, :8], bi(later)[:, :8], atol=1e-4)


def test_inner_lr_is_learnable_per_token_and_head():
    layer = TTTMLP(8, n_heads=2, mini_batch_size=4)
    x = torch.randn(2, 6, 8, requires_grad=True)
    _, _, _, eta = layer.views(x)
    assert eta.shape == (2, 2, 6) and (eta > 0).all()
    layer(x).sum().backward()
    for name in ("lr_gate.weight", "inner_norm_weight", "W1", "W2", "q_proj.weight"):
        assert dict(layer.named_parameters())[name].grad.abs().sum() > 0, name


def test_encoder_shapes_and_bad_arguments():
    enc = TTTEncoder(
        2,
        d_model=16,
        d_ffn=32,
        n_heads=4,
        layer_type="mlp",
        mini_batch_size=5,
        bidirectional=True,
    )
    assert enc(torch.randn(3, 11, 16)).shape == (3, 11, 16)
    assert TTTBlock(16, 32, bidirectional=False)(torch.randn(1, 3, 16)).shape == (
        1,
        3,
        16,
    )
    with pytest.raises(ValueError, match="multiple of n_heads"):
        TTTLinear(10, 3)
    with pytest.raises(ValueError, match="unknown TTT layer type"):
        make_ttt_layer("rnn", 8, 2, 4, 1.0)
    with pytest.raises(ValueError, match="mini_batch_size"):
        TTTLinear(8, 2, mini_batch_size=0)
    with pytest.raises(ValueError, match="expected input"):
        TTTLinear(8, 2)(torch.randn(2, 5, 7))

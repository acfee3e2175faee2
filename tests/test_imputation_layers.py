"""TTT layers: the dual form against a per-token loop, shapes, heads, bidirectionality."""

import pytest
import torch
from torch.func import functional_call

from tsgen.imputation.layers import (
    INNER_LR_SCALINGS,
    TTTMLP,
    BidirectionalTTT,
    TTTBlock,
    TTTEncoder,
    TTTLinear,
    _GeluAndSlope,
    make_ttt_layer,
)
from tsgen.imputation.speed import per_token_reference


@pytest.mark.parametrize("cls", [TTTLinear, TTTMLP])
@pytest.mark.parametrize("mini_batch_size", [1, 4, 6, 7])
@pytest.mark.parametrize("inner_lr_scaling", INNER_LR_SCALINGS)
def test_dual_form_equals_per_token_loop(cls, mini_batch_size, inner_lr_scaling):
    torch.manual_seed(0)
    layer = cls(
        d_model=16,
        n_heads=2,
        mini_batch_size=mini_batch_size,
        base_lr=1.0,
        inner_lr_scaling=inner_lr_scaling,
    ).double()
    # larger initial weights than the default so the inner updates matter
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name in ("W0", "W1", "W2"):
                p.normal_(0, 0.3)
    # 18 steps: a multiple of 1 and 6, not of 4 or 7 (a shorter last mini-batch)
    x = torch.randn(3, 18, 16, dtype=torch.float64)
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


@pytest.mark.parametrize("cls", [TTTLinear, TTTMLP])
def test_inverse_position_scaling_divides_by_the_position_in_the_mini_batch(cls):
    torch.manual_seed(0)
    x = torch.randn(2, 9, 8, dtype=torch.float64)

    def output(mini_batch_size, scaling):
        torch.manual_seed(1)
        layer = cls(8, 2, mini_batch_size, base_lr=5.0, inner_lr_scaling=scaling)
        with torch.no_grad():
            return layer.double()(x)

    # c_1 = 1: mini-batches of one token, and the very first token, are unchanged
    assert torch.allclose(output(1, "constant"), output(1, "inverse_position"))
    constant, inverse = output(4, "constant"), output(4, "inverse_position")
    assert torch.allclose(constant[:, 0], inverse[:, 0])
    # later tokens (and every later mini-batch, which starts from θ_b) change
    assert (constant[:, 1:] - inverse[:, 1:]).abs().amax(dim=(0, 2)).min() > 1e-6


def test_outer_gradients_through_the_hand_written_inner_backward():
    torch.manual_seed(0)
    layer = TTTMLP(4, n_heads=2, mini_batch_size=3, inner_lr_scaling="inverse_position")
    layer = layer.double()
    names = ("W1", "W2", "b1", "inner_norm_weight", "lr_gate.weight", "k_proj.weight")
    params = {
        n: p.detach().clone().requires_grad_(True)
        for n, p in layer.named_parameters()
        if n in names
    }
    with torch.no_grad():
        params["W1"].normal_(0, 0.5)
        params["W2"].normal_(0, 0.5)
    x = torch.randn(2, 5, 4, dtype=torch.float64, requires_grad=True)

    def run(x, *values):
        return functional_call(layer, dict(zip(params, values, strict=True)), (x,))

    assert torch.autograd.gradcheck(run, (x, *params.values()))
    z = torch.randn(3, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_GeluAndSlope.apply, (z,))
    value, slope = _GeluAndSlope.apply(z)
    z1 = z.detach().requires_grad_(True)
    (expected,) = torch.autograd.grad(torch.nn.functional.gelu(z1).sum(), z1)
    assert torch.allclose(value, torch.nn.functional.gelu(z)) and torch.allclose(
        slope, expected
    )


@pytest.mark.parametrize("layer_type", ["linear", "mlp"])
def test_bidirectional_batched_directions_equal_two_separate_passes(layer_type):
    torch.manual_seed(0)
    f, b = (make_ttt_layer(layer_type, 8, 2, 3, 1.0) for _ in range(2))
    bi = BidirectionalTTT(f, b).double()
    x = torch.randn(2, 10, 8, dtype=torch.float64, requires_grad=True)
    separate = bi.mix(torch.cat([f(x), b(x.flip(1)).flip(1)], dim=-1))
    batched = bi(x)
    assert torch.allclose(batched, separate, atol=1e-12)
    # the same gradients
    grads = torch.autograd.grad(batched.square().sum(), [x, *bi.parameters()])
    expected = torch.autograd.grad(separate.square().sum(), [x, *bi.parameters()])
    assert all(
        torch.allclose(g, e, atol=1e-10) for g, e in zip(grads, expected, strict=True)
    )
    # layers that cannot share one pass (other mini-batch sizes) still work
    other = BidirectionalTTT(f, make_ttt_layer(layer_type, 8, 2, 4, 1.0)).double()
    assert other(x).shape == x.shape


def test_state_dict_keys_are_those_of_saved_checkpoints():
    expected = {
        "q_proj.weight",
        "k_proj.weight",
        "v_proj.weight",
        "lr_gate.weight",
        "lr_gate.bias",
        "inner_norm_weight",
        "inner_norm_bias",
        "out_norm.weight",
        "out_norm.bias",
        "out_proj.weight",
        "out_proj.bias",
    }
    assert set(TTTLinear(8, 2).state_dict()) == expected | {"W0", "b0"}
    assert set(TTTMLP(8, 2).state_dict()) == expected | {"W1", "b1", "W2", "b2"}


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
    with pytest.raises(ValueError, match="inner_lr_scaling"):
        TTTMLP(8, 2, inner_lr_scaling="1/t")
    with pytest.raises(ValueError, match="inner_lr_scaling"):
        BidirectionalTTT(TTTLinear(8, 2), TTTLinear(8, 2), "inverse_position")
    enc = TTTEncoder(2, 8, 16, n_heads=2, inner_lr_scaling="inverse_position")
    layers = [m for m in enc.modules() if isinstance(m, (TTTLinear, TTTMLP))]
    assert len(layers) == 4
    assert all(m.inner_lr_scaling == "inverse_position" for m in layers)

import numpy as np
import pytest
import torch

from tsgen.data import make_sines
from tsgen.metrics.ts2vec import (
    SamePadConv,
    TS2Vec,
    TS2VecConfig,
    default_iterations,
    hierarchical_contrastive_loss,
)

SMALL = dict(hidden_dims=16, depth=3, output_dims=32)


def test_config_round_trip_and_unknown_field():
    config = TS2VecConfig(input_dims=5, **SMALL)
    assert TS2VecConfig.from_dict(config.to_dict()) == config
    assert TS2VecConfig(input_dims=5).output_dims == 320  # the published size
    with pytest.raises(ValueError, match="unknown"):
        TS2VecConfig.from_dict({"input_dims": 5, "width": 3})


def test_reference_iteration_budget():
    assert default_iterations(100_000) == 200 and default_iterations(100_001) == 600


@pytest.mark.parametrize("dilation", [1, 4, 16, 64])
def test_centre_tap_shortcut_equals_the_padded_convolution(dilation):
    torch.manual_seed(0)
    conv = SamePadConv(6, 7, dilation)
    x = torch.randn(3, 6, 16)
    assert conv(x).shape == (3, 7, 16)
    assert torch.allclose(conv(x), conv.conv(x), atol=1e-6)


def test_contrastive_loss_prefers_matching_views():
    torch.manual_seed(0)
    z = torch.randn(6, 8, 16) * 3
    matched = hierarchical_contrastive_loss(z, z + 0.01 * torch.randn_like(z))
    unmatched = hierarchical_contrastive_loss(z, torch.randn_like(z) * 3)
    assert matched < unmatched
    assert torch.isfinite(matched)


def test_fit_encode_shapes_learning_and_determinism(tmp_path):
    x = make_sines(64, seed=0)
    config = TS2VecConfig(input_dims=5, **SMALL)
    model = TS2Vec(config, seed=0).fit(x, iterations=60)
    codes = model.encode(x)
    assert codes.shape == (64, 32) and np.isfinite(codes).all()
    assert np.mean(model.losses[-10:]) < np.mean(model.losses[:10])
    again = TS2Vec(config, seed=0).fit(x, iterations=60)
    assert np.array_equal(again.encode(x), codes)
    model.save(tmp_path / "enc")
    assert np.allclose(TS2Vec.load(tmp_path / "enc").encode(x), codes, atol=1e-6)


def test_errors():
    model = TS2Vec(TS2VecConfig(input_dims=5, **SMALL))
    with pytest.raises(ValueError, match="features"):
        model.fit(make_sines(10, n_features=3), iterations=1)
    with pytest.raises(ValueError, match="NaN"):
        model.encode(np.full((2, 24, 5), np.nan))

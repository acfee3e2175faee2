import json
import random

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
TINY = dict(hidden_dims=8, depth=1, output_dims=8, iterations=10)  # trains in ~0.1 s


def test_config_round_trip_and_unknown_field():
    config = TS2VecConfig(input_dims=5, **SMALL)
    assert TS2VecConfig.from_dict(config.to_dict()) == config
    assert TS2VecConfig.from_json(config.to_json()) == config
    assert TS2VecConfig(input_dims=5).output_dims == 320  # the published size
    with pytest.raises(ValueError, match="unknown"):
        TS2VecConfig.from_dict({"input_dims": 5, "width": 3})


@pytest.mark.parametrize(
    "field, value",
    [
        ("batch_size", 2.5),
        ("iterations", True),
        ("iterations", 0),
        ("input_dims", "5"),
        ("mask_prob", 0.0),
        ("dropout", 1.0),
        ("lr", -1e-3),
        ("seed", -1),
    ],
)
def test_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        TS2VecConfig(**{"input_dims": 5, field: value})


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


def test_fit_encode_shapes_learning_and_determinism():
    x = make_sines(64, seed=0)
    config = TS2VecConfig(input_dims=5, iterations=60, **SMALL)
    model = TS2Vec(config)
    assert model.fit(x) is model
    codes = model.encode(x)
    assert codes.shape == (64, 32) and np.isfinite(codes).all()
    # 64 series in batches of 8: an epoch is 8 iterations, the last one stops after 4
    assert [row["iterations"] for row in model.history] == [
        8,
        16,
        24,
        32,
        40,
        48,
        56,
        60,
    ]
    assert model.history[-1]["loss"] < model.history[0]["loss"]
    assert np.array_equal(TS2Vec(config).fit(x).encode(x), codes)


def test_save_load_round_trip(tmp_path):
    x = make_sines(16, seed=0)
    model = TS2Vec(TS2VecConfig(input_dims=5, **TINY)).fit(x)
    model.save(tmp_path / "enc")
    assert sorted(p.name for p in (tmp_path / "enc").iterdir()) == [
        "config.json",
        "state.json",
        "weights.safetensors",
    ]
    loaded = TS2Vec.load(tmp_path / "enc")
    assert loaded.config == model.config and loaded.history == model.history
    assert np.array_equal(loaded.encode(x), model.encode(x))
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "enc")
    state = json.loads((tmp_path / "enc" / "state.json").read_text())
    (tmp_path / "enc" / "state.json").write_text(
        json.dumps({**state, "kind": "ImagenI2R"})
    )
    with pytest.raises(ValueError, match="ImagenI2R checkpoint"):
        TS2Vec.load(tmp_path / "enc")


def test_caller_random_state_is_untouched():
    x = make_sines(16, seed=0)
    torch.manual_seed(5), np.random.seed(5), random.seed(5)
    expected = torch.rand(1), np.random.rand(), random.random()
    torch.manual_seed(5), np.random.seed(5), random.seed(5)
    TS2Vec(TS2VecConfig(input_dims=5, **TINY)).fit(x).encode(x)
    assert (torch.rand(1), np.random.rand(), random.random()) == expected


def test_tensorboard_log(tmp_path):
    TS2Vec(TS2VecConfig(input_dims=5, **TINY)).fit(
        make_sines(16, seed=0), logging_dir=tmp_path / "tb"
    )
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_errors():
    model = TS2Vec(TS2VecConfig(input_dims=5, **TINY))
    with pytest.raises(RuntimeError, match="not trained"):
        model.encode(make_sines(4, seed=0))
    with pytest.raises(ValueError, match="features"):
        model.fit(make_sines(10, n_features=3))
    model.fit(make_sines(10, seed=0))
    with pytest.raises(ValueError, match="NaN"):
        model.encode(np.full((2, 24, 5), np.nan))

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tsgen import data
from tsgen.generation import GenerationConfig, ImagenI2R


def tiny(**kw):
    base = dict(tst_d_model=8, tst_heads=2, tst_layers=1, tst_feedforward=16, decoder_layers=1,
                unet_channels=(8, 16), unet_attention=(False, True), tst_epochs=1, epochs=2, batch_size=16)
    return GenerationConfig.for_length(24, 2, **{**base, **kw})


@pytest.fixture(scope="module")
def irregular():
    x = data.make_sines(32, 24, 2, seed=0) * 10 + 5  # not in [0, 1]: sample must undo the scaling
    return x, data.add_missingness(x, "timestep", 0.5, seed=0)


def test_config_json_round_trip_and_errors():
    config = GenerationConfig.paper(96, 6)
    assert (config.delay, config.embedding, config.epochs, config.lr) == (6, 16, 1000, 1e-4)
    assert GenerationConfig.from_json(config.to_json()) == config
    assert isinstance(GenerationConfig.from_json(config.to_json()).unet_channels, tuple)
    with pytest.raises(ValueError, match="unknown field"):
        GenerationConfig.from_dict({"lenght": 24})
    with pytest.raises(ValueError, match="unknown completion"):
        GenerationConfig(completion="mean")
    with pytest.raises(ValueError, match="no delay embedding preset"):
        GenerationConfig.for_length(50, 1)
    with pytest.raises(ValueError, match="no delay embedding preset"):
        GenerationConfig.paper(50, 1)


def test_fit_sample_predict(irregular):
    x, missing = irregular
    model = ImagenI2R(tiny()).fit(missing)
    assert [h["epoch"] for h in model.history] == [1, 2, 3] and "diffusion" not in model.history[0]
    fake = model.sample(5, seed=3)
    assert fake.shape == (5, 24, 2) and np.isfinite(fake).all()
    lo, hi = np.nanmin(missing["X"], axis=(0, 1)), np.nanmax(missing["X"], axis=(0, 1))
    assert (fake >= lo - 1e-6).all() and (fake <= hi + 1e-6).all() and fake.max() > 1.5
    assert np.array_equal(fake, model.sample(5, seed=3))
    assert not np.array_equal(fake, model.sample(5, seed=4))
    assert model.sample(3, seed=3, inverse="first", use_ema=False, steps=2).shape == (3, 24, 2)
    completed = model.predict(missing)
    seen = missing["missing_mask"] == 1
    np.testing.assert_allclose(completed[seen], x[seen], rtol=1e-5)
    assert not np.isnan(completed).any()


def test_checkpoint_resumes_to_exactly_the_same_state(irregular, tmp_path):
    _, missing = irregular
    straight = ImagenI2R(tiny()).fit(missing)
    half = ImagenI2R(tiny()).fit(missing, epochs=2)
    half.save(tmp_path / "ck")
    assert (tmp_path / "ck" / "weights.safetensors").exists() and (tmp_path / "ck" / "state.json").exists()
    resumed = ImagenI2R.load(tmp_path / "ck").fit(missing)
    assert resumed.epoch == straight.epoch == 3
    resumed.save(tmp_path / "a")
    straight.save(tmp_path / "b")
    a, b = load_file(tmp_path / "a" / "weights.safetensors"), load_file(tmp_path / "b" / "weights.safetensors")
    assert a.keys() == b.keys() and any(".state." in k for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert resumed.history == straight.history
    assert np.array_equal(resumed.sample(4, steps=3), straight.sample(4, steps=3))


@pytest.mark.parametrize("completion,masked", [("zero", True), ("linear", False)])
def test_other_completions_train_without_a_transformer(irregular, completion, masked):
    _, missing = irregular
    model = ImagenI2R(tiny(completion=completion, masked=masked, epochs=1)).fit(missing)
    assert model.completer is None and model.epoch == 1
    assert model.sample(2, steps=2).shape == (2, 24, 2)


def test_bad_input_is_rejected(irregular):
    _, missing = irregular
    model = ImagenI2R(tiny())
    with pytest.raises(RuntimeError, match="not fitted"):
        model.sample(2)
    with pytest.raises(ValueError, match="length, features"):
        model.fit(np.zeros((4, 24, 3)))
    with pytest.raises(ValueError, match="infinite"):
        model.fit(np.full((4, 24, 2), np.inf))
    bad = missing["X"].copy()
    bad[1] = np.nan
    with pytest.raises(ValueError, match="all-NaN window"):
        model.fit(bad)
    model.fit(missing, epochs=1)
    with pytest.raises(ValueError, match="positive number"):
        model.sample(0)
    with pytest.raises(ValueError, match="not an ImagenI2R checkpoint"):
        ImagenI2R.load("/nonexistent/checkpoint")

import json
import random

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tsgen import data
from tsgen.estimator import Estimator
from tsgen.generation import GenerationConfig, ImagenI2R


def tiny(**kw):
    """The smallest useful ImagenI2R: fits 32 windows in well under a second on one CPU thread."""
    base = dict(
        tst_d_model=8,
        tst_heads=2,
        tst_layers=1,
        tst_feedforward=16,
        decoder_layers=1,
        unet_channels=(8, 16),
        unet_attention=(False, True),
        tst_epochs=1,
        epochs=2,
        batch_size=16,
        sampling_steps=4,
    )
    return GenerationConfig.for_length(24, 2, **{**base, **kw})


@pytest.fixture(scope="module")
def irregular():
    # not in [0, 1]: sample must undo the scaling
    x = data.make_sines(32, 24, 2, seed=0) * 10 + 5
    return x, data.add_missingness(x, "timestep", 0.5, seed=0)


@pytest.fixture(scope="module")
def fitted(irregular):
    # module fixtures run before conftest's one-thread
    # fixture: the tests compare against one thread's numbers
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model = ImagenI2R(tiny()).fit(irregular[1])
    torch.set_num_threads(threads)
    return model


def global_states():
    return torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()


def same_states(a, b):
    return torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_fit_sample_predict(irregular, fitted):
    x, missing = irregular
    assert isinstance(fitted, Estimator)
    assert [h["epoch"] for h in fitted.history] == [1, 2, 3]
    assert set(fitted.history[0]) == {"epoch", "tst_loss"}
    assert set(fitted.history[1]) == {"epoch", "tst_loss", "diffusion_loss"}
    fake = fitted.sample(5, seed=3)
    assert fake.shape == (5, 24, 2) and np.isfinite(fake).all()
    lo, hi = np.nanmin(missing["X"], axis=(0, 1)), np.nanmax(missing["X"], axis=(0, 1))
    assert (fake >= lo - 1e-6).all() and (fake <= hi + 1e-6).all() and fake.max() > 1.5
    assert np.array_equal(fake, fitted.sample(5, seed=3))
    assert not np.array_equal(fake, fitted.sample(5, seed=4))
    assert fitted.sample(
        3, seed=3, inverse="first", use_ema=False, steps=2, batch_size=2
    ).shape == (3, 24, 2)
    completed = fitted.predict(missing)
    seen = missing["missing_mask"] == 1
    np.testing.assert_allclose(completed[seen], x[seen], rtol=1e-5)
    assert not np.isnan(completed).any()


def test_the_same_seed_trains_the_same_model(irregular, fitted):
    again = ImagenI2R(tiny()).fit(irregular[1])
    assert again.history == fitted.history
    assert np.array_equal(again.sample(4), fitted.sample(4))


def test_fit_sample_and_predict_leave_the_callers_random_state_alone(irregular, fitted):
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    before = global_states()
    model = ImagenI2R(tiny(epochs=1)).fit(irregular[1])
    model.sample(2)
    model.predict(irregular[1])
    assert same_states(before, global_states())


def test_checkpoint_resumes_to_exactly_the_same_state(irregular, fitted, tmp_path):
    _, missing = irregular
    half = ImagenI2R(tiny()).fit(missing, epochs=2)
    half.save(tmp_path / "ck")
    assert {p.name for p in (tmp_path / "ck").iterdir()} == {
        "config.json",
        "weights.safetensors",
        "state.json",
    }
    state = json.loads((tmp_path / "ck" / "state.json").read_text())
    assert (
        state["kind"] == "ImagenI2R"
        and state["epoch"] == 2
        and len(state["history"]) == 2
    )
    resumed = ImagenI2R.load(tmp_path / "ck").fit(missing)
    assert resumed.epoch == fitted.epoch == 3
    resumed.save(tmp_path / "a")
    fitted.save(tmp_path / "b")
    a, b = (
        load_file(tmp_path / "a" / "weights.safetensors"),
        load_file(tmp_path / "b" / "weights.safetensors"),
    )
    assert a.keys() == b.keys() and any(".state." in k for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert resumed.history == fitted.history
    assert np.array_equal(resumed.sample(4, steps=3), fitted.sample(4, steps=3))


def test_save_load_round_trip_and_wrong_kind(irregular, fitted, tmp_path):
    path = fitted.save(tmp_path / "model")
    with pytest.raises(FileExistsError):
        fitted.save(path)
    fitted.save(path, overwrite=True)
    loaded = ImagenI2R.load(path)
    assert loaded.config == fitted.config and loaded.history == fitted.history
    assert np.array_equal(loaded.sample(3), fitted.sample(3))
    assert np.array_equal(loaded.predict(irregular[1]), fitted.predict(irregular[1]))
    assert (
        loaded.optimizer.param_groups[0]["betas"]
        == fitted.optimizer.param_groups[0]["betas"]
    )
    with pytest.raises(TypeError, match="ImagenI2R.load"):
        fitted.load(path)

    class OtherEstimator(ImagenI2R):
        pass

    with pytest.raises(
        ValueError, match="holds a ImagenI2R checkpoint, not a OtherEstimator"
    ):
        OtherEstimator.load(path)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        ImagenI2R.load(tmp_path / "nothing")


def test_logging_dir_gets_tensorboard_scalars(irregular, tmp_path):
    model = ImagenI2R(tiny(epochs=1)).fit(irregular[1], logging_dir=tmp_path / "logs")
    assert len(model.history) == 2 and list(
        (tmp_path / "logs").glob("events.out.tfevents.*")
    )


@pytest.mark.parametrize("completion,masked", [("zero", True), ("linear", False)])
def test_other_completions_train_without_a_transformer(irregular, completion, masked):
    model = ImagenI2R(tiny(completion=completion, masked=masked, epochs=1)).fit(
        irregular[1]
    )
    assert (
        model.completer is None
        and model.epoch == 1
        and set(model.history[0]) == {"epoch", "diffusion_loss"}
    )
    assert model.sample(2, steps=2).shape == (2, 24, 2)


def test_bad_input_is_rejected(irregular):
    _, missing = irregular
    model = ImagenI2R(tiny())
    with pytest.raises(RuntimeError, match="not fitted"):
        model.sample(2)
    with pytest.raises(RuntimeError, match="not fitted"):
        model.predict(missing)
    with pytest.raises(TypeError, match="needs a GenerationConfig"):
        ImagenI2R(tiny().to_dict())
    with pytest.raises(ValueError, match="length, features"):
        model.fit(np.zeros((4, 24, 3)))
    with pytest.raises(ValueError, match="infinite"):
        model.fit(np.full((4, 24, 2), np.inf))
    bad = missing["X"].copy()
    bad[1] = np.nan
    with pytest.raises(ValueError, match="all-NaN window"):
        model.fit(bad)
    with pytest.raises(ValueError, match="epochs must be"):
        model.fit(missing, epochs=1.5)
    model.fit(missing, epochs=1)
    with pytest.raises(
        ValueError, match=r"n \(the number of samples\) must be a positive"
    ):
        model.sample(0)
    with pytest.raises(ValueError, match="batch_size"):
        model.sample(2, batch_size=0)


def test_the_released_codes_options_change_what_is_trained(irregular):
    from tsgen.generation.config import RELEASED_CODE

    x, missing = irregular
    released = tiny(**RELEASED_CODE)
    assert GenerationConfig.build(24, 2, released=True, epochs=2) == GenerationConfig(
        **{**GenerationConfig.for_length(24, 2).to_dict(), **RELEASED_CODE, "epochs": 2}
    )
    model = ImagenI2R(released)
    assert isinstance(model.completer.output_layer, torch.nn.Linear)
    assert ImagenI2R(tiny()).completer.output_layer is None
    batch = torch.as_tensor(missing["X"][:8] / 20, dtype=torch.float32)
    model.completer.eval()  # no dropout: the two losses see the same reconstruction
    mse = model.completer.loss(batch)
    assert torch.allclose(model.completer.loss(batch, "scaled_rmse"), 10 * mse.sqrt())
    with pytest.raises(ValueError, match="scaled_rmse"):
        model.completer.loss(batch, "mae")
    # the reconstruction target replaces the observed values too; "completed" keeps them
    observed = ~torch.isnan(batch)
    target = model._diffusion_target(batch)
    assert not torch.equal(target[observed], batch[observed])
    kept = ImagenI2R(tiny(tst_output_layer=True))._diffusion_target(batch)
    assert torch.equal(kept[observed], batch[observed])
    assert np.isfinite(model.fit(missing).sample(4)).all()
    with pytest.raises(ValueError, match="reconstruction.*completion"):
        tiny(diffusion_target="reconstruction", completion="zero")

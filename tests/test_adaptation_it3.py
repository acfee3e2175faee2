"""IT³ as torch-ttt has it: plain first pass, trainable or frozen second pass, user pieces."""

import pytest
import torch
from torch import nn

from tsgen.adaptation import (
    ConvImputer,
    IT3Engine,
    MLPForecaster,
    TTTForecaster,
    TTTForecasterConfig,
    build_engine,
    get_engine,
    shifted_sines,
    train_step,
)

DEVICES = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _no_hooks(model):
    return all(
        not m._forward_hooks and not m._forward_pre_hooks for m in model.modules()
    )


def _sines(n=64, length=16, channels=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    freq = torch.rand(n, 1, channels, generator=g) * 0.3 + 0.1
    phase = torch.rand(n, 1, channels, generator=g) * 6.28
    return torch.sin(freq * torch.arange(length).view(1, -1, 1) + phase)


class ConvNet4D(nn.Module):
    """Images [B, 1, 6, 6] -> [B, 3]; features [B, 4, 6, 6] (4-D) receive a 2-D prediction."""

    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Sequential(nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3))

    def forward(self, x):
        return self.head(self.features(x))


def _forecaster_engine(**kw):
    torch.manual_seed(0)
    model = MLPForecaster(12, 4, 2, hidden=16)
    return IT3Engine(model, "encoder", torch.zeros(1, 12, 2), **kw)


def test_training_decreases_both_losses():
    data = _sines()
    x, y = data[:, :12], data[:, 12:]
    engine = _forecaster_engine()
    opt = torch.optim.Adam(engine.parameters(), lr=3e-3)
    history = [train_step(engine, opt, x, y) for _ in range(150)]
    first, last = torch.tensor(history[:5]).mean(0), torch.tensor(history[-5:]).mean(0)
    assert (last < 0.5 * first).all(), (first, last)


def test_heads_in_an_early_optimizer_are_trained():
    engine = _forecaster_engine()
    opt = torch.optim.SGD(engine.parameters(), lr=0.1)  # made before the first call
    head_ids = {id(p) for p in engine.embedder.parameters()}
    assert head_ids <= {id(p) for group in opt.param_groups for p in group["params"]}
    before = [p.clone() for p in engine.embedder.parameters()]
    engine.train()
    data = _sines(8)
    _, loss = engine(data[:, :12], data[:, 12:])
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert all(
        not torch.equal(b, p)
        for b, p in zip(before, engine.embedder.parameters(), strict=True)
    )


def test_eval_adapts_without_touching_stored_weights_and_is_repeatable():
    engine = _forecaster_engine(optimization_parameters={"num_steps": 3, "lr": 1e-2})
    x = _sines(8)[:, :12]
    before = _state(engine)
    engine.eval()
    with torch.no_grad():
        first, loss1 = engine(x)
        second, loss2 = engine(x)
        plain, _ = engine.adapt(x, {"num_steps": 0})
    assert not torch.equal(first, plain)
    assert torch.equal(first, second) and torch.equal(loss1, loss2)
    assert _same(before, _state(engine))
    assert _no_hooks(engine.model)


def test_no_hook_remains_after_train_eval_or_error():
    engine = _forecaster_engine()
    data = _sines(4)
    engine.train()
    engine(data[:, :12], data[:, 12:])
    assert _no_hooks(engine.model)
    with pytest.raises(ValueError, match="target has shape"):
        engine(data[:, :12], data[:, 12:15])
    assert _no_hooks(engine.model)
    with pytest.raises(ValueError, match="expected windows"):
        engine(data[:, :10])  # the model itself fails inside the hooked pass
    assert _no_hooks(engine.model)
    engine.eval()
    engine(data[:, :12])
    assert _no_hooks(engine.model)


def test_3d_features_with_dict_input():
    torch.manual_seed(0)
    model = ConvImputer(2, hidden=8)
    x = _sines(4)
    mask = (torch.rand_like(x) > 0.3).float()
    batch = {"X": x * mask, "missing_mask": mask}
    engine = IT3Engine(
        model, "encoder", batch, optimization_parameters={"num_steps": 2, "lr": 1e-2}
    )
    assert engine.features_shape == (16, 8) and engine.prediction_shape == (16, 2)
    engine.train()
    out, loss = engine(batch, x)
    assert out.shape == x.shape and loss.ndim == 0
    engine.eval()
    adapted, _ = engine(batch)
    assert not torch.equal(adapted, engine.adapt(batch, {"num_steps": 0})[0])


def test_2d_prediction_into_4d_features():
    torch.manual_seed(0)
    model = ConvNet4D()
    x = torch.randn(5, 1, 6, 6)
    engine = IT3Engine(
        model, "features", x, optimization_parameters={"num_steps": 2, "lr": 1e-2}
    )
    assert engine.features_shape == (4, 6, 6) and engine.prediction_shape == (3,)
    engine.train()
    out, loss = engine(x, torch.randn(5, 3))
    assert out.shape == (5, 3) and torch.isfinite(loss)
    engine.eval()
    before = _state(engine)
    out, _ = engine(x)
    assert out.shape == (5, 3) and _same(before, _state(engine)) and _no_hooks(model)


def test_2d_inputs_and_heads_from_dimensions():
    model = nn.Sequential(nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 2))
    engine = IT3Engine(model, "1", features_shape=(10,), prediction_shape=(2,))
    engine.train()
    out, loss = engine(torch.randn(3, 6), torch.randn(3, 2))
    assert out.shape == (3, 2) and torch.isfinite(loss)


def test_nan_targets_are_skipped():
    engine = _forecaster_engine()
    data = _sines(4)
    y = data[:, 12:].clone()
    y[0, 0, 0] = float("nan")
    engine.train()
    _, loss = engine(data[:, :12], y)
    assert torch.isfinite(loss)


def test_construction_errors():
    model = MLPForecaster(12, 4, 2)
    with pytest.raises(ValueError, match="has no layer 'backbone'"):
        IT3Engine(model, "backbone", torch.zeros(1, 12, 2))
    with pytest.raises(ValueError, match="eagerly"):
        IT3Engine(model, "encoder")
    with pytest.raises(ValueError, match="second_pass must be one of"):
        IT3Engine(model, "encoder", torch.zeros(1, 12, 2), second_pass="detached")
    engine = IT3Engine(model, "encoder", features_shape=(7,), prediction_shape=(4, 2))
    with pytest.raises(ValueError, match="features of shape"):
        engine.train()(torch.zeros(2, 12, 2))
    assert _no_hooks(model)


# ---------------------------------------------------------------- torch-ttt's way


@pytest.mark.parametrize("second_pass", ["trainable", "frozen"])
def test_first_pass_is_the_plain_model_bit_for_bit(second_pass):
    engine = _forecaster_engine(
        second_pass=second_pass, optimization_parameters={"num_steps": 0}
    )
    data = _sines(8)
    x, y = data[:, :12], data[:, 12:]
    engine.train()
    with torch.no_grad():
        plain = engine.model(x)
    assert torch.equal(engine(x, y)[0], plain)
    assert torch.equal(engine(x)[0], plain)
    engine.eval()
    with torch.no_grad():
        plain = engine.model(x)
    assert torch.equal(engine(x)[0], plain)
    assert torch.equal(engine.adapt(x, {"num_steps": 0})[0], plain)


def test_first_pass_is_the_plain_model_for_dict_inputs():
    torch.manual_seed(0)
    model = ConvImputer(2, hidden=8).eval()
    x = _sines(4)
    mask = (torch.rand_like(x) > 0.3).float()
    batch = {"X": x * mask, "missing_mask": mask}
    engine = IT3Engine(model, "encoder", batch).eval()
    with torch.no_grad():
        assert torch.equal(engine.adapt(batch, {"num_steps": 0})[0], model(batch))


def test_idempotence_loss_is_the_distance_between_the_two_passes():
    """Without a target: loss = distance(f(x, embed(f(x))), f(x)), with the layer hooked by hand."""
    engine = _forecaster_engine()
    x = _sines(4)[:, :12]
    engine.train()
    first, loss = engine(x)
    embedding = engine.embedder(engine.model(x))
    handle = engine.model.encoder.register_forward_hook(
        lambda _m, _a, out: out + embedding
    )
    try:
        second = engine.model(x)
    finally:
        handle.remove()
    torch.testing.assert_close(loss, nn.functional.mse_loss(second, first))
    assert not torch.equal(second, first)  # the injection reaches the output


def test_trainable_second_pass_trains_the_embedder_frozen_does_not():
    x = _sines(4)[:, :12]
    grads = {}
    for mode in ("trainable", "frozen"):
        engine = _forecaster_engine(second_pass=mode).train()
        _, loss = engine(x)
        loss.backward()
        grads[mode] = (
            [p.grad for p in engine.embedder.parameters()],
            [p.grad.clone() for p in engine.model.parameters()],
        )
    embedder, model = grads["trainable"]
    assert all(g is not None and g.abs().sum() > 0 for g in embedder)
    frozen_embedder, frozen_model = grads["frozen"]
    assert all(g is None for g in frozen_embedder)
    # the model gets gradients through y0 in both modes, through the second pass
    # only when it is trainable
    assert all(g.abs().sum() > 0 for g in frozen_model[:2])
    assert any(not torch.equal(a, b) for a, b in zip(model, frozen_model, strict=True))


def test_target_is_embedded_and_scored_in_both_modes():
    data = _sines(4)
    x, y = data[:, :12], data[:, 12:]
    losses = [
        _forecaster_engine(second_pass=mode).train()(x, y)[1]
        for mode in ("trainable", "frozen")
    ]
    assert torch.equal(losses[0], losses[1])


def test_default_embedder_keeps_its_checkpoint_keys():
    engine = _forecaster_engine()
    keys = {k for k in engine.state_dict() if k.startswith("embedder.")}
    assert keys == {
        "embedder.0.weight",
        "embedder.0.bias",
        "embedder.2.weight",
        "embedder.2.bias",
    }


# ---------------------------------------------------------------- user pieces


def test_user_embedder_broadcast_over_4d_features():
    """A per-channel embedder [B, 3] -> [B, 4] is added over H and W, as in torch-ttt."""
    torch.manual_seed(0)
    model = ConvNet4D()
    embedder = nn.Linear(3, 4)
    engine = IT3Engine(model, "features", embedder=embedder).train()
    assert engine.features_shape is None and engine.prediction_shape is None
    assert {id(p) for p in embedder.parameters()} <= {
        id(p) for p in engine.parameters()
    }
    x = torch.randn(5, 1, 6, 6)
    out, loss = engine(x)
    assert torch.equal(out, model(x)) and loss.requires_grad and loss > 0


def test_user_combine_and_distance():
    x, y = _sines(4)[:, :12], _sines(4)[:, 12:]
    l1 = lambda a, b: (a - b).abs().mean()  # noqa: E731
    # a combine_fn that drops the embedding makes both passes equal: zero loss
    engine = _forecaster_engine(combine_fn=lambda f, e: f, distance_fn=l1).train()
    out, loss = engine(x)
    assert loss.item() == 0.0
    _, loss = engine(x, y)
    torch.testing.assert_close(loss, l1(out, y))
    gated = _forecaster_engine(combine_fn=lambda f, e: f * torch.sigmoid(e)).train()
    assert gated(x)[1] > 0


@pytest.mark.parametrize(
    "options, match",
    [
        ({"embedder": lambda p: p[:, :1].flatten(1)}, "default combine_fn adds"),
        ({"embedder": lambda p: p.sum()}, "embedder must return a tensor"),
        ({"combine_fn": lambda f, e: f.sum(1)}, "combine_fn must return"),
        ({"combine_fn": lambda f, e: None}, "combine_fn must return"),
        ({"distance_fn": lambda a, b: (a - b).pow(2)}, "distance_fn must return"),
        ({"distance_fn": lambda a, b: 0.0}, "distance_fn must return"),
        ({"embedder": "mlp"}, "embedder must be callable"),
        ({"distance_fn": 2}, "distance_fn must be callable"),
    ],
)
def test_user_pieces_of_the_wrong_shape_are_named(options, match):
    model = MLPForecaster(12, 4, 2, hidden=16)
    # checked at construction when there is an example input ...
    with pytest.raises(ValueError, match=match):
        IT3Engine(model, "encoder", torch.zeros(1, 12, 2), **options)
    if "must be callable" in match:
        return
    # ... and at the first forward pass otherwise
    engine = IT3Engine(
        model, "encoder", features_shape=(16,), prediction_shape=(4, 2), **options
    ).train()
    with pytest.raises(ValueError, match=match):
        engine(torch.zeros(2, 12, 2))
    assert _no_hooks(model)


# ---------------------------------------------------------------- the alias


def test_ittt_builds_it3():
    assert get_engine("ittt") is IT3Engine
    model = MLPForecaster(12, 4, 2, hidden=8)
    engine = build_engine(
        "ittt",
        model,
        layer="encoder",
        example_inputs=torch.zeros(1, 12, 2),
        options={"second_pass": "frozen"},
    )
    assert type(engine) is IT3Engine and engine.name == "it3"
    assert engine.second_pass == "frozen"


@pytest.mark.parametrize(
    "engine, options", [("ittt", {}), ("it3", {"second_pass": "frozen"})]
)
def test_forecaster_with_ittt_or_the_frozen_ablation(engine, options):
    config = TTTForecasterConfig(
        context_length=12,
        horizon=4,
        n_features=2,
        hidden=16,
        epochs=2,
        batch_size=32,
        engine=engine,
        engine_options=options,
        adaptation={"num_steps": 2, "lr": 1e-3},
    )
    windows = shifted_sines(64, length=16, n_features=2, seed=0)
    model = TTTForecaster(config).fit(windows)
    assert isinstance(model.engine, IT3Engine)
    adapted = model.predict(windows[:8, :12])
    plain = model.predict(windows[:8, :12], adapt=False)
    with torch.no_grad():
        direct = model.model.eval()(torch.as_tensor(windows[:8, :12]).float())
    assert adapted.shape == (8, 4, 2) and not (adapted == plain).all()
    assert (plain == direct.numpy()).all()


# ---------------------------------------------------------------- torch-ttt's tests, adapted
# (torch-ttt tests/engines/test_it3_engine.py: the same three model shapes and the
# missing layer; tsgen builds the embedder from an example input, so one is passed)


class VectorNet(nn.Module):
    """[B, 8] -> [B, 4], hooked at fc1 ([B, 16])."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class ConvFCNet(nn.Module):
    """[B, 3, H, W] -> [B, 10], hooked at conv ([B, 16, H, W])."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        pooled = torch.relu(self.conv(x)).mean(dim=(2, 3))
        return self.head(pooled)


class ConvSegNet(nn.Module):
    """[B, 1, H, W] -> [B, 1, H, W], hooked at enc ([B, 8, H, W])."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Conv2d(1, 8, 3, padding=1)
        self.dec = nn.Conv2d(8, 1, 3, padding=1)

    def forward(self, x):
        return torch.sigmoid(self.dec(torch.relu(self.enc(x))))


@pytest.mark.parametrize("device", DEVICES)
def test_torch_ttt_2d_to_2d(device):
    torch.manual_seed(0)
    model = VectorNet().to(device)
    x = torch.ones(6, 8, device=device)
    engine = get_engine("ittt")(model, features_layer_name="fc1", example_inputs=x)
    engine.train()
    y, loss = engine(x)
    assert y.shape == (6, 4) and loss.requires_grad
    assert torch.equal(y, model(x))


@pytest.mark.parametrize("device", DEVICES)
def test_torch_ttt_4d_to_2d(device):
    torch.manual_seed(0)
    model = ConvFCNet().to(device)
    x = torch.ones(4, 3, 16, 16, device=device)
    engine = get_engine("ittt")(model, "conv", x[:1]).train()
    y, loss = engine(x)
    assert y.shape == (4, 10) and loss.requires_grad
    assert torch.equal(y, model(x))


@pytest.mark.parametrize("device", DEVICES)
def test_torch_ttt_4d_to_4d(device):
    torch.manual_seed(0)
    model = ConvSegNet().to(device)
    x = torch.ones(2, 1, 16, 16, device=device)
    engine = get_engine("ittt")(model, "enc", x[:1]).to(device)
    before = _state(engine)
    engine.eval()  # adapts, then predicts
    y, loss = engine(x)
    assert y.shape == (2, 1, 16, 16) and torch.isfinite(loss)
    assert _same(before, _state(engine)) and _no_hooks(model)


def test_torch_ttt_missing_layer():
    with pytest.raises(ValueError, match="has no layer 'not_there'"):
        get_engine("ittt")(VectorNet(), "not_there", torch.ones(1, 8))


def test_the_default_embedder_is_built_on_the_models_device():
    from tsgen.book.devices import VIRTUAL, DeviceCheck, on_accelerator

    with DeviceCheck():
        model = nn.Sequential(
            nn.Flatten(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 4)
        ).to(VIRTUAL)
        x = torch.randn(8, 16, 2, device=VIRTUAL)
        engine = IT3Engine(model, "1", x)  # the check runs the embedder once
        assert all(on_accelerator(p) for p in engine.embedder.parameters())
        outputs, loss = engine.train()(x, torch.randn(8, 4, device=VIRTUAL))
        assert on_accelerator(outputs) and on_accelerator(loss)

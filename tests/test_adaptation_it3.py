import pytest
import torch
from torch import nn

from tsgen.adaptation import ConvImputer, IT3Engine, MLPForecaster, train_step


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
    engine = IT3Engine(model, "encoder", features_shape=(7,), prediction_shape=(4, 2))
    with pytest.raises(ValueError, match="features of shape"):
        engine.train()(torch.zeros(2, 12, 2))
    assert _no_hooks(model)

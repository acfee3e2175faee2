import pytest
import torch

from tsgen.adaptation import ConvImputer, MaskedReconstructionEngine, MLPForecaster


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _no_hooks(model):
    return all(not m._forward_hooks for m in model.modules())


def _batch(n=32, length=16, channels=3, missing=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length).view(1, -1, 1)
    x = torch.sin(
        t * (torch.rand(n, 1, channels, generator=g) * 0.4 + 0.1)
        + torch.rand(n, 1, channels, generator=g) * 6
    )
    mask = (torch.rand(x.shape, generator=g) > missing).float()
    return {
        "X": torch.where(mask.bool(), x, torch.full_like(x, float("nan"))),
        "missing_mask": mask,
    }


def _engine(**kw):
    torch.manual_seed(0)
    model = ConvImputer(3, hidden=16)
    return MaskedReconstructionEngine(model, "encoder", _batch(2), **kw)


def test_training_decreases_the_reconstruction_loss():
    batch = _batch()
    engine = _engine(mask_ratio=0.3)
    opt = torch.optim.Adam(engine.parameters(), lr=3e-3)
    engine.train()
    losses = []
    for _ in range(120):
        _, loss = engine(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-10:]) < 0.5 * sum(losses[:10])


def test_missing_entries_are_never_used():
    batch = _batch()
    other = {
        "X": torch.where(
            batch["missing_mask"].bool(), batch["X"], torch.full_like(batch["X"], 1e6)
        ),
        "missing_mask": batch["missing_mask"],
    }
    engine = _engine().eval()
    out1, loss1 = engine.adapt(batch, {"num_steps": 0})
    out2, loss2 = engine.adapt(other, {"num_steps": 0})
    assert torch.equal(out1, out2) and torch.equal(loss1, loss2)


def test_only_observed_entries_are_hidden():
    engine = _engine(mask_ratio=0.5)
    seen = {}
    original = engine._features

    def spy(inputs):
        seen["mask"] = inputs["missing_mask"]
        return original(inputs)

    engine._features = spy
    batch = _batch()
    engine.train()(batch)
    hidden = batch["missing_mask"].bool() & ~seen["mask"].bool()
    # nothing missing became observed
    assert not (seen["mask"].bool() & ~batch["missing_mask"].bool()).any()
    assert 0.4 < hidden.sum() / batch["missing_mask"].sum() < 0.6


def test_eval_adaptation_is_repeatable_and_restores_weights():
    engine = _engine(optimization_parameters={"num_steps": 3, "lr": 1e-2})
    batch = _batch(8)
    before = _state(engine)
    engine.eval()
    with torch.no_grad():
        a, _ = engine(batch)
        b, _ = engine(batch)
    assert torch.equal(a, b)
    assert not torch.equal(a, engine.adapt(batch, {"num_steps": 0})[0])
    assert _same(before, _state(engine)) and _no_hooks(engine.model)


def test_heads_in_an_early_optimizer_are_trained():
    engine = _engine()
    opt = torch.optim.SGD(engine.parameters(), lr=0.1)
    before = [p.clone() for p in engine.head.parameters()]
    _, loss = engine.train()(_batch(8))
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert all(
        not torch.equal(b, p)
        for b, p in zip(before, engine.head.parameters(), strict=True)
    )


def test_tensor_input_with_a_2d_features_layer():
    torch.manual_seed(0)
    model = MLPForecaster(16, 4, 3, hidden=8, use_mask=True)
    x = _batch(4)["X"]  # NaN marks missing
    engine = MaskedReconstructionEngine(model, "encoder", x)
    assert engine.features_shape == (8,) and engine.input_shape == (16, 3)
    out, loss = engine.train()(x)
    assert out.shape == (4, 4, 3) and torch.isfinite(loss)


def test_errors():
    model = ConvImputer(3)
    with pytest.raises(ValueError, match="has no layer 'enc'"):
        MaskedReconstructionEngine(model, "enc", _batch(2))
    with pytest.raises(ValueError, match="mask_ratio"):
        MaskedReconstructionEngine(model, "encoder", _batch(2), mask_ratio=1.0)
    with pytest.raises(ValueError, match="eagerly"):
        MaskedReconstructionEngine(model, "encoder")
    engine = MaskedReconstructionEngine(model, "encoder", _batch(2))
    with pytest.raises(ValueError, match="shape"):
        engine.train()(_batch(2, length=10))
    assert _no_hooks(model)

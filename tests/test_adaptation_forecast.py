import pytest
import torch
from torch import nn

from tsgen.adaptation import MLPForecaster, TailForecastEngine, train_step


class Persistence(nn.Module):
    """Repeats the last observed step ``horizon`` times; one unused parameter so adaptation has something to move."""

    def __init__(self, horizon):
        super().__init__()
        self.horizon = horizon
        self.unused = nn.Parameter(torch.zeros(()))

    def forward(self, inputs):
        x = inputs["X"] if isinstance(inputs, dict) else inputs
        return x[:, -1:].expand(-1, self.horizon, -1) + 0 * self.unused


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_known_loss_of_persistence_on_a_ramp():
    k = 3
    ramp = torch.arange(10.0).view(1, 10, 1)
    out, loss = TailForecastEngine(Persistence(4), k).train()(ramp)
    # the shifted window ends at step 9 - k; the tail is 7, 8, 9: errors 1, 2, 3
    assert torch.equal(out, torch.full((1, 4, 1), 9.0))
    assert loss.item() == pytest.approx((1 + 4 + 9) / 3)
    _, loss = TailForecastEngine(Persistence(4), k).train()(torch.ones(2, 10, 3))
    assert loss.item() == 0.0


def test_missing_tail_entries_are_not_scored():
    ramp = torch.arange(10.0).view(1, 10, 1)
    mask = torch.ones_like(ramp)
    mask[0, -1] = 0  # the value 9 is missing: errors 1 and 2 remain
    _, loss = TailForecastEngine(Persistence(4), 3).train()(
        {"X": ramp * mask, "missing_mask": mask}
    )
    assert loss.item() == pytest.approx((1 + 4) / 2)


def test_training_decreases_the_loss():
    torch.manual_seed(0)
    t = torch.arange(20.0).view(1, -1, 1)
    g = torch.Generator().manual_seed(0)
    data = torch.sin(
        t * (torch.rand(64, 1, 2, generator=g) * 0.3 + 0.1)
        + torch.rand(64, 1, 2, generator=g) * 6
    )
    x, y = data[:, :16], data[:, 16:]
    engine = TailForecastEngine(MLPForecaster(16, 4, 2, hidden=16), 4)
    opt = torch.optim.Adam(engine.parameters(), lr=3e-3)
    history = [train_step(engine, opt, x, y) for _ in range(100)]
    first, last = torch.tensor(history[:5]).mean(0), torch.tensor(history[-5:]).mean(0)
    assert (last < 0.5 * first).all(), (first, last)


def test_eval_adapts_and_restores():
    torch.manual_seed(0)
    engine = TailForecastEngine(
        MLPForecaster(16, 4, 2, hidden=16),
        4,
        optimization_parameters={"num_steps": 3, "lr": 1e-2},
    ).eval()
    x = torch.rand(8, 16, 2)
    before = _state(engine)
    with torch.no_grad():
        a, _ = engine(x)
        b, _ = engine(x)
    assert torch.equal(a, b) and not torch.equal(
        a, engine.adapt(x, {"num_steps": 0})[0]
    )
    assert all(torch.equal(v, before[k]) for k, v in engine.state_dict().items())


def test_dict_input_with_missing_padding():
    torch.manual_seed(0)
    model = MLPForecaster(16, 4, 2, hidden=8, use_mask=True)
    x = torch.rand(4, 16, 2)
    mask = (torch.rand_like(x) > 0.2).float()
    engine = TailForecastEngine(model, 2, pad="missing")
    out, loss = engine.train()({"X": x * mask, "missing_mask": mask})
    assert out.shape == (4, 4, 2) and torch.isfinite(loss)


def test_errors():
    with pytest.raises(ValueError, match="tail_length"):
        TailForecastEngine(Persistence(4), 0)
    with pytest.raises(ValueError, match="pad"):
        TailForecastEngine(Persistence(4), 2, pad="zero")
    with pytest.raises(ValueError, match="shorter than the input window"):
        TailForecastEngine(Persistence(4), 10).train()(torch.ones(1, 10, 1))
    with pytest.raises(ValueError, match="horizon >= 5"):
        TailForecastEngine(Persistence(4), 5).train()(torch.ones(1, 10, 1))
    with pytest.raises(ValueError, match="dict input"):
        TailForecastEngine(Persistence(4), 2, pad="missing").train()(
            torch.ones(1, 10, 1)
        )
    with pytest.raises(ValueError, match=r"\[batch, time, channels\]"):
        TailForecastEngine(Persistence(4), 2).train()(torch.ones(1, 10))

import pytest
import torch
from torch import nn

from tsgen.adaptation import (
    MLPForecaster,
    OptimizationParameters,
    TailForecastEngine,
    split_inputs,
)
from tsgen.adaptation.base import BaseEngine


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _engine(**opt):
    torch.manual_seed(0)
    model = MLPForecaster(12, 4, 2, hidden=16)
    return TailForecastEngine(
        model, 4, optimization_parameters={"num_steps": 3, "lr": 1e-2, **opt}
    )


def test_optimization_parameters_round_trip_and_torch_ttt_key():
    p = OptimizationParameters.from_dict(
        {"optimizer_name": "SGD", "lr": 0.1, "num_steps": 2, "parameters": "norm"}
    )
    assert p.optimizer == "sgd" and p.num_steps == 2
    assert OptimizationParameters.from_dict(p.to_dict()) == p
    assert OptimizationParameters.coerce(None) == OptimizationParameters()


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"lr": 0}, "lr"),
        ({"num_steps": -1}, "num_steps"),
        ({"num_steps": 1.5}, "num_steps"),
        ({"parameters": ""}, "parameters"),
        ({"steps": 3}, "unknown"),
    ],
)
def test_optimization_parameters_reject_bad_values(bad, match):
    with pytest.raises(ValueError, match=match):
        OptimizationParameters.from_dict(bad)


def test_eval_adapts_under_no_grad_and_restores_everything():
    engine = _engine()
    x = torch.rand(8, 12, 2)
    engine.train()
    _, loss = engine(x)
    loss.backward()  # gradients from an earlier training step must survive adaptation
    grads = {n: p.grad.clone() for n, p in engine.named_parameters()}
    before = _state(engine)
    engine.eval()
    with torch.no_grad():
        adapted, _ = engine(x)
        plain, _ = engine.adapt(x, {"num_steps": 0})
    assert not torch.equal(adapted, plain)
    assert _same(before, _state(engine))
    assert all(torch.equal(p.grad, grads[n]) for n, p in engine.named_parameters())
    assert not adapted.requires_grad


def test_train_mode_is_restored_after_adapt():
    engine = _engine()
    engine.train()
    engine.adapt(torch.rand(4, 12, 2))
    assert engine.training and engine.model.training


@pytest.mark.parametrize("which", ["all", "norm", "head", "encoder.1"])
def test_parameter_selection(which):
    engine = _engine(parameters=which)
    chosen = {id(p) for p in engine.adapted_parameters(which)}
    expected = {
        "all": engine.model,
        "norm": engine.model.norm,
        "head": engine.model.head,
        "encoder.1": engine.model.encoder[1],
    }[which]
    assert chosen == {id(p) for p in expected.parameters()}
    x = torch.rand(8, 12, 2)
    engine.eval()
    before = _state(engine)
    assert not torch.equal(engine(x)[0], engine.adapt(x, {"num_steps": 0})[0])
    assert _same(before, _state(engine))


def test_parameter_selection_errors():
    engine = TailForecastEngine(
        nn.Sequential(nn.Flatten(), nn.Linear(24, 8), nn.Unflatten(1, (4, 2))), 4
    )
    with pytest.raises(ValueError, match="no normalisation layer"):
        engine.adapted_parameters("norm")
    with pytest.raises(ValueError, match="has no layer 'decoder'"):
        engine.adapted_parameters("decoder")


def test_sgd_adapts_too():
    engine = _engine(optimizer="sgd", momentum=0.9)
    x = torch.rand(8, 12, 2)
    engine.eval()
    assert not torch.equal(engine(x)[0], engine.adapt(x, {"num_steps": 0})[0])


class _Failing(BaseEngine):
    """Raises on the second self-supervised pass, after one optimizer step has changed the weights."""

    def __init__(self, model):
        super().__init__(model, {"num_steps": 3, "lr": 0.1})
        self.calls = 0

    def ttt_forward(self, inputs, target=None):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("boom")
        out = self.model(inputs)
        return out, out.pow(2).mean()


def test_weights_restored_when_adaptation_fails():
    engine = _Failing(nn.Linear(3, 2))
    before = _state(engine)
    engine.eval()
    with pytest.raises(RuntimeError, match="boom"):
        engine(torch.rand(4, 3))
    assert _same(before, _state(engine))


def test_model_must_be_a_module():
    with pytest.raises(ValueError, match="nn.Module"):
        TailForecastEngine(lambda x: x, 2)


def test_split_inputs():
    x = torch.tensor([[1.0, float("nan")], [3.0, 4.0]])
    values, mask = split_inputs(x)
    assert torch.equal(mask, torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    assert torch.equal(values, torch.tensor([[1.0, 0.0], [3.0, 4.0]]))
    values, mask = split_inputs(
        {"X": torch.ones(2, 2), "missing_mask": torch.tensor([[1.0, 0.0], [1.0, 1.0]])}
    )
    assert values[0, 1] == 0 and mask[0, 1] == 0


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"Y": torch.ones(2, 2)}, "'X'"),
        (torch.ones(3), "batch dimension"),
        (torch.tensor([[1.0, float("inf")]]), "infinite"),
        ({"X": torch.ones(2, 2), "missing_mask": torch.ones(2, 3)}, "missing_mask"),
        ([1.0, 2.0], "tensor"),
    ],
)
def test_split_inputs_rejects_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        split_inputs(bad)


class _Draws(BaseEngine):
    """Returns its draws as the loss, to look at them."""

    def ttt_forward(self, inputs, target=None):
        return self.model(inputs), self.rand((5,), inputs.device)


def test_rand_uses_the_engines_own_generators():
    x = torch.rand(2, 3)
    a, b = (
        _Draws(nn.Linear(3, 2), seed=7).train(),
        _Draws(nn.Linear(3, 2), seed=7).train(),
    )
    state = torch.get_rng_state()
    first, second = a(x)[1], a(x)[1]
    # the global RNG is neither used nor changed
    assert torch.equal(torch.get_rng_state(), state)
    assert not torch.equal(first, second)  # training draws run on: a new mask per step
    assert torch.equal(b(x)[1], first)  # same seed, same draws
    assert not torch.equal(_Draws(nn.Linear(3, 2), seed=8).train()(x)[1], first)
    a.eval()
    adapted = a.adapt(x, {"num_steps": 0})[1]
    # adaptation restarts from the seed at every call
    assert torch.equal(a.adapt(x, {"num_steps": 0})[1], adapted)
    b(x)  # b has now drawn twice, as a had before adapting
    # adaptation does not disturb the training draws
    assert torch.equal(a.train()(x)[1], b(x)[1])

import pytest
import torch
from torch import nn

from tsgen.adaptation import (
    ConvImputer,
    MLPForecaster,
    OptimizationParameters,
    TailForecastEngine,
    build_engine,
    split_inputs,
)
from tsgen.adaptation.base import BaseEngine, sample_keys, select


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
        ({"scope": "window"}, "scope"),
        ({"safeguard": "yes"}, "safeguard"),
        ({"holdout": 0}, "holdout"),
        ({"holdout": 1}, "holdout"),
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


# ---------------------------------------------------------------- per-sample draws


class _RowDraws(BaseEngine):
    """Returns its per-sample draws as the outputs, to look at them."""

    def ttt_forward(self, inputs, target=None):
        draws = self.rand(inputs.shape, inputs.device)
        return draws + 0 * self.model(inputs).sum(), self.model(inputs).sum()


def test_adaptation_draws_follow_the_sample_not_its_position():
    x = torch.rand(6, 3)
    x[4] = x[1]  # a duplicated sample
    engine = _RowDraws(nn.Linear(3, 2), seed=3).eval()
    state = torch.get_rng_state()
    draws = engine.adapt(x, {"num_steps": 0})[0]
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is untouched
    perm = torch.tensor([5, 2, 0, 4, 1, 3])
    assert torch.equal(engine.adapt(x[perm], {"num_steps": 0})[0], draws[perm])
    # alone, a sample draws what it draws in the batch; duplicates draw alike
    assert torch.equal(engine.adapt(x[2:3], {"num_steps": 0})[0], draws[2:3])
    assert torch.equal(draws[4], draws[1])
    assert not torch.equal(draws[0], draws[2])
    # another seed, other draws; the training draws are not per sample
    assert not torch.equal(_RowDraws(nn.Linear(3, 2), seed=4).eval().adapt(x)[0], draws)
    assert len(sample_keys(x)) == 6 and len(set(sample_keys(x))) == 5


def test_select_indexes_the_batch_entries_of_a_dict():
    inputs = {"X": torch.rand(4, 3, 2), "missing_mask": torch.ones(4, 3, 2), "k": 7}
    part = select(inputs, [2, 0])
    assert torch.equal(part["X"], inputs["X"][[2, 0]]) and part["k"] == 7


def _forecaster_engine(name):
    torch.manual_seed(0)
    model = MLPForecaster(12, 4, 2, hidden=16)
    example = torch.rand(1, 12, 2)
    return build_engine(name, model, layer="encoder", example_inputs=example)


def _imputer_engine(name):
    torch.manual_seed(0)
    model = ConvImputer(n_features=2, hidden=8)
    example = {"X": torch.rand(1, 12, 2), "missing_mask": torch.ones(1, 12, 2)}
    return build_engine(name, model, layer="encoder", example_inputs=example)


def _batch(imputer: bool, n: int = 10):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, 12, 2, generator=g)
    if not imputer:
        return x
    mask = (torch.rand(n, 12, 2, generator=g) > 0.2).float()
    return {"X": x * mask, "missing_mask": mask}


ENGINES = [
    ("it3", False),
    ("masked", False),
    ("tail_forecast", False),
    ("masked", True),
    ("self_reconstruction", True),
]
SETTINGS = [
    {},
    {"safeguard": True},
    {"scope": "sample"},
    {"scope": "sample", "safeguard": True},
]


@pytest.mark.parametrize("name, imputer", ENGINES)
@pytest.mark.parametrize("setting", SETTINGS)
def test_a_permuted_batch_gives_the_permuted_outputs(name, imputer, setting):
    engine = (_imputer_engine if imputer else _forecaster_engine)(name).eval()
    inputs = _batch(imputer)
    perm = torch.randperm(10, generator=torch.Generator().manual_seed(2))
    opt = {"num_steps": 3, "lr": 1e-2, **setting}
    out, loss = engine.adapt(inputs, opt)
    out_perm, loss_perm = engine.adapt(select(inputs, perm.tolist()), opt)
    assert torch.allclose(out_perm, out[perm], rtol=0, atol=1e-6)
    assert torch.allclose(loss_perm, loss, rtol=1e-6, atol=1e-7)
    # and adaptation moved the outputs (the test is not vacuous); the
    # safeguard may rightly reject every step of these untrained heads
    if not setting.get("safeguard"):
        assert not torch.allclose(engine.adapt(inputs, {"num_steps": 0})[0], out)


@pytest.mark.parametrize("name, imputer", ENGINES)
def test_scope_sample_adapts_each_sample_alone(name, imputer):
    engine = (_imputer_engine if imputer else _forecaster_engine)(name).eval()
    inputs = _batch(imputer, n=5)
    opt = {"num_steps": 3, "lr": 1e-2}
    together, loss = engine.adapt(inputs, {**opt, "scope": "sample"})
    alone = [engine.adapt(select(inputs, [i]), opt) for i in range(5)]
    assert torch.allclose(together, torch.cat([o for o, _ in alone]), atol=1e-6)
    assert torch.isclose(loss, torch.stack([v for _, v in alone]).mean())
    grouped = engine.adapt(inputs, opt)[0]
    assert not torch.allclose(together, grouped)  # per batch is another thing


def test_safeguard_keeps_the_best_checked_step_of_one_sample():
    # one sample of a deterministic engine: the check is its own loss, so the
    # safeguard predicts with the step (0 included) whose loss is lowest
    engine = _forecaster_engine("tail_forecast").eval()
    x = _batch(False, n=1)
    opt = {"num_steps": 6, "lr": 0.3}  # large enough to overshoot
    losses = [float(engine.adapt(x, {**opt, "num_steps": k})[1]) for k in range(7)]
    best = min(range(7), key=losses.__getitem__)
    assert 0 < best < 6  # the loss first falls, then rises
    guarded = engine.adapt(x, {**opt, "safeguard": True})[0]
    assert torch.equal(guarded, engine.adapt(x, {**opt, "num_steps": best})[0])


def test_safeguard_never_raises_the_held_out_loss_and_survives_divergence():
    engine = _forecaster_engine("tail_forecast").eval()
    x = _batch(False, n=8)
    wild = {"num_steps": 5, "lr": 1e6, "optimizer": "sgd"}
    with pytest.raises(ValueError, match="diverged"):
        engine.adapt(x, wild)
    stored = _state(engine)
    guarded, _ = engine.adapt(x, {**wild, "safeguard": True})
    # every step was rejected: the stored weights predicted
    assert torch.equal(guarded, engine.adapt(x, {"num_steps": 0})[0])
    assert _same(_state(engine), stored)


def test_holdout_split_sizes_and_order():
    engine = _forecaster_engine("tail_forecast")
    keys = sample_keys(_batch(False, n=8))
    fit, check = engine._holdout(keys, 0.25)
    assert len(check) == 2 and sorted(fit + check) == list(range(8))
    assert engine._holdout(keys[:2], 0.9) == ([0], [1]) or engine._holdout(
        keys[:2], 0.9
    ) == ([1], [0])
    assert engine._holdout(keys[:1], 0.5) == ([0], [0])
    # the held-out samples are the same whatever their order
    reversed_fit, reversed_check = engine._holdout(keys[::-1], 0.25)
    assert {keys[::-1][i] for i in reversed_check} == {keys[i] for i in check}

import pytest
import torch

from tsgen.adaptation import (
    IT3Engine,
    MaskedReconstructionEngine,
    TailForecastEngine,
    available_engines,
    get_engine,
    register,
)
from tsgen.adaptation.base import BaseEngine
from tsgen.adaptation.registry import _ALIASES, _REGISTRY


def test_known_engines():
    assert {"it3", "masked", "tail_forecast"} <= set(available_engines())
    assert get_engine("it3") is IT3Engine
    assert get_engine("masked") is MaskedReconstructionEngine
    assert get_engine("tail_forecast") is TailForecastEngine
    assert IT3Engine.name == "it3"


def test_unknown_name_lists_known_ones():
    with pytest.raises(
        ValueError,
        match=r"unknown engine 'tent'.*it3.*masked.*tail_forecast.*'ittt': 'it3'",
    ):
        get_engine("tent")


def test_ittt_is_an_alias_of_it3_listed_once():
    """torch-ttt registers IT3 as "ittt": accepted everywhere, listed only on request."""
    assert get_engine("ittt") is IT3Engine and IT3Engine.name == "it3"
    assert "ittt" not in available_engines()
    assert available_engines(aliases=True) == sorted([*available_engines(), "ittt"])


def test_aliases_cannot_shadow_names():
    try:
        with pytest.raises(ValueError, match="already registered as 'it3'"):
            register("_test_engine", aliases=("it3",))(type("A", (BaseEngine,), {}))
        with pytest.raises(ValueError, match="already registered as 'ittt'"):
            register("ittt")(type("B", (BaseEngine,), {}))
        with pytest.raises(ValueError, match="non-empty strings"):
            register("_test_engine", aliases=("",))(type("C", (BaseEngine,), {}))
        assert "_test_engine" not in available_engines(aliases=True)

        @register("_test_engine", aliases=("_test_alias",))
        class D(BaseEngine):
            def ttt_forward(self, inputs, target=None):
                return self.model(inputs), inputs.sum() * 0

        assert get_engine("_test_alias") is D and D.name == "_test_engine"
        assert "_test_alias" not in available_engines()
    finally:
        _REGISTRY.pop("_test_engine", None)
        _ALIASES.pop("_test_alias", None)
    assert "_test_alias" not in available_engines(aliases=True)


def test_register_a_new_engine():
    try:

        @register("_test_identity")
        class Identity(BaseEngine):
            def ttt_forward(self, inputs, target=None):
                out = self.model(inputs)
                return out, out.sum() * 0

        assert get_engine("_test_identity") is Identity
        engine = Identity(torch.nn.Linear(2, 2)).eval()
        out, loss = engine(torch.ones(1, 2))
        assert out.shape == (1, 2) and loss.item() == 0
        with pytest.raises(ValueError, match="already registered"):
            register("_test_identity")(type("Other", (Identity,), {}))
    finally:
        _REGISTRY.pop("_test_identity", None)


def test_only_engines_can_register():
    with pytest.raises(TypeError, match="BaseEngine"):
        register("_test_bad")(torch.nn.Linear)
    assert "_test_bad" not in available_engines()


@pytest.mark.parametrize("name", available_engines())
def test_build_engine_builds_every_registered_engine(name):
    from tsgen.adaptation import ConvImputer, MLPForecaster, build_engine

    # self_reconstruction needs a model that reconstructs
    # its input; the others wrap a forecaster
    model = (
        ConvImputer(2, hidden=8)
        if name == "self_reconstruction"
        else MLPForecaster(12, 4, 2, hidden=8)
    )
    engine = build_engine(
        name,
        model,
        layer="encoder",
        example_inputs=torch.zeros(1, 12, 2),
        optimization_parameters={"num_steps": 1},
        seed=3,
    )
    assert (
        type(engine) is get_engine(name)
        and engine.seed == 3
        and engine.optimization_parameters.num_steps == 1
    )
    outputs, loss = engine.eval()(torch.rand(4, 12, 2))
    assert torch.isfinite(outputs).all() and torch.isfinite(loss)

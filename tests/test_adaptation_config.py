"""TTTForecasterConfig: JSON round trip and the shared validators."""

import math

import pytest

from tsgen.adaptation import TTTForecasterConfig


def test_json_round_trip(tmp_path):
    config = TTTForecasterConfig(
        engine="masked",
        engine_options={"mask_ratio": 0.3},
        adaptation={"optimizer_name": "sgd", "lr": 0.01},
    )
    again = TTTForecasterConfig.from_json(config.to_json())
    assert again == config and again.adaptation["optimizer"] == "sgd"
    config.to_json(tmp_path / "config.json")
    assert TTTForecasterConfig.read(tmp_path / "config.json") == config


def test_values_are_normalised():
    config = TTTForecasterConfig(epochs=2.0, alpha=1, lr=1)
    assert (
        type(config.epochs) is int
        and type(config.alpha) is float
        and type(config.lr) is float
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"engine": "tent"}, "unknown engine"),
        ({"epochs": 0}, "epochs"),
        ({"epochs": True}, "epochs"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"context_length": "24"}, "context_length"),
        ({"alpha": -1}, "alpha"),
        ({"alpha": math.nan}, "alpha"),
        ({"lr": 0}, "lr"),
        ({"seed": -1}, "seed"),
        ({"adaptation": {"lr": -1}}, "lr"),
        ({"adaptation": {"num_steps": True}}, "num_steps"),
        ({"adaptation": {"steps": 3}}, "unknown field"),
        ({"engine_options": ["mask_ratio"]}, "engine_options"),
        ({"engine_options": {"mask_ratio": math.nan}}, "engine_options"),
        ({"engine": None, "engine_options": {"mask_ratio": 0.3}}, "engine=None"),
    ],
)
def test_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TTTForecasterConfig(**kwargs)


def test_unknown_field_is_named():
    with pytest.raises(ValueError, match="unknown field.*engines"):
        TTTForecasterConfig.from_dict({"engines": "it3"})
    with pytest.raises(ValueError, match="unknown field.*device"):
        # the device is the estimator's, not the config's
        TTTForecasterConfig.from_dict({"device": "cpu"})


def test_adaptation_scope_and_safeguard_round_trip():
    config = TTTForecasterConfig(
        adaptation={"scope": "sample", "safeguard": True, "holdout": 0.5}
    )
    assert config.adaptation["scope"] == "sample" and config.adaptation["safeguard"]
    assert TTTForecasterConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="scope"):
        TTTForecasterConfig(adaptation={"scope": "patient"})

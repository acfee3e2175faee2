"""TTTImputerConfig: JSON round-trip and the shared validators."""

import json

import pytest

from tsgen.imputation import TTTImputerConfig


def test_round_trip():
    config = TTTImputerConfig(
        24,
        5,
        layer_type="mlp",
        adaptation={"num_steps": 2},
        adaptation_engine="masked",
        engine_options={"mask_ratio": 0.3},
        engine_weight=0.5,
    )
    assert TTTImputerConfig.from_json(config.to_json()) == config
    assert json.loads(config.to_json())["adaptation"]["num_steps"] == 2
    epochs = TTTImputerConfig(24, 5, epochs=4.0, patience=None).epochs
    assert epochs == 4 and isinstance(epochs, int)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"batch_size": 2.5}, "batch_size must be a positive integer"),
        ({"epochs": True}, "epochs must be a positive integer"),
        ({"n_steps": "24"}, "n_steps must be a positive integer"),
        ({"layer_type": "gru"}, "layer_type='gru' is not supported"),
        ({"d_model": 10, "n_heads": 4}, "multiple of n_heads"),
        ({"patience": 0}, "patience must be a positive integer"),
        ({"epochs": 3, "patience": 5}, "patience must be None or at most epochs=3"),
        ({"mit_rate": 1.0}, r"mit_rate must be in \(0, 1\)"),
        ({"dropout": -0.1}, r"dropout must be in \[0, 1\)"),
        ({"lr": 0}, "lr must be a finite positive number"),
        ({"ORT_weight": 0, "MIT_weight": 0}, "both 0"),
        ({"engine_weight": -1}, "engine_weight must be a finite number >= 0"),
        ({"bidirectional": 1}, "bidirectional must be True or False"),
        ({"training_loss": "huber"}, "training_loss='huber' is not supported"),
        ({"inner_lr_scaling": "1/t"}, "inner_lr_scaling='1/t' is not supported"),
        (
            {"adaptation_engine": "tent"},
            "adaptation_engine='tent' is not supported; choose one of",
        ),
        ({"engine_options": [("mask_ratio", 0.2)]}, "engine_options must be a dict"),
        ({"engine_layer": ""}, "engine_layer must name a layer"),
        ({"adaptation": {"steps": 2}}, r"unknown field\(s\) \['steps'\]"),
        ({"seed": -1}, "seed must be an integer >= 0"),
    ],
)
def test_bad_values_are_clear_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        TTTImputerConfig.from_dict({"n_steps": 12, "n_features": 3, **changes})


def test_unknown_field_is_named():
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['d_modle'\]"):
        TTTImputerConfig.from_dict({"n_steps": 12, "n_features": 3, "d_modle": 16})

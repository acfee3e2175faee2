import json

import pytest

from tsgen.forecasting import (
    TTM_R2_HUB_ID,
    ModelConfig,
    TTMConfig,
    TTMDataConfig,
    TTMTrainingConfig,
    create_default_ttm_config,
    create_ttm_fine_tuning_config,
    create_ttm_zero_shot_config,
)


@pytest.mark.parametrize(
    "cls", [ModelConfig, TTMConfig, TTMTrainingConfig, TTMDataConfig]
)
def test_json_round_trip(cls, tmp_path):
    config = cls()
    assert cls.from_json(config.to_json()) == config
    config.to_json(tmp_path / "c.json")
    assert cls.read(tmp_path / "c.json") == config
    assert cls.from_dict(json.loads(config.to_json())) == config


def test_ttm_config_round_trip_with_changes():
    config = TTMConfig(
        model_path=None,
        input_features=["iob", "cob"],
        context_length=64,
        forecast_length=12,
        scaler_type="minmax",
        imputation_strategy="forward_fill",
        decoder_mode="mix_channel",
    )
    assert config.num_input_channels == 3
    assert TTMConfig.from_json(config.to_json()) == config


def test_factories():
    default = create_default_ttm_config()
    assert (default.model_path, default.context_length, default.forecast_length) == (
        TTM_R2_HUB_ID,
        512,
        96,
    )
    fine = create_ttm_fine_tuning_config()
    assert (
        fine.training_mode,
        fine.learning_rate,
        fine.num_epochs,
        fine.warmup_steps,
    ) == ("fine_tune", 1e-5, 5, 500)
    assert create_ttm_fine_tuning_config(num_epochs=2).num_epochs == 2
    assert create_ttm_zero_shot_config().training_mode == "zero_shot"


def test_split_configs():
    config = TTMConfig(
        input_features=["iob"],
        learning_rate=3e-4,
        valid_fraction=0.25,
        logging_dir="runs",
    )
    training = config.to_training_config()
    assert (training.learning_rate, training.logging_dir, training.training_mode) == (
        3e-4,
        "runs",
        "fine_tune",
    )
    data = config.to_data_config()
    assert data.split_config == {"train": 0.75, "valid": 0.25}
    assert (
        data.num_input_channels == 2
        and data.input_features == ["iob"]
        and data.target_features == ["bg_mM"]
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"scaler_type": "robust"}, "scaler_type='robust' is not supported"),
        ({"imputation_strategy": "spline"}, "imputation_strategy"),
        ({"training_mode": "few_shot"}, "training_mode"),
        ({"context_length": 0}, "context_length must be a positive"),
        ({"device": "tpu"}, "device"),
        ({"target_features": []}, "target_features is empty"),
        ({"input_features": ["bg_mM"]}, "both targets and input features"),
        ({"num_input_channels": 3}, "num_input_channels=3"),
        ({"valid_fraction": 1.0}, "valid_fraction"),
        ({"batch_size": 2.5}, "batch_size must be a positive integer"),
        ({"num_epochs": True}, "num_epochs must be a positive integer"),
        ({"context_length": "24"}, "context_length must be a positive integer"),
        (
            {"learning_rate": float("nan")},
            "learning_rate must be a finite positive number",
        ),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"freeze_backbone": 1}, "freeze_backbone must be True or False"),
        ({"progress": "yes"}, "progress must be True or False"),
        ({"weight_decay": -0.1}, "weight_decay must be a finite number >= 0"),
        ({"model_path": 3}, "model_path must be a string or None"),
        ({"imputation_strategy": "ttt"}, r"imputation_strategy='ttt' is not supported"),
    ],
)
def test_bad_config_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TTMConfig(**kwargs)


def test_integral_floats_become_integers():
    config = TTMConfig(batch_size=32.0, context_length=64.0)
    assert (config.batch_size, config.context_length) == (32, 64)
    assert isinstance(config.batch_size, int)


@pytest.mark.parametrize(
    "cls, kwargs, message",
    [
        (
            TTMTrainingConfig,
            {"num_epochs": True},
            "num_epochs must be a positive integer",
        ),
        (TTMTrainingConfig, {"training_mode": "few_shot"}, "training_mode"),
        (TTMDataConfig, {"split_config": {"train": 0.8, "val": 0.2}}, "split_config"),
        (
            TTMDataConfig,
            {"resolution_min": 0},
            "resolution_min must be a positive integer",
        ),
    ],
)
def test_bad_part_configs_are_rejected(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_unknown_json_field_is_rejected():
    with pytest.raises(ValueError, match="unknown field"):
        TTMConfig.from_dict({"context_lenght": 3})

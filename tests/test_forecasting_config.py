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


@pytest.mark.parametrize("cls", [ModelConfig, TTMConfig, TTMTrainingConfig, TTMDataConfig])
def test_json_round_trip(cls, tmp_path):
    config = cls()
    assert cls.from_json(config.to_json()) == config
    config.to_json(tmp_path / "c.json")
    assert cls.read(tmp_path / "c.json") == config
    assert cls.from_dict(json.loads(config.to_json())) == config


def test_ttm_config_round_trip_with_changes():
    config = TTMConfig(model_path=None, input_features=["iob", "cob"], context_length=64, forecast_length=12,
                       scaler_type="minmax", imputation_strategy="forward_fill", decoder_mode="mix_channel")
    assert config.num_input_channels == 3
    assert TTMConfig.from_json(config.to_json()) == config


def test_factories():
    default = create_default_ttm_config()
    assert (default.model_path, default.context_length, default.forecast_length) == (TTM_R2_HUB_ID, 512, 96)
    fine = create_ttm_fine_tuning_config()
    assert (fine.training_mode, fine.learning_rate, fine.num_epochs, fine.warmup_steps) == ("fine_tune", 1e-5, 5, 500)
    assert create_ttm_fine_tuning_config(num_epochs=2).num_epochs == 2
    assert create_ttm_zero_shot_config().training_mode == "zero_shot"


def test_split_configs():
    config = TTMConfig(input_features=["iob"], learning_rate=3e-4, valid_fraction=0.25, logging_dir="runs")
    training = config.to_training_config()
    assert (training.learning_rate, training.logging_dir, training.training_mode) == (3e-4, "runs", "fine_tune")
    data = config.to_data_config()
    assert data.split_config == {"train": 0.75, "valid": 0.25}
    assert data.num_input_channels == 2 and data.input_features == ["iob"] and data.target_features == ["bg_mM"]


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
    ],
)
def test_bad_config_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TTMConfig(**kwargs)


def test_unknown_json_field_is_rejected():
    with pytest.raises(ValueError, match="unknown field"):
        TTMConfig.from_dict({"context_lenght": 3})

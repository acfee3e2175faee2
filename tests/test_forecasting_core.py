import logging

import pytest
import torch

from tsgen.forecasting import TTMConfig, hub_reachable, ttm_r2_architecture
from tsgen.forecasting.core import build_network, network_from_state


def config(**kw):
    return TTMConfig(
        **{
            "model_path": None,
            "context_length": 32,
            "forecast_length": 6,
            "device": "cpu",
            **kw,
        }
    )


def test_r2_architecture_matches_the_published_model():
    from tsfm_public.models.tinytimemixer import TinyTimeMixerForPrediction

    cfg = ttm_r2_architecture(512, 96)
    assert (
        cfg.patch_length,
        cfg.d_model,
        cfg.num_layers,
        cfg.adaptive_patching_levels,
    ) == (64, 192, 2, 3)
    assert (cfg.decoder_d_model, cfg.decoder_num_layers, cfg.head_dropout) == (
        128,
        2,
        0.7,
    )
    assert (
        sum(p.numel() for p in TinyTimeMixerForPrediction(cfg).parameters()) == 805_280
    )
    with pytest.raises(ValueError, match="multiple of 8"):
        ttm_r2_architecture(100, 12)


def test_unloadable_weights_are_an_error_not_random(caplog, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not hub_reachable()
    for path in ("ibm-granite/granite-timeseries-ttm-r2", str(tmp_path / "typo")):
        with pytest.raises(ValueError, match="model_path='random'"):
            build_network(config(model_path=path, training_mode="fine_tune"))
    caplog.clear()
    for asked in ("random", None):
        with caplog.at_level(logging.INFO, logger="tsgen.forecasting.core"):
            _, source = build_network(config(model_path=asked))
        # random weights asked for by name: information, not a warning
        assert [r.levelno for r in caplog.records if "tsgen" in r.name] == [
            logging.INFO
        ]
        assert source == f"random (model_path={asked!r})"
        caplog.clear()


def test_freq_prefix_reaches_get_model(monkeypatch, tmp_path):
    import sys

    import tsfm_public.toolkit.get_model  # noqa: F401  (the module, not the function)

    gm = sys.modules["tsfm_public.toolkit.get_model"]

    seen = {}

    def fake(path, **kwargs):
        seen.update(kwargs)
        raise ValueError("no such model")

    monkeypatch.setattr(gm, "get_model", fake)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="no such model"):
        build_network(
            config(
                model_path="some/hub-id",
                training_mode="fine_tune",
                freq_prefix_tuning=True,
            )
        )
    assert seen["freq_prefix_tuning"] is True and seen["freq"] == "5min"


def test_network_from_its_recorded_config():
    model, _ = build_network(config(input_features=["iob"], decoder_mode="mix_channel"))
    again = network_from_state(model.config.to_dict())
    assert (
        again.config.num_input_channels == 2
        and again.config.decoder_mode == "mix_channel"
    )
    again.load_state_dict(model.state_dict())  # the same architecture, strictly


def test_a_directory_without_a_checkpoint_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="holds no TTM checkpoint"):
        build_network(config(model_path=str(tmp_path), training_mode="fine_tune"))
    (tmp_path / "state.json").write_text('{"kind": "LinearRegression"}')
    with pytest.raises(ValueError, match="holds a LinearRegression checkpoint"):
        build_network(config(model_path=str(tmp_path), training_mode="fine_tune"))


def test_a_model_too_short_for_the_config_is_rejected(tmp_path):
    model, _ = build_network(config())
    model.save_pretrained(tmp_path)  # a HuggingFace directory: forecasts 6 steps
    with pytest.raises(
        ValueError, match="prediction_filter_length should be positive and less than"
    ):
        build_network(
            config(
                model_path=str(tmp_path), training_mode="fine_tune", forecast_length=12
            )
        )
    loaded, source = build_network(
        config(model_path=str(tmp_path), training_mode="fine_tune", forecast_length=4)
    )
    assert source == f"local checkpoint {tmp_path}"
    with pytest.raises(
        ValueError, match="context of 32 steps but config.context_length"
    ):
        build_network(
            config(
                model_path=str(tmp_path), training_mode="fine_tune", context_length=64
            )
        )
    torch.testing.assert_close(
        loaded.state_dict()["head.base_forecast_block.weight"],
        model.state_dict()["head.base_forecast_block.weight"],
    )

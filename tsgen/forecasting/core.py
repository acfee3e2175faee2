"""The network: IBM's TinyTimeMixer (granite-tsfm), built from whatever weights can be had.

:func:`build_network` reads ``config.model_path``: a HuggingFace hub id
(tsfm_public ``get_model`` picks the TTM whose context/forecast lengths fit), a
local directory (a HuggingFace TTM checkpoint, or one written by
``TTMForecaster.save``), or, when no weights can be had, the TTM-r2
architecture for the requested lengths with random weights, announced by a
log line. Every function here that initialises weights draws from torch's
global generator: callers wrap them in :func:`tsgen.runtime.seeded`.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import torch

from ..estimator import STATE, WEIGHTS, read_json
from .config import TTMConfig

log = logging.getLogger(__name__)

HUB_HOST = ("huggingface.co", 443)
# the kind in state.json of a checkpoint written by TTMForecaster.save
CHECKPOINT_KIND = "TTMForecaster"


def ttm_r2_architecture(
    context_length: int,
    forecast_length: int,
    num_input_channels: int = 1,
    prediction_channel_indices: list[int] | None = None,
    decoder_mode: str = "common_channel",
):
    """The TinyTimeMixer-r2 architecture scaled to ``context_length``.

    The published r2 512-96 model has 8 patches of 64 steps, d_model 192
    (3 x patch), 2 mixer layers, 3 adaptive-patching levels, a decoder of
    d_model 128 (2 x patch) with 2 layers, dropout 0.2 and head dropout 0.7
    (805,280 parameters). Other lengths keep those ratios; the adaptive
    patching levels are the most (up to 3) that d_model can be split into.
    """
    from tsfm_public.models.tinytimemixer import TinyTimeMixerConfig

    if context_length % 8:
        raise ValueError(
            "the TTM-r2 architecture uses 8 patches: context_length "
            f"must be a multiple of 8; got {context_length}"
        )
    patch = context_length // 8
    d_model = 3 * patch
    levels = max(
        lv
        for lv in range(4)
        if lv == 0 or (d_model % 2**lv == 0 and d_model // 2**lv > 4)
    )
    return TinyTimeMixerConfig(
        context_length=context_length,
        prediction_length=forecast_length,
        patch_length=patch,
        patch_stride=patch,
        num_input_channels=num_input_channels,
        prediction_channel_indices=prediction_channel_indices,
        d_model=d_model,
        num_layers=2,
        adaptive_patching_levels=levels,
        expansion_factor=2,
        decoder_d_model=2 * patch,
        decoder_num_layers=2,
        decoder_mode=decoder_mode,
        use_decoder=True,
        dropout=0.2,
        head_dropout=0.7,
        scaling="std",
        mode="common_channel",
        gated_attn=True,
        norm_mlp="LayerNorm",
    )


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the HuggingFace hub can be reached (False at once when HF_HUB_OFFLINE is set)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.create_connection(HUB_HOST, timeout=timeout).close()
        return True
    except OSError:
        return False


def prediction_channels(config: TTMConfig) -> list[int]:
    """The channels TTM forecasts: the targets, which the input pipeline puts first."""
    return list(range(len(config.target_features)))


def _adapted(config: TTMConfig) -> dict:
    """What a pretrained network must be told about this run: channels, decoder, forecast length."""
    return dict(
        num_input_channels=config.num_input_channels,
        prediction_channel_indices=prediction_channels(config),
        decoder_mode=config.decoder_mode,
        prediction_filter_length=config.forecast_length,
    )


def random_network(config: TTMConfig, reason: str):
    """The TTM-r2 architecture for ``config`` with random weights (asked for), and a log line that says so."""
    from tsfm_public.models.tinytimemixer import TinyTimeMixerForPrediction

    model = TinyTimeMixerForPrediction(
        ttm_r2_architecture(
            config.context_length,
            config.forecast_length,
            config.num_input_channels,
            prediction_channels(config),
            config.decoder_mode,
        )
    )
    n = sum(p.numel() for p in model.parameters())
    log.info(
        "%s: built the TTM-r2 architecture for context %d / "
        "forecast %d with random weights (%d parameters); it "
        "must be trained before its forecasts mean anything",
        reason,
        config.context_length,
        config.forecast_length,
        n,
    )
    return model, f"random ({reason})"


def network_from_state(network_config: dict):
    """An untrained network of the architecture a ``TTMForecaster`` checkpoint records (its weights load next)."""
    from tsfm_public.models.tinytimemixer import (
        TinyTimeMixerConfig,
        TinyTimeMixerForPrediction,
    )

    return TinyTimeMixerForPrediction(TinyTimeMixerConfig.from_dict(network_config))


def is_forecaster_checkpoint(path: Path) -> bool:
    """Whether ``path`` is a directory written by ``TTMForecaster.save``."""
    return (path / STATE).is_file() and read_json(path / STATE).get(
        "kind"
    ) == CHECKPOINT_KIND


def check_context(network: dict, config: TTMConfig, where: Path) -> None:
    """A local checkpoint's network must read exactly ``config.context_length`` steps."""
    if network.get("context_length") != config.context_length:
        raise ValueError(
            f"{where}: the checkpoint's network reads a context of "
            f"{network.get('context_length')} steps but config.context_length is "
            f"{config.context_length}; set context_length={network.get('context_length')}"
        )


def network_from_directory(config: TTMConfig, path: Path):
    """Weights from a ``TTMForecaster`` checkpoint or a HuggingFace TTM directory, adapted to ``config``."""
    from safetensors.torch import load_file
    from tsfm_public.models.tinytimemixer import (
        TinyTimeMixerConfig,
        TinyTimeMixerForPrediction,
    )

    if (path / STATE).is_file():
        state = read_json(path / STATE)
        if state.get("kind") != CHECKPOINT_KIND:
            raise ValueError(
                f"{path} holds a {state.get('kind')} checkpoint, "
                f"not a {CHECKPOINT_KIND}: no TTM weights"
            )
        if "network" not in state or "preprocessor" not in state:
            raise ValueError(
                f"{path / STATE} lacks the 'network' or 'preprocessor' entry "
                "of a TTMForecaster checkpoint: it cannot be used"
            )
        check_context(state["network"], config, path / STATE)
        network_config = {**state["network"], **_adapted(config)}
        model = TinyTimeMixerForPrediction.from_pretrained(
            None,
            config=TinyTimeMixerConfig.from_dict(network_config),
            state_dict=load_file(str(path / WEIGHTS)),
        )
    elif (path / "config.json").is_file():
        from tsfm_public.toolkit.get_model import get_model

        adapted = _adapted(config)
        adapted.pop("prediction_filter_length")
        model = get_model(
            str(path),
            context_length=config.context_length,
            prediction_length=config.forecast_length,
            freq_prefix_tuning=config.freq_prefix_tuning,
            freq=config.resolution,
            **adapted,
        )
        check_context(model.config.to_dict(), config, path / "config.json")
    else:
        raise ValueError(
            f"{path} holds no TTM checkpoint (neither a TTMForecaster checkpoint nor a "
            "HuggingFace model directory)"
        )
    return model, f"local checkpoint {path}"


def network_from_hub(config: TTMConfig, hub_id: str):
    """The pretrained TTM on the hub (or in the local cache) that fits ``config``; an error if none can be had."""
    from tsfm_public.toolkit.get_model import get_model

    adapted = _adapted(config)
    # get_model picks a forecast length at least as long by itself
    adapted.pop("prediction_filter_length")
    online = hub_reachable()
    try:
        model = get_model(
            hub_id,
            context_length=config.context_length,
            prediction_length=config.forecast_length,
            freq_prefix_tuning=config.freq_prefix_tuning,
            freq=config.resolution,
            **adapted,
            local_files_only=not online,
        )
    except (OSError, ValueError) as err:
        where = "the hub is reachable" if online else "no hub access and no cached copy"
        raise ValueError(
            f"model_path={hub_id!r} cannot be loaded ({where}: "
            f"{str(err).splitlines()[0]}); it is neither a local directory nor "
            "available weights: pass model_path='random' to train the TTM-r2 "
            "architecture from random weights"
        ) from None
    source = (
        f"hub {hub_id} (context {model.config.context_length}, "
        f"forecast {model.config.prediction_length})"
    )
    log.info("loaded %s", source)
    return model, source


def build_network(config: TTMConfig) -> tuple[torch.nn.Module, str]:
    """The network ``config`` asks for and where its weights came from.

    The source reads ``"hub <id> ..."``, ``"local checkpoint <path>"`` or ``"random (...)"``.
    """
    if config.training_mode == "from_scratch":
        model, source = random_network(config, "training_mode='from_scratch'")
    elif config.random_weights:
        model, source = random_network(config, f"model_path={config.model_path!r}")
    elif Path(config.model_path).is_dir():
        model, source = network_from_directory(config, Path(config.model_path))
    else:
        model, source = network_from_hub(config, config.model_path)
    if model.config.context_length > config.context_length:
        raise ValueError(
            f"the model needs a context of {model.config.context_length} steps; "
            f"config.context_length is {config.context_length}"
        )
    if model.config.prediction_length < config.forecast_length:
        raise ValueError(
            f"the model forecasts {model.config.prediction_length} steps; "
            f"config.forecast_length is {config.forecast_length}"
        )
    return model, source

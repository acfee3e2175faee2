"""TTMForecaster: IBM's TinyTimeMixer (granite-tsfm) for multi-patient glucose forecasting.

The model comes from ``config.model_path``: a HuggingFace hub id (tsfm_public
``get_model`` picks the TTM whose context/forecast lengths fit), a local
directory (a TTM checkpoint, or a directory written by :meth:`TTMForecaster.save`),
or, when no weights can be had, the TTM-r2 architecture for the requested
lengths with random weights, announced by a log line. Training is the
HuggingFace ``Trainer`` (validation split, early stopping, best-model reload,
TensorBoard logs), so ``torchrun``/``accelerate launch`` scale it out as is.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

import tsgen
from ..runtime import resolve_device

from .base import BaseTSFM
from .config import TTMConfig
from .inputs import Preprocessor, WindowDataset, check_lengths, forecast_frame, window_starts

log = logging.getLogger(__name__)

HUB_HOST = ("huggingface.co", 443)


def ttm_r2_architecture(context_length: int, forecast_length: int, num_input_channels: int = 1,
                        prediction_channel_indices: list[int] | None = None, decoder_mode: str = "common_channel"):
    """The TinyTimeMixer-r2 architecture scaled to ``context_length``.

    The published r2 512-96 model has 8 patches of 64 steps, d_model 192
    (3 x patch), 2 mixer layers, 3 adaptive-patching levels, a decoder of
    d_model 128 (2 x patch) with 2 layers, dropout 0.2 and head dropout 0.7
    (805,280 parameters). Other lengths keep those ratios; the adaptive
    patching levels are the most (up to 3) that d_model can be split into.
    """
    from tsfm_public.models.tinytimemixer import TinyTimeMixerConfig

    if context_length % 8:
        raise ValueError(f"the TTM-r2 architecture uses 8 patches: context_length must be a multiple of 8; got {context_length}")
    patch = context_length // 8
    d_model = 3 * patch
    levels = max(lv for lv in range(4) if lv == 0 or (d_model % 2**lv == 0 and d_model // 2**lv > 4))
    return TinyTimeMixerConfig(
        context_length=context_length, prediction_length=forecast_length, patch_length=patch, patch_stride=patch,
        num_input_channels=num_input_channels, prediction_channel_indices=prediction_channel_indices,
        d_model=d_model, num_layers=2, adaptive_patching_levels=levels, expansion_factor=2,
        decoder_d_model=2 * patch, decoder_num_layers=2, decoder_mode=decoder_mode, use_decoder=True,
        dropout=0.2, head_dropout=0.7, scaling="std", mode="common_channel", gated_attn=True, norm_mlp="LayerNorm",
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


def _progress_callback(enabled: bool):
    """A Trainer callback with one quiet progress bar (tqdm.auto, mininterval 5 s) over all steps."""
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.bar = tqdm(total=state.max_steps, desc="training TTM", disable=not enabled, mininterval=5)

        def on_step_end(self, args, state, control, **kwargs):
            self.bar.update(1)

        def on_train_end(self, args, state, control, **kwargs):
            self.bar.close()

    return Progress()


class TTMForecaster(BaseTSFM):
    """TinyTimeMixer glucose forecaster with fit / predict / predict_zero_shot / evaluate / save / load.

    >>> f = TTMForecaster(TTMConfig(model_path=None, context_length=128, forecast_length=12))
    >>> f.fit(train_frame).evaluate(test_frame)   # doctest: +SKIP
    """

    def __init__(self, config: TTMConfig):
        if not isinstance(config, TTMConfig):
            raise ValueError(f"config must be a TTMConfig; got {type(config).__name__}")
        self.config = config
        self.device = resolve_device(config.device)
        self.preprocessor = Preprocessor(config.to_data_config())
        self.history: list[dict] = []
        self.n_windows: dict[str, int] = {}
        self.quality: pd.DataFrame | None = None
        self.weights_source = ""
        self.model = self._build_model()

    # ----- model construction -------------------------------------------------------------
    @property
    def _prediction_channels(self) -> list[int]:
        return list(range(len(self.config.target_features)))

    def _random_model(self, reason: str):
        from tsfm_public.models.tinytimemixer import TinyTimeMixerForPrediction

        cfg = self.config
        torch.manual_seed(cfg.seed)  # the random initial weights follow the seed
        model = TinyTimeMixerForPrediction(ttm_r2_architecture(
            cfg.context_length, cfg.forecast_length, cfg.num_input_channels, self._prediction_channels,
            cfg.decoder_mode))
        n = sum(p.numel() for p in model.parameters())
        self.weights_source = f"random init ({reason})"
        log.warning("%s: built the TTM-r2 architecture for context %d / forecast %d with RANDOM weights "
                    "(%d parameters); it must be trained before its forecasts mean anything",
                    reason, cfg.context_length, cfg.forecast_length, n)
        return model

    def _from_directory(self, path: Path):
        from tsfm_public.models.tinytimemixer import TinyTimeMixerForPrediction

        model_dir = path / "model" if (path / "model" / "config.json").exists() else path
        if not (model_dir / "config.json").exists():
            raise ValueError(f"{path} holds no TTM checkpoint (no config.json in it or in {path / 'model'})")
        if (path / "preprocessor.json").exists():  # a directory written by TTMForecaster.save
            self.preprocessor = Preprocessor.from_dict(json.loads((path / "preprocessor.json").read_text()), path)
        model = TinyTimeMixerForPrediction.from_pretrained(
            model_dir, num_input_channels=self.config.num_input_channels,
            prediction_channel_indices=self._prediction_channels, decoder_mode=self.config.decoder_mode,
            prediction_filter_length=self.config.forecast_length)
        self.weights_source = f"local checkpoint {model_dir}"
        return model

    def _from_hub(self, hub_id: str):
        from tsfm_public.toolkit.get_model import get_model

        cfg = self.config
        kwargs = dict(context_length=cfg.context_length, prediction_length=cfg.forecast_length,
                      num_input_channels=cfg.num_input_channels, prediction_channel_indices=self._prediction_channels,
                      decoder_mode=cfg.decoder_mode)
        online = hub_reachable()
        try:
            model = get_model(hub_id, **kwargs, local_files_only=not online)
        except (OSError, ValueError) as err:
            where = "the hub is reachable" if online else "no hub access and no cached copy"
            return self._random_model(f"no pretrained weights for {hub_id!r} ({where}: {str(err).splitlines()[0]})")
        self.weights_source = f"pretrained {hub_id} (context {model.config.context_length}, " \
                              f"forecast {model.config.prediction_length})"
        log.info("loaded %s", self.weights_source)
        return model

    def _build_model(self):
        cfg = self.config
        if cfg.training_mode == "from_scratch":
            model = self._random_model("training_mode='from_scratch'")
        elif cfg.model_path is None:
            model = self._random_model("model_path is None")
        elif Path(cfg.model_path).is_dir():
            model = self._from_directory(Path(cfg.model_path))
        else:
            model = self._from_hub(cfg.model_path)
        if model.config.context_length > cfg.context_length:
            raise ValueError(f"the model needs a context of {model.config.context_length} steps; "
                             f"config.context_length is {cfg.context_length}")
        if model.config.prediction_length < cfg.forecast_length:
            raise ValueError(f"the model forecasts {model.config.prediction_length} steps; "
                             f"config.forecast_length is {cfg.forecast_length}")
        return model.to(self.device)

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    # ----- data ---------------------------------------------------------------------------
    def _series(self, data, fit: bool = False):
        series, self.quality = self.preprocessor.series(data, fit)
        return series

    # ----- training -----------------------------------------------------------------------
    def fit(self, train_data, output_dir: str | Path | None = None) -> "TTMForecaster":
        """Train on ``train_data`` with the HuggingFace Trainer; the last ``valid_fraction`` of each
        patient's span is the validation set (early stopping, best-model reload)."""
        from transformers import EarlyStoppingCallback, Trainer, TrainingArguments
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        cfg = self.config
        if cfg.training_mode == "zero_shot":
            raise ValueError("training_mode='zero_shot' does not train: call predict_zero_shot(), "
                             "or use training_mode 'fine_tune' / 'from_scratch'")
        if self.weights_source.startswith("random") and cfg.training_mode == "fine_tune":
            log.warning("fine-tuning random weights: this is training from scratch")
        series = self._series(train_data, fit=True)
        context, forecast = cfg.context_length, cfg.forecast_length
        check_lengths(series, context + forecast, "training")
        train_starts, valid_starts = [], []
        for s in series.values():
            cut = int(round(len(s) * (1 - cfg.valid_fraction)))
            train_starts.append(window_starts(len(s), context, forecast, last_target=cut))
            valid_starts.append(window_starts(len(s), context, forecast, first_target=cut))
        train_set = WindowDataset(list(series.values()), train_starts, context, forecast)
        valid_set = WindowDataset(list(series.values()), valid_starts, context, forecast)
        if len(train_set) == 0 or len(valid_set) == 0:
            raise ValueError(f"no complete training ({len(train_set)}) or validation ({len(valid_set)}) window: "
                             f"each patient needs more than (context + forecast) / valid_fraction steps")
        if cfg.freeze_backbone:
            for p in self.model.backbone.parameters():
                p.requires_grad = False
        with tempfile.TemporaryDirectory() as tmp:
            args = TrainingArguments(
                output_dir=str(output_dir or tmp), overwrite_output_dir=True,
                per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=4 * cfg.batch_size,
                learning_rate=cfg.learning_rate, num_train_epochs=cfg.num_epochs, warmup_steps=cfg.warmup_steps,
                weight_decay=cfg.weight_decay, eval_strategy="epoch", save_strategy="epoch",
                logging_strategy="epoch", save_total_limit=1, load_best_model_at_end=True,
                metric_for_best_model="eval_loss", greater_is_better=False, label_names=["future_values"],
                prediction_loss_only=True, report_to=["tensorboard"] if cfg.logging_dir else "none",
                logging_dir=cfg.logging_dir, seed=cfg.seed, data_seed=cfg.seed, dataloader_num_workers=0,
                use_cpu=self.device == "cpu", disable_tqdm=True, save_safetensors=True,
            )
            trainer = Trainer(model=self.model, args=args, train_dataset=train_set, eval_dataset=valid_set,
                              callbacks=[EarlyStoppingCallback(cfg.early_stopping_patience), _progress_callback(cfg.progress)])
            trainer.remove_callback(PrinterCallback)
            trainer.remove_callback(ProgressCallback)
            with warnings.catch_warnings():
                # checkpoint rotation on filesystems without reliable mtimes (containers, NFS): harmless
                warnings.filterwarnings("ignore", message="mtime may not be reliable")
                trainer.train()
        self.model = trainer.model.to(self.device).eval()
        # One row per epoch: training loss and validation loss (the Trainer logs them separately).
        epochs: dict[float, dict] = {}
        for entry in trainer.state.log_history:
            if "loss" in entry or "eval_loss" in entry:
                row = epochs.setdefault(entry["epoch"], {"epoch": entry["epoch"]})
                row.update({k: entry[k] for k in ("loss", "eval_loss") if k in entry})
        self.history = list(epochs.values())
        self.n_windows = {"train": len(train_set), "valid": len(valid_set)}
        return self

    # ----- inference ----------------------------------------------------------------------
    @torch.no_grad()
    def _forecast(self, dataset: WindowDataset) -> np.ndarray:
        """Scaled target forecasts ``[n_windows, forecast_length, n_targets]``."""
        self.model.eval()
        loader = torch.utils.data.DataLoader(dataset, batch_size=4 * self.config.batch_size, shuffle=False)
        out = []
        for batch in loader:
            past = batch["past_values"].to(self.device)
            mask = batch["past_observed_mask"].to(self.device)
            pred = self.model(past_values=past, past_observed_mask=mask, return_loss=False).prediction_outputs
            out.append(pred[:, : self.config.forecast_length, : self.preprocessor.n_targets].cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.config.forecast_length, self.preprocessor.n_targets))

    def predict(self, data, stride: int = 1, full_future: bool = False) -> pd.DataFrame:
        """Forecasts from every origin of ``data`` with a full context (every ``stride`` steps).

        Returns the long table described in :class:`BaseTSFM`. Forecasts that
        run past the end of the data have NaN observed values;
        ``full_future=True`` keeps only origins whose whole horizon is in the data.
        """
        if not self.preprocessor.fitted:
            raise RuntimeError("TTMForecaster is not fitted: call fit() first, or predict_zero_shot()")
        series = self._series(data)
        cfg = self.config
        check_lengths(series, cfg.context_length, "a forecast (needs one full context)")
        starts = [window_starts(len(s), cfg.context_length, cfg.forecast_length, stride, full_future=full_future)
                  for s in series.values()]
        dataset = WindowDataset(list(series.values()), starts, cfg.context_length, cfg.forecast_length)
        scaled = self._forecast(dataset)
        glucose_mM = self.preprocessor.unscale_target(scaled)[..., 0]
        return forecast_frame(list(series.values()), starts, glucose_mM, self.preprocessor.observed_target(series),
                              cfg.context_length, cfg.resolution_min, cfg.target_features[0])

    def predict_zero_shot(self, data, stride: int = 1, full_future: bool = False) -> pd.DataFrame:
        """Forecast with the weights as they are, without training.

        If nothing fitted the scaler yet (a hub model), it is fitted on
        ``data`` itself: TTM standardises every context window on its own, so
        a global affine scaler cancels out and this uses no future value.
        With ``imputation_strategy="ttt"`` the imputer would then be trained on
        ``data``'s own readings (a warning says so): fit on training data, or
        load a saved forecaster, to keep it apart.
        """
        if not self.preprocessor.fitted:
            if self.config.imputation_strategy == "ttt":
                log.warning("imputation_strategy='ttt' with an unfitted preprocessor: training the TTT imputer "
                            "on the data to forecast (its observed readings)")
            self.preprocessor.fit(*self.preprocessor.prepare(data))
        if self.weights_source.startswith("random"):
            log.warning("zero-shot forecasts from RANDOM weights (%s)", self.weights_source)
        return self.predict(data, stride, full_future)

    # ----- persistence --------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``model/`` (safetensors + TTM config), ``config.json``, ``preprocessor.json``, ``metadata.json``
        and, with ``imputation_strategy="ttt"``, the fitted imputer in ``imputer/`` (safetensors + JSON)."""
        import transformers
        import tsfm_public

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(path / "model", safe_serialization=True)
        self.config.to_json(path / "config.json")
        (path / "preprocessor.json").write_text(json.dumps(self.preprocessor.to_dict(), indent=2))
        self.preprocessor.save_imputer(path)
        metadata = {
            "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "weights_source": self.weights_source, "n_parameters": self.n_parameters,
            "versions": {"tsgen": tsgen.__version__, "torch": torch.__version__,
                         "transformers": transformers.__version__, "tsfm_public": tsfm_public.__version__},
            "history": self.history,
        }
        (path / "metadata.json").write_text(json.dumps(metadata, indent=2, default=str))
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> "TTMForecaster":
        """A forecaster saved by :meth:`save`; it predicts exactly what the saved one did."""
        path = Path(path)
        if not (path / "config.json").exists():
            raise ValueError(f"{path} is not a saved TTMForecaster (no config.json)")
        values = json.loads((path / "config.json").read_text())
        values.update(model_path=str(path), training_mode="fine_tune")
        if device is not None:
            values["device"] = device
        forecaster = cls(TTMConfig.from_dict(values))
        forecaster.config.training_mode = json.loads((path / "config.json").read_text())["training_mode"]
        forecaster.history = json.loads((path / "metadata.json").read_text()).get("history", [])
        return forecaster

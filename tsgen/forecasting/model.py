"""TTMForecaster: IBM's TinyTimeMixer (granite-tsfm) for multi-patient glucose forecasting.

The network comes from :func:`.core.build_network` (hub weights, a local
checkpoint, or the TTM-r2 architecture with random weights, announced).
Training is the HuggingFace ``Trainer`` (validation split, early stopping,
best-model reload, TensorBoard logs), so ``torchrun``/``accelerate launch``
scale it out as is (``tests/test_forecasting_distributed.py`` runs it under
``torchrun --nproc_per_node=2`` on CPU with the gloo backend). The loss is
TTM's own (``loss_function``: mse, mae or huber), over observed targets only.
The Trainer seeds torch, NumPy and Python globally; here it
runs inside :func:`tsgen.runtime.seeded`, so the caller's generators are left
as they were.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..estimator import STATE, read_json
from ..runtime import progress as progress_bar
from ..runtime import quiet, seeded
from .base import BaseTSFM
from .config import TTMConfig
from .core import build_network, is_forecaster_checkpoint, network_from_state
from .data import (
    Preprocessor,
    WindowDataset,
    check_lengths,
    forecast_frame,
    window_starts,
)

log = logging.getLogger(__name__)


DISTRIBUTED_PREFIXES = ("ddp_", "fsdp", "deepspeed")


def _distributed(options: dict | None) -> dict:
    """Check ``distributed_config``: TrainingArguments names for a distributed run."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise TypeError(
            f"distributed_config must be a dict or None; got {type(options).__name__}"
        )
    from transformers import TrainingArguments

    known = set(TrainingArguments.__dataclass_fields__)
    bad = sorted(
        k for k in options if k not in known or not k.startswith(DISTRIBUTED_PREFIXES)
    )
    if bad:
        raise ValueError(
            f"distributed_config: {bad} are not TrainingArguments for a distributed "
            f"run (names starting with {DISTRIBUTED_PREFIXES})"
        )
    return dict(options)


def world_size() -> int:
    """The number of processes of this run (``WORLD_SIZE``, set by torchrun; 1 otherwise)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _progress_callback(enabled: bool):
    """A Trainer callback with one quiet progress bar over all steps."""
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.bar = progress_bar(
                total=state.max_steps, enabled=enabled, desc="training TTM"
            )

        def on_step_end(self, args, state, control, **kwargs):
            self.bar.update(1)

        def on_train_end(self, args, state, control, **kwargs):
            self.bar.close()

    return Progress()


def _trainer_class():
    """The HuggingFace Trainer, with every rank waiting for rank 0's epoch checkpoint.

    Under torchrun only rank 0 writes a checkpoint, but every rank then checks
    whether the best one's folder exists to decide ``load_best_model_at_end``;
    a rank that looks before rank 0 has written it skips the final barrier
    that rank 0 enters, and both hang (transformers 4.56). A barrier after
    each internal save makes every rank see the same folders.
    """
    import torch.distributed as dist
    from transformers import Trainer

    class CheckpointSyncedTrainer(Trainer):
        def save_model(self, output_dir=None, _internal_call=False):
            super().save_model(output_dir, _internal_call)
            if _internal_call and dist.is_available() and dist.is_initialized():
                dist.barrier()

    return CheckpointSyncedTrainer


class TTMForecaster(BaseTSFM):
    """TinyTimeMixer glucose forecaster: fit / predict / predict_zero_shot /
    evaluate / save / load.

    >>> config = TTMConfig(model_path=None, context_length=128, forecast_length=12)
    >>> f = TTMForecaster(config)
    >>> f.fit(train_frame).evaluate(test_frame)   # doctest: +SKIP
    >>> TTMForecaster.load(f.save("ttm")).predict(test_frame)   # doctest: +SKIP

    A ``model_path`` that is a ``TTMForecaster`` checkpoint also brings its
    fitted preprocessor, so ``predict_zero_shot`` scales new patients as the
    network was trained. ``weights_source`` says where the weights came from
    (``"hub <id> ..."``, ``"local checkpoint <path>"``, ``"random (...)"``).
    ``distributed_config`` holds extra HuggingFace ``TrainingArguments`` for a
    distributed run (names starting with ``ddp_``, ``fsdp`` or ``deepspeed``,
    e.g. ``{"ddp_backend": "gloo"}``); it is not part of the checkpoint.
    """

    def __init__(
        self,
        config: TTMConfig,
        distributed_config: dict | None = None,
        device: str | None = None,
    ):
        super().__init__(config, device)
        self.distributed_config = _distributed(distributed_config)
        self.n_windows: dict[str, int] = {}
        self.quality: pd.DataFrame | None = None
        # random weights (or new decoder weights) follow the seed
        with seeded(config.seed, self.device):
            model, self.weights_source = build_network(config)
        self.model = model.to(self.device)
        if (
            config.model_path is not None
            and is_forecaster_checkpoint(Path(config.model_path))
            and config.training_mode != "from_scratch"
        ):
            source = Path(config.model_path)
            # core.network_from_directory has checked that the entry is there
            self.preprocessor = Preprocessor.from_dict(
                read_json(source / STATE)["preprocessor"], self.device
            )
            self.preprocessor.load_imputer(source)

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    # ----- data -----------------------------------------------------------------------
    def _series(self, data, fit: bool = False):
        series, self.quality = self.preprocessor.series(data, fit)
        return series

    # ----- training -------------------------------------------------------------------
    def fit(
        self,
        train_data,
        *,
        valid_data=None,
        progress: bool | None = None,
        logging_dir: str | Path | None = None,
        output_dir: str | Path | None = None,
    ) -> TTMForecaster:
        """Train on ``train_data`` with the HuggingFace Trainer (early stopping, best-model reload).

        Validation windows come from ``valid_data`` when given (other series,
        e.g. GlucoBench's validation segments), else from the last
        ``valid_fraction`` of each training series. ``progress`` and
        ``logging_dir`` (TensorBoard, through the Trainer) default to the
        config's; ``output_dir`` keeps the Trainer's epoch checkpoints (a
        temporary directory otherwise; under ``torchrun`` every rank must get
        the same one). ``history`` gets one row per epoch: ``loss`` (training)
        and ``eval_loss`` (validation).
        """
        from transformers import EarlyStoppingCallback, TrainingArguments
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        cfg = self.config
        training = cfg.to_training_config()
        if training.training_mode == "zero_shot":
            raise ValueError(
                "training_mode='zero_shot' does not train: call predict_zero_shot(), "
                "or use training_mode 'fine_tune' / 'from_scratch'"
            )
        if world_size() > 1 and output_dir is None:
            raise ValueError(
                f"a distributed run ({world_size()} processes) needs an output_dir "
                "that every rank shares (the best epoch is reloaded from it)"
            )
        progress = training.progress if progress is None else progress
        logging_dir = training.logging_dir if logging_dir is None else logging_dir
        if (
            self.weights_source.startswith("random")
            and training.training_mode == "fine_tune"
        ):
            log.warning("fine-tuning random weights: this is training from scratch")
        series = self._series(train_data, fit=True)
        context, forecast = cfg.context_length, cfg.forecast_length
        check_lengths(series, context + forecast, "training")
        windows = dict(observed=None, max_gap=cfg.max_gap_steps, need_target=True)
        train_starts, valid_starts = [], []
        for s in series.values():
            windows["observed"] = s.observed[:, 0]
            cut = (
                len(s)
                if valid_data is not None
                else int(round(len(s) * (1 - cfg.valid_fraction)))
            )
            train_starts.append(
                window_starts(
                    len(s),
                    context,
                    forecast,
                    cfg.train_stride,
                    last_target=cut,
                    **windows,
                )
            )
            if valid_data is None:
                valid_starts.append(
                    window_starts(
                        len(s), context, forecast, first_target=cut, **windows
                    )
                )
        valid_series = series
        if valid_data is not None:
            valid_series = self._series(valid_data)
            check_lengths(valid_series, context + forecast, "validation")
            for s in valid_series.values():
                windows["observed"] = s.observed[:, 0]
                valid_starts.append(window_starts(len(s), context, forecast, **windows))
        fill = self.preprocessor.fill
        train_set = WindowDataset(
            list(series.values()), train_starts, context, forecast, fill
        )
        valid_set = WindowDataset(
            list(valid_series.values()), valid_starts, context, forecast, fill
        )
        if len(train_set) == 0 or len(valid_set) == 0:
            raise ValueError(
                f"no complete training ({len(train_set)}) or validation "
                f"({len(valid_set)}) window: each patient needs more "
                "than (context + forecast) / valid_fraction steps with readings"
            )
        # TTM computes its loss itself, over the observed targets
        self.model.loss = self.model.config.loss = training.loss_function
        if training.freeze_backbone:
            for p in self.model.backbone.parameters():
                p.requires_grad = False
        distributed = dict(self.distributed_config)
        if world_size() > 1 and self.device == "cpu":
            distributed.setdefault("ddp_backend", "gloo")
        with tempfile.TemporaryDirectory() as tmp:
            args = TrainingArguments(
                output_dir=str(output_dir or tmp),
                overwrite_output_dir=True,
                per_device_train_batch_size=training.batch_size,
                per_device_eval_batch_size=4 * training.batch_size,
                learning_rate=training.learning_rate,
                num_train_epochs=training.num_epochs,
                warmup_steps=training.warmup_steps,
                weight_decay=training.weight_decay,
                eval_strategy="epoch",
                save_strategy="epoch",
                logging_strategy="epoch",
                save_total_limit=1,
                load_best_model_at_end=True,
                metric_for_best_model="eval_loss",
                greater_is_better=False,
                label_names=["future_values"],
                prediction_loss_only=True,
                report_to=["tensorboard"] if logging_dir else "none",
                # without logs the Trainer still names a folder (runs/ in the
                # working directory); keep it inside the temporary one
                logging_dir=str(logging_dir)
                if logging_dir
                else str(Path(tmp) / "runs"),
                seed=training.seed,
                data_seed=training.seed,
                dataloader_num_workers=0,
                use_cpu=self.device == "cpu",
                disable_tqdm=True,
                save_safetensors=True,
                **distributed,
            )
            # the Trainer seeds the global generators when built and
            # when training starts (and checkpoint rotation warns
            # about mtimes on NFS and in containers: harmless)
            with (
                seeded(training.seed, self.device),
                quiet(warnings_=[(UserWarning, "mtime may not be reliable")]),
            ):
                trainer = _trainer_class()(
                    model=self.model,
                    args=args,
                    train_dataset=train_set,
                    eval_dataset=valid_set,
                    callbacks=[
                        EarlyStoppingCallback(training.early_stopping_patience),
                        _progress_callback(progress),
                    ],
                )
                trainer.remove_callback(PrinterCallback)
                trainer.remove_callback(ProgressCallback)
                trainer.train()
        self.model = trainer.model.to(self.device).eval()
        # One row per epoch: training loss and validation
        # loss (the Trainer logs them separately).
        epochs: dict[int, dict] = {}
        for entry in trainer.state.log_history:
            if "loss" in entry or "eval_loss" in entry:
                row = epochs.setdefault(int(round(entry["epoch"])), {})
                row.update(
                    {k: float(entry[k]) for k in ("loss", "eval_loss") if k in entry}
                )
        self.history = [{"epoch": epoch, **row} for epoch, row in epochs.items()]
        self.n_windows = {"train": len(train_set), "valid": len(valid_set)}
        return self

    # ----- inference ------------------------------------------------------------------
    @torch.no_grad()
    def _forecast(
        self, dataset: WindowDataset, batch_size: int | None = None
    ) -> np.ndarray:
        """Scaled target forecasts ``[n_windows, forecast_length, n_targets]``.

        Batches are cut by hand: a DataLoader draws a seed from torch's global
        generator every time it is iterated, even without shuffling.
        """
        self.model.eval()
        size, n = batch_size or 4 * self.config.batch_size, len(dataset)
        out = []
        for first in range(0, n, size):
            batch = torch.utils.data.default_collate(
                [dataset[k] for k in range(first, min(first + size, n))]
            )
            past = batch["past_values"].to(self.device)
            mask = batch["past_observed_mask"].to(self.device)
            pred = self.model(
                past_values=past, past_observed_mask=mask, return_loss=False
            ).prediction_outputs
            out.append(
                pred[:, : self.config.forecast_length, : self.preprocessor.n_targets]
                .cpu()
                .numpy()
            )
        return self._finite(
            np.concatenate(out)
            if out
            else np.zeros((0, self.config.forecast_length, self.preprocessor.n_targets))
        )

    def prediction_windows(self, data, stride: int = 1, full_future: bool = False):
        """The scaled series of ``data`` and, per series, the starts of the windows to forecast from.

        A window needs a full context with a reading in it (and no longer gap
        than ``max_gap_steps``); ``full_future=True`` also needs its whole
        horizon inside the data.
        """
        series = self._series(data)
        cfg = self.config
        check_lengths(series, cfg.context_length, "a forecast (needs one full context)")
        starts = [
            window_starts(
                len(s),
                cfg.context_length,
                cfg.forecast_length,
                stride,
                full_future=full_future,
                observed=s.observed[:, 0],
                max_gap=cfg.max_gap_steps,
            )
            for s in series.values()
        ]
        return series, starts

    def predict(
        self,
        data,
        stride: int = 1,
        full_future: bool = False,
        batch_size: int | None = None,
    ) -> pd.DataFrame:
        """Forecasts from every origin of ``data`` with a full context (every ``stride`` steps).

        Returns the long table described in :class:`~.base.BaseTSFM`. Forecasts
        that run past the end of the data have NaN observed values;
        ``full_future=True`` keeps only origins whose whole horizon is in the
        data. ``batch_size``: windows per forward pass (default 4 x the
        config's). Each context's gaps are filled from that context alone.
        """
        if not self.preprocessor.fitted:
            raise RuntimeError(
                "TTMForecaster is not fitted: call fit() first, or predict_zero_shot()"
            )
        if batch_size is not None and (
            not isinstance(batch_size, (int, np.integer)) or batch_size < 1
        ):
            raise ValueError(
                f"batch_size must be a positive integer; got {batch_size!r}"
            )
        series, starts = self.prediction_windows(data, stride, full_future)
        cfg = self.config
        dataset = WindowDataset(
            list(series.values()),
            starts,
            cfg.context_length,
            cfg.forecast_length,
            self.preprocessor.fill,
        )
        scaled = self._forecast(dataset, batch_size)
        return self.forecast_table(series, starts, scaled)

    def forecast_table(self, series, starts, scaled: np.ndarray) -> pd.DataFrame:
        """Scaled forecasts ``[n, forecast_length, n_targets]`` of the windows ``starts`` as the long table."""
        cfg = self.config
        glucose_mM = self.preprocessor.unscale_target(scaled)[..., 0]
        return forecast_frame(
            list(series.values()),
            starts,
            glucose_mM,
            self.preprocessor.observed_target(series),
            cfg.context_length,
            cfg.resolution_min,
            cfg.target_features[0],
        )

    def predict_zero_shot(
        self,
        data,
        stride: int = 1,
        full_future: bool = False,
        batch_size: int | None = None,
    ) -> pd.DataFrame:
        """Forecast with the weights as they are, without training.

        If nothing fitted the scaler yet (a hub model), it is fitted on
        ``data`` itself: TTM standardises every context window on its own, so
        a global affine scaler cancels out and this uses no future value.
        With ``imputation_strategy="ttt_imputer"`` the imputer would then be
        trained on ``data``'s own readings (a warning says so): fit on training
        data, or start from a saved forecaster, to keep it apart.
        """
        if not self.preprocessor.fitted:
            if self.preprocessor.config.imputation_strategy == "ttt_imputer":
                log.warning(
                    "imputation_strategy='ttt_imputer' with an "
                    "unfitted preprocessor: training the TTT imputer "
                    "on the data to forecast (its observed readings)"
                )
            self.preprocessor.fit(*self.preprocessor.prepare(data))
        if self.weights_source.startswith("random"):
            log.warning(
                "zero-shot forecasts from random weights (%s)", self.weights_source
            )
        return self.predict(data, stride, full_future, batch_size)

    # ----- checkpoint -----------------------------------------------------------------
    # weights, TTM's own config (to rebuild the network), where the weights came from
    def _tensors(self) -> dict[str, torch.Tensor]:
        return dict(self.model.state_dict())

    def _load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(tensors)

    def _state(self) -> dict:
        return {
            **super()._state(),
            "weights_source": self.weights_source,
            "n_windows": self.n_windows,
            "network": self.model.config.to_dict(),
        }

    def _restore(self, state: dict) -> None:
        super()._restore(state)
        self.weights_source, self.n_windows = (
            state["weights_source"],
            dict(state["n_windows"]),
        )

    @classmethod
    def _build(cls, config: TTMConfig, state: dict, device: str) -> TTMForecaster:
        """The network of the checkpoint's recorded architecture, not the one ``model_path`` would give."""
        network = state.get("network")
        if not isinstance(network, dict):
            raise ValueError("state.json lacks the 'network' entry of a TTMForecaster")
        if network.get("context_length") != config.context_length:
            raise ValueError(
                f"state.json's network reads a context of {network.get('context_length')} "
                f"steps but config.json says context_length={config.context_length}"
            )
        forecaster = cls.__new__(cls)
        BaseTSFM.__init__(forecaster, config, device)
        forecaster.quality = None
        forecaster.distributed_config = {}
        # its weights are overwritten next; no trace on the caller's generators
        with seeded(config.seed, device):
            forecaster.model = network_from_state(network).to(device).eval()
        return forecaster

"""The configuration layer: one dataclass per concern, each with a JSON round-trip.

``ModelConfig`` holds what every forecaster needs; ``TTMConfig`` adds the
TinyTimeMixer specifics and splits itself into a ``TTMTrainingConfig`` (for the
HuggingFace ``Trainer``) and a ``TTMDataConfig`` (for the input pipeline).
Fields are checked with the shared validators of :mod:`tsgen.config`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..config import (
    JSONConfig,
    boolean,
    choice,
    non_negative,
    non_negative_int,
    positive,
    positive_int,
    probability,
)

TTM_R2_HUB_ID = "ibm-granite/granite-timeseries-ttm-r2"
# tsfm_public's TimeSeriesPreprocessor offers exactly
# these two scalers (there is no robust one).
SCALERS = ("standard", "minmax")
# "ttt_imputer": a TTTImputer (tsgen.imputation) learned
# from the training patients when the preprocessor is fitted
IMPUTATIONS = ("mean", "median", "forward_fill", "linear", "ttt_imputer")
# The TTT imputer's default size and budget: small enough to train in seconds on a CPU
TTT_IMPUTER_DEFAULTS = {
    "d_model": 32,
    "n_layers": 1,
    "n_heads": 2,
    "d_ffn": 64,
    "mini_batch_size": 8,
    "epochs": 30,
    "patience": 10,
    "batch_size": 32,
    "lr": 3e-3,
}
TRAINING_MODES = ("zero_shot", "fine_tune", "from_scratch")
# the losses TinyTimeMixerForPrediction computes itself (over observed targets)
LOSSES = ("mse", "mae", "huber")
# model_path values that ask for the TTM-r2 architecture with random weights
RANDOM_WEIGHTS = (None, "random")
DECODER_MODES = ("common_channel", "mix_channel")


def _device(obj) -> None:
    """``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; checked, not resolved (a config may name a GPU
    that only the machine it runs on has). ``"cpu:0"`` is the device check's virtual
    accelerator (:func:`tsgen.runtime.resolve_device`)."""
    if not isinstance(obj.device, str) or not re.fullmatch(
        r"auto|cpu(:0)?|cuda(:\d+)?", obj.device
    ):
        raise ValueError(
            f"{type(obj).__name__}.device must be 'auto', "
            f"'cpu', 'cuda' or 'cuda:N'; got {obj.device!r}"
        )


def _optional_str(obj, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value is not None and not isinstance(value, str):
            raise ValueError(
                f"{type(obj).__name__}.{name} must be a string or None; got {value!r}"
            )


def _optional_non_negative_int(obj, *names: str) -> None:
    for name in names:
        if getattr(obj, name) is not None:
            non_negative_int(obj, name)


def ttt_imputer_settings(params: dict) -> dict:
    """``params`` over :data:`TTT_IMPUTER_DEFAULTS`; the default patience never exceeds the epochs asked for."""
    settings = {**TTT_IMPUTER_DEFAULTS, **params}
    if "patience" not in params:
        settings["patience"] = min(settings["patience"], settings["epochs"])
    return settings


def _imputation(obj) -> None:
    """Validate ``imputation_strategy``, ``imputation_window`` and ``imputer_params`` together."""
    choice(obj, "imputation_strategy", IMPUTATIONS)
    positive_int(obj, "imputation_window", minimum=2)
    if not isinstance(obj.imputer_params, dict):
        raise ValueError(
            f"{type(obj).__name__}.imputer_params must be a dict of "
            f"TTTImputerConfig settings; got {type(obj.imputer_params).__name__}"
        )
    fixed = sorted({"n_steps", "n_features"} & set(obj.imputer_params))
    if fixed:
        raise ValueError(
            f"imputer_params may not set {fixed}: "
            "imputation_window and the channels fix them"
        )
    if obj.imputation_strategy == "ttt_imputer" or obj.imputer_params:
        # imported here: it pulls in PyPOTS
        from tsgen.imputation import TTTImputerConfig

        # unknown names and bad values fail now, not when the preprocessor is fitted
        TTTImputerConfig.from_dict(
            {
                **ttt_imputer_settings(obj.imputer_params),
                "n_steps": obj.imputation_window,
                "n_features": 1,
            }
        )


@dataclass
class ModelConfig(JSONConfig):
    """What every forecaster needs: optimisation, window lengths (in steps), seed and device."""

    batch_size: int = 64
    learning_rate: float = 1e-3
    num_epochs: int = 10
    context_length: int = 512
    forecast_length: int = 96
    seed: int = 0
    device: str = "auto"

    def __post_init__(self):
        positive_int(self, "batch_size", "context_length", "forecast_length")
        # a zero-shot model never trains: 0 epochs is what it means
        zero_shot = getattr(self, "training_mode", None) == "zero_shot"
        positive_int(self, "num_epochs", minimum=0 if zero_shot else 1)
        positive(self, "learning_rate")
        non_negative_int(self, "seed")
        _device(self)


@dataclass
class TTMTrainingConfig(JSONConfig):
    """The optimisation part of a TTM run, as the HuggingFace Trainer needs it."""

    training_mode: str = "fine_tune"
    learning_rate: float = 1e-3
    num_epochs: int = 10
    batch_size: int = 64
    warmup_steps: int = 0
    weight_decay: float = 0.0
    early_stopping_patience: int = 3
    freeze_backbone: bool = False
    logging_dir: str | None = None
    seed: int = 0
    device: str = "auto"
    progress: bool = False
    loss_function: str = "mse"

    def __post_init__(self):
        choice(self, "training_mode", TRAINING_MODES)
        choice(self, "loss_function", LOSSES)
        positive(self, "learning_rate")
        positive_int(self, "batch_size", "early_stopping_patience")
        positive_int(
            self, "num_epochs", minimum=0 if self.training_mode == "zero_shot" else 1
        )
        non_negative_int(self, "warmup_steps", "seed")
        non_negative(self, "weight_decay")
        boolean(self, "freeze_backbone", "progress")
        _optional_str(self, "logging_dir")
        _device(self)


@dataclass
class TTMDataConfig(JSONConfig):
    """The input pipeline of a TTM run: columns, window lengths, resolution, scaling, gaps, splits."""

    target_features: list = field(default_factory=lambda: ["bg_mM"])
    input_features: list = field(default_factory=list)
    id_column: str = "p_num"
    time_column: str = "datetime"
    context_length: int = 512
    forecast_length: int = 96
    resolution_min: int = 5
    scaler_type: str = "standard"
    imputation_strategy: str = "linear"
    imputation_window: int = 48
    imputer_params: dict = field(default_factory=dict)
    split_config: dict = field(default_factory=lambda: {"train": 0.8, "valid": 0.2})
    num_input_channels: int = 1
    max_gap_steps: int | None = None

    def __post_init__(self):
        _optional_non_negative_int(self, "max_gap_steps")
        positive_int(
            self,
            "context_length",
            "forecast_length",
            "resolution_min",
            "num_input_channels",
        )
        choice(self, "scaler_type", SCALERS)
        _imputation(self)
        if not isinstance(self.split_config, dict) or set(self.split_config) != {
            "train",
            "valid",
        }:
            raise ValueError(
                "TTMDataConfig.split_config must be a dict with "
                "keys 'train' and 'valid' (tsfm_public's 'val' "
                f"would be ignored); got {self.split_config!r}"
            )


@dataclass
class TTMConfig(ModelConfig):
    """A TinyTimeMixer forecaster.

    ``model_path`` is a HuggingFace hub id, a local directory with a TTM
    checkpoint (HuggingFace's, or one written by ``TTMForecaster.save``), or
    ``"random"`` (or None) for the TTM-r2 architecture with random weights.
    Weights that cannot be loaded are an error, never a silent fallback to
    random ones. With a hub id or a HuggingFace directory, ``get_model``
    receives ``freq_prefix_tuning`` and ``freq`` (the resolution prefix; None:
    ``resolution_min`` as ``"<n>min"``). Lengths are in steps of
    ``resolution_min`` minutes. ``input_features`` are covariates fed as extra
    channels; ``target_features`` are forecast (the first is the glucose that
    predictions report). ``valid_fraction`` of each patient's training span
    (its end) is held out for early stopping.

    ``imputation_strategy`` fills the gaps inside each context window from that
    window's own readings (never a later one): ``"linear"``,
    ``"forward_fill"``, ``"mean"`` and ``"median"``;
    ``"ttt_imputer"`` with a :class:`tsgen.imputation.TTTImputer`
    trained when the forecaster is fitted, on windows of ``imputation_window``
    steps of the training patients (``imputer_params``: its settings, over
    ``TTT_IMPUTER_DEFAULTS``; its seed defaults to ``seed``). TTM's backbone
    treats channels independently; ``decoder_mode="mix_channel"`` lets its
    decoder mix the covariates into the glucose forecast (new decoder weights:
    train them). ``logging_dir`` (TensorBoard) and ``progress`` are what ``fit``
    uses unless told otherwise. ``loss_function`` ("mse", "mae", "huber") is
    TTM's training loss, over observed targets only. ``max_gap_steps`` leaves
    out windows whose context has a longer run of missing steps (None: no
    limit); ``train_stride`` takes every k-th training window.
    """

    model_path: str | None = TTM_R2_HUB_ID
    input_features: list = field(default_factory=list)
    target_features: list = field(default_factory=lambda: ["bg_mM"])
    id_column: str = "p_num"
    time_column: str = "datetime"
    scaler_type: str = "standard"
    imputation_strategy: str = "linear"
    imputation_window: int = 48
    imputer_params: dict = field(default_factory=dict)
    logging_dir: str | None = None
    num_input_channels: int | None = None
    resolution_min: int = 5
    training_mode: str = "fine_tune"
    freeze_backbone: bool = False
    decoder_mode: str = "common_channel"
    warmup_steps: int = 0
    weight_decay: float = 0.0
    early_stopping_patience: int = 3
    valid_fraction: float = 0.2
    progress: bool = False
    loss_function: str = "mse"
    freq_prefix_tuning: bool = False
    freq: str | None = None
    max_gap_steps: int | None = None
    train_stride: int = 1

    def __post_init__(self):
        super().__post_init__()
        _optional_str(self, "model_path", "logging_dir", "freq")
        choice(self, "loss_function", LOSSES)
        boolean(self, "freq_prefix_tuning")
        _optional_non_negative_int(self, "max_gap_steps")
        positive_int(self, "train_stride")
        choice(self, "scaler_type", SCALERS)
        _imputation(self)
        choice(self, "training_mode", TRAINING_MODES)
        choice(self, "decoder_mode", DECODER_MODES)
        positive_int(self, "resolution_min", "early_stopping_patience")
        non_negative_int(self, "warmup_steps")
        non_negative(self, "weight_decay")
        probability(self, "valid_fraction")
        boolean(self, "freeze_backbone", "progress")
        if not self.target_features:
            raise ValueError(
                "TTMConfig.target_features is empty: name the column(s) to forecast"
            )
        overlap = set(self.target_features) & set(self.input_features)
        if overlap:
            raise ValueError(
                f"column(s) {sorted(overlap)} are both targets and input features"
            )
        self.input_features = list(self.input_features)
        self.target_features = list(self.target_features)
        channels = len(self.target_features) + len(self.input_features)
        if self.num_input_channels is None:
            self.num_input_channels = channels
        elif self.num_input_channels != channels:
            raise ValueError(
                f"num_input_channels={self.num_input_channels} "
                f"but there are {channels} target + input features"
            )

    def to_training_config(self) -> TTMTrainingConfig:
        return TTMTrainingConfig(
            training_mode=self.training_mode,
            learning_rate=self.learning_rate,
            num_epochs=self.num_epochs,
            batch_size=self.batch_size,
            warmup_steps=self.warmup_steps,
            weight_decay=self.weight_decay,
            early_stopping_patience=self.early_stopping_patience,
            freeze_backbone=self.freeze_backbone,
            logging_dir=self.logging_dir,
            seed=self.seed,
            device=self.device,
            progress=self.progress,
            loss_function=self.loss_function,
        )

    @property
    def random_weights(self) -> bool:
        """Whether ``model_path`` asks for random weights (``"random"`` or None)."""
        return self.model_path in RANDOM_WEIGHTS

    @property
    def resolution(self) -> str:
        """The resolution prefix's frequency: ``freq``, or ``resolution_min`` as ``"<n>min"``."""
        return self.freq or f"{self.resolution_min}min"

    def to_data_config(self) -> TTMDataConfig:
        return TTMDataConfig(
            target_features=list(self.target_features),
            input_features=list(self.input_features),
            id_column=self.id_column,
            time_column=self.time_column,
            context_length=self.context_length,
            forecast_length=self.forecast_length,
            resolution_min=self.resolution_min,
            scaler_type=self.scaler_type,
            imputation_strategy=self.imputation_strategy,
            imputation_window=self.imputation_window,
            # the imputer follows the run's seed unless told
            # otherwise (only "ttt_imputer" has an imputer to seed)
            imputer_params={"seed": self.seed, **self.imputer_params}
            if self.imputation_strategy == "ttt_imputer"
            else dict(self.imputer_params),
            split_config={
                "train": round(1 - self.valid_fraction, 6),
                "valid": self.valid_fraction,
            },
            num_input_channels=self.num_input_channels,
            max_gap_steps=self.max_gap_steps,
        )


def create_default_ttm_config(**overrides) -> TTMConfig:
    """The original module's setting: public TTM-r2 weights, context 512, forecast 96, fine-tuning at 1e-3."""
    return TTMConfig(**overrides)


def create_ttm_fine_tuning_config(**overrides) -> TTMConfig:
    """Gentle fine-tuning of pretrained weights: learning rate 1e-5, 5 epochs, 500 warm-up steps."""
    values = {
        "training_mode": "fine_tune",
        "learning_rate": 1e-5,
        "num_epochs": 5,
        "warmup_steps": 500,
    }
    return TTMConfig(**{**values, **overrides})


def create_ttm_zero_shot_config(**overrides) -> TTMConfig:
    """Pretrained weights used as they are: no training (``fit`` refuses to train; ``num_epochs=0``,
    as the seed wrote it, is accepted in zero-shot mode)."""
    return TTMConfig(**{"training_mode": "zero_shot", **overrides})

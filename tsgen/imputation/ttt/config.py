"""The configuration of :class:`~tsgen.imputation.ttt.model.TTTImputer`: a dataclass with a JSON round-trip."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...config import JSONConfig
from ...adaptation import OptimizationParameters
from ..layers import LAYER_TYPES


@dataclass
class TTTImputerConfig(JSONConfig):
    """Everything that defines a TTT imputer and its training.

    Architecture: ``n_steps`` × ``n_features`` windows, ``n_layers`` TTT blocks of
    width ``d_model`` with ``n_heads`` heads, ``layer_type`` ``"linear"`` (TTT-Linear)
    or ``"mlp"`` (TTT-MLP), inner mini-batch ``mini_batch_size``, inner learning-rate
    scale ``inner_lr``, ``bidirectional`` (a forward and a time-reversed pass),
    feed-forward width ``d_ffn``, ``dropout``.

    Training (SAITS's recipe): loss ``ORT_weight · ORT + MIT_weight · MIT`` (MAE),
    ``mit_rate`` of the observed training entries hidden per batch for MIT, Adam
    with ``lr``, ``batch_size``, at most ``epochs`` epochs, early stopping after
    ``patience`` epochs without a better validation MSE (``None``: no early stop).

    Test-time adaptation: ``adaptation`` holds the engine's optimisation
    parameters (``optimizer``, ``lr``, ``num_steps``, ``parameters``: ``"all"``,
    ``"norm"`` or a submodule such as ``"encoder"``); ``num_steps = 0`` switches it
    off. ``adapt_mask_ratio`` of the observed test entries are hidden for the
    self-supervised loss. ``seed`` seeds initialisation, batching and MIT masks.
    """

    n_steps: int
    n_features: int
    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    layer_type: str = "linear"
    mini_batch_size: int = 8
    inner_lr: float = 1.0
    bidirectional: bool = True
    d_ffn: int = 128
    dropout: float = 0.0
    ORT_weight: float = 1.0
    MIT_weight: float = 1.0
    mit_rate: float = 0.2
    batch_size: int = 32
    epochs: int = 100
    patience: int | None = 10
    lr: float = 1e-3
    adaptation: dict = field(default_factory=lambda: {"num_steps": 0})
    adapt_mask_ratio: float = 0.2
    seed: int = 0

    def __post_init__(self):
        for name in ("n_steps", "n_features", "n_layers", "d_model", "n_heads", "mini_batch_size", "d_ffn",
                     "batch_size", "epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
            setattr(self, name, int(value))
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        if self.layer_type not in LAYER_TYPES:
            raise ValueError(f"layer_type must be one of {LAYER_TYPES}; got {self.layer_type!r}")
        if self.patience is not None and not 1 <= self.patience <= self.epochs:
            raise ValueError(f"patience must be None or in [1, epochs={self.epochs}]; got {self.patience!r}")
        for name in ("mit_rate", "adapt_mask_ratio"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in (0, 1); got {getattr(self, name)!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {self.dropout!r}")
        if self.ORT_weight < 0 or self.MIT_weight < 0 or self.ORT_weight + self.MIT_weight == 0:
            raise ValueError("ORT_weight and MIT_weight must be non-negative and not both 0")
        if not (self.lr > 0 and self.inner_lr > 0):
            raise ValueError("lr and inner_lr must be positive")
        # validate (and normalise) the adaptation settings now, not at the first predict
        self.adaptation = OptimizationParameters.coerce(self.adaptation).to_dict()

"""The configuration of :class:`~tsgen.imputation.ttt.model.TTTImputer`: a dataclass with a JSON round-trip."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...adaptation import OptimizationParameters, available_engines
from ...config import (
    JSONConfig,
    boolean,
    choice,
    non_negative,
    non_negative_int,
    positive,
    positive_int,
    probability,
)
from ..layers import INNER_LR_SCALINGS, LAYER_TYPES

# the error each term of the ORT + MIT loss averages over its entries
TRAINING_LOSSES = ("mae", "mse")


@dataclass
class TTTImputerConfig(JSONConfig):
    """Everything that defines a TTT imputer and its training.

    Architecture: ``n_steps`` × ``n_features`` windows, ``n_layers`` TTT blocks of
    width ``d_model`` with ``n_heads`` heads, ``layer_type`` ``"linear"`` (TTT-Linear)
    or ``"mlp"`` (TTT-MLP), inner mini-batch ``mini_batch_size``, inner learning-rate
    scale ``inner_lr``, its scaling over a mini-batch ``inner_lr_scaling``
    (``"constant"``, tsgen's default, or ``"inverse_position"``: the TTT paper's
    ``1/t``; see :mod:`tsgen.imputation.layers`), ``bidirectional`` (a forward
    and a time-reversed pass),
    feed-forward width ``d_ffn``, ``dropout``.

    Training (SAITS's recipe): loss ``ORT_weight · ORT + MIT_weight · MIT``, each
    term the ``training_loss`` over its entries: ``"mae"`` (SAITS's and PyPOTS's,
    the default) or ``"mse"`` (the naive TTT imputer this one was refactored
    from, the seed, trained on squared errors; a departure from SAITS kept as an
    option); ``mit_rate`` of the observed training entries hidden per batch for MIT, Adam
    with ``lr``, ``batch_size``, at most ``epochs`` epochs, early stopping after
    ``patience`` epochs without a better validation MSE (``None``: no early stop;
    without a validation set there is none either).

    Test-time adaptation: ``adaptation_engine`` is the name of any registered
    engine (:func:`tsgen.adaptation.available_engines`), built around the model
    core with ``engine_options`` (its own keyword arguments, e.g.
    ``{"mask_ratio": 0.2}``) and, for engines that hook a features layer (IT³,
    masked reconstruction), the core's layer ``engine_layer``.
    ``engine_weight > 0`` adds ``engine_weight`` × the engine's self-supervised
    loss to the SAITS loss in training, so the heads of an engine that has
    some learn beside the imputer (torch-ttt's joint training); ``0`` leaves
    training as SAITS's. ``adaptation`` holds the optimisation parameters at
    inference (``optimizer``, ``lr``, ``num_steps``, ``parameters``: ``"all"``,
    ``"norm"`` or a submodule of the core such as ``"encoder"``);
    ``num_steps = 0`` switches adaptation off. ``seed`` seeds initialisation,
    batching, MIT masks and the engine's masks.
    """

    n_steps: int
    n_features: int
    n_layers: int = 2
    d_model: int = 64
    n_heads: int = 4
    layer_type: str = "linear"
    mini_batch_size: int = 8
    inner_lr: float = 1.0
    inner_lr_scaling: str = "constant"
    bidirectional: bool = True
    d_ffn: int = 128
    dropout: float = 0.0
    ORT_weight: float = 1.0
    MIT_weight: float = 1.0
    training_loss: str = "mae"
    mit_rate: float = 0.2
    batch_size: int = 32
    epochs: int = 100
    patience: int | None = 10
    lr: float = 1e-3
    adaptation_engine: str = "self_reconstruction"
    engine_options: dict = field(default_factory=dict)
    engine_layer: str = "encoder"
    engine_weight: float = 0.0
    adaptation: dict = field(default_factory=lambda: {"num_steps": 0})
    seed: int = 0

    def __post_init__(self):
        positive_int(
            self,
            "n_steps",
            "n_features",
            "n_layers",
            "d_model",
            "n_heads",
            "mini_batch_size",
            "d_ffn",
            "batch_size",
            "epochs",
        )
        non_negative_int(self, "seed")
        boolean(self, "bidirectional")
        choice(self, "layer_type", LAYER_TYPES)
        choice(self, "training_loss", TRAINING_LOSSES)
        choice(self, "inner_lr_scaling", INNER_LR_SCALINGS)
        if self.d_model % self.n_heads:
            raise ValueError(
                f"TTTImputerConfig.d_model ({self.d_model}) "
                f"must be a multiple of n_heads ({self.n_heads})"
            )
        if self.patience is not None:
            positive_int(self, "patience")
            if self.patience > self.epochs:
                raise ValueError(
                    "TTTImputerConfig.patience must be None or at "
                    f"most epochs={self.epochs}; got {self.patience}"
                )
        probability(self, "mit_rate")
        probability(self, "dropout", low_open=False)
        positive(self, "lr", "inner_lr")
        non_negative(self, "ORT_weight", "MIT_weight", "engine_weight")
        if self.ORT_weight + self.MIT_weight == 0:
            raise ValueError(
                "TTTImputerConfig: ORT_weight and MIT_weight "
                "are both 0; nothing would be trained"
            )
        choice(self, "adaptation_engine", available_engines(aliases=True))
        if not isinstance(self.engine_options, dict):
            raise ValueError(
                "TTTImputerConfig.engine_options must be a dict of the "
                f"engine's keyword arguments; got {self.engine_options!r}"
            )
        if not isinstance(self.engine_layer, str) or not self.engine_layer:
            raise ValueError(
                "TTTImputerConfig.engine_layer must name a "
                f"layer of the core; got {self.engine_layer!r}"
            )
        # validate (and normalise) the adaptation settings now, not at the first predict
        self.adaptation = OptimizationParameters.coerce(self.adaptation).to_dict()

"""``TTTForecasterConfig``: everything that defines a trained :class:`~tsgen.adaptation.model.TTTForecaster`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..config import JSONConfig, non_negative, non_negative_int, positive, positive_int
from .base import OptimizationParameters
from .registry import get_engine


@dataclass
class TTTForecasterConfig(JSONConfig):
    """A window forecaster (:class:`~tsgen.adaptation.core.MLPForecaster`) trained with an engine.

    ``engine`` is any registered engine name (``None`` trains the plain model);
    ``engine_options`` are that engine's own keyword arguments (e.g.
    ``{"mask_ratio": 0.25}`` for ``"masked"``, ``{"tail_length": 3}`` for
    ``"tail_forecast"``; empty = the engine's defaults). ``adaptation`` holds the
    :class:`~tsgen.adaptation.base.OptimizationParameters` used at inference.
    ``seed`` sets the initial weights, the batch order and the engine's masks.
    """

    context_length: int = 24  # input window
    horizon: int = 6  # forecast steps
    n_features: int = 5
    hidden: int = 64
    engine: str | None = "it3"  # a registered engine name, or None
    engine_options: dict = field(default_factory=dict)
    alpha: float = 1.0  # weight of loss_ttt beside the task loss
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    adaptation: dict = field(default_factory=lambda: OptimizationParameters().to_dict())
    seed: int = 0

    def __post_init__(self):
        positive_int(
            self,
            "context_length",
            "horizon",
            "n_features",
            "hidden",
            "epochs",
            "batch_size",
        )
        non_negative_int(self, "seed")
        non_negative(self, "alpha")
        positive(self, "lr")
        if self.engine is not None:
            get_engine(self.engine)  # unknown names fail here, listing the known ones
        elif self.engine_options:
            raise ValueError(
                f"TTTForecasterConfig.engine_options={self.engine_options!r} "
                "but engine=None"
            )
        if not isinstance(self.engine_options, dict) or not all(
            isinstance(k, str) for k in self.engine_options
        ):
            raise ValueError(
                "TTTForecasterConfig.engine_options must be a dict "
                f"of keyword arguments; got {self.engine_options!r}"
            )
        try:
            json.dumps(self.engine_options, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise ValueError(
                "TTTForecasterConfig.engine_options must be JSON "
                f"values (they are saved with the model): {err}"
            ) from None
        self.adaptation = OptimizationParameters.coerce(self.adaptation).to_dict()

"""The model core of the TTT imputer: SAITS embedding → TTT blocks → projection, with the SAITS loss.

The same shape as PyPOTS's ``_Transformer`` core, with the attention encoder
replaced by test-time-training blocks, so both run through one training loop.
"""

from __future__ import annotations

from pypots.nn.modules import ModelCore
from pypots.nn.modules.loss import Criterion
from pypots.nn.modules.saits import SaitsEmbedding, SaitsLoss
from torch import nn

from ..layers import TTTEncoder
from .config import TTTImputerConfig


class _TTTImputer(ModelCore):
    """``forward(inputs, calc_criterion)`` → ``{"imputation", "reconstruction"[, losses or metric]}``."""

    def __init__(
        self,
        config: TTTImputerConfig,
        training_loss: Criterion,
        validation_metric: Criterion,
    ):
        super().__init__()
        c = config
        # SAITS's embedding: [X, missing_mask] → d_model, plus sinusoidal positions
        self.saits_embedding = SaitsEmbedding(
            2 * c.n_features,
            c.d_model,
            with_pos=True,
            n_max_steps=c.n_steps,
            dropout=c.dropout,
        )
        self.encoder = TTTEncoder(
            c.n_layers,
            c.d_model,
            c.d_ffn,
            n_heads=c.n_heads,
            layer_type=c.layer_type,
            mini_batch_size=c.mini_batch_size,
            base_lr=c.inner_lr,
            inner_lr_scaling=c.inner_lr_scaling,
            bidirectional=c.bidirectional,
            dropout=c.dropout,
        )
        self.output_projection = nn.Linear(c.d_model, c.n_features)
        self.training_loss = SaitsLoss(c.ORT_weight, c.MIT_weight, training_loss)
        self.validation_metric = validation_metric

    def forward(self, inputs: dict, calc_criterion: bool = False) -> dict:
        X, missing_mask = inputs["X"], inputs["missing_mask"]
        reconstruction = self.output_projection(
            self.encoder(self.saits_embedding(X, missing_mask))
        )
        # observed values are kept as they are; only the gaps take the reconstruction
        results = {
            "imputation": missing_mask * X + (1 - missing_mask) * reconstruction,
            "reconstruction": reconstruction,
        }
        if calc_criterion:
            X_ori, indicating_mask = inputs["X_ori"], inputs["indicating_mask"]
            if self.training:
                loss, ort, mit = self.training_loss(
                    reconstruction, X_ori, missing_mask, indicating_mask
                )
                results.update(loss=loss, ORT_loss=ort, MIT_loss=mit)
            else:
                results["metric"] = self.validation_metric(
                    reconstruction, X_ori, indicating_mask
                )
        return results

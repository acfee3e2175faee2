"""Everything that defines an ImagenI2R generator, as one JSON-friendly dataclass."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from ..config import (
    JSONConfig,
    boolean,
    choice,
    finite,
    non_negative,
    non_negative_int,
    positive,
    positive_int,
    probability,
)

# (delay, embedding) of the delay embedding for each sequence length: images of
# 8x8, 16x16 and 64x64 pixels (the released code used (24, 32) for 768).
DELAY_EMBEDDINGS = {24: (3, 8), 96: (6, 16), 768: (12, 64)}

COMPLETIONS = ("tst", "zero", "linear")
NORMS = ("BatchNorm", "LayerNorm")
ACTIVATIONS = ("relu", "gelu")
POSITIONAL = ("fixed", "learnable")
# what the diffusion model learns: the completed series (observed values kept,
# gaps from the completer) or the completer's reconstruction everywhere
DIFFUSION_TARGETS = ("completed", "reconstruction")
# the completer's phase-1 loss on observed entries: MSE or 10 * sqrt(MSE)
TST_LOSSES = ("mse", "scaled_rmse")

# Where tsgen departs from the released ImagenI2R code, the released code's choice
# (GenerationConfig.build(..., released=True) applies them all; chapter 8 ablates
# each one). Not reproduced: the released code's ADM U-Net (DhariwalUNet); tsgen
# uses diffusers' UNet2DModel at the same widths.
RELEASED_CODE = {
    "diffusion_target": "reconstruction",
    "tst_pretrain_loss": "scaled_rmse",
    "ema_warmup": False,
    "ema_copy_steps": 100,
    "tst_output_layer": True,
}


@dataclass
class GenerationConfig(JSONConfig):
    """An ImagenI2R generator: TST completion, delay embedding, masked EDM diffusion.

    The defaults are a small CPU configuration; :meth:`paper` gives the published
    one (Fadlon et al. 2025; the released configs for lengths 24 / 96 / 768).
    """

    length: int = 24  # time steps per window
    n_features: int = 1  # channels of the series (= image channels)
    delay: int = 3  # time steps between image columns
    embedding: int = 8  # time steps per image column (image rows)
    # what fills missing values before diffusion: tst, zero, linear
    completion: str = "tst"
    masked: bool = True  # noise and loss only on observed pixels (False: every pixel)
    # Time Series Transformer (Zerveas et al. 2021) + bidirectional GRU decoder
    tst_d_model: int = 40
    tst_heads: int = 5
    tst_layers: int = 2
    tst_feedforward: int = 128
    tst_dropout: float = 0.1
    tst_pos_encoding: str = "fixed"
    tst_activation: str = "gelu"
    tst_norm: str = "BatchNorm"
    # the released code's Linear(d_model, d_model) between the encoder and the decoder
    tst_output_layer: bool = False
    tst_pretrain_loss: str = "mse"  # phase 1 (see TST_LOSSES)
    diffusion_target: str = "completed"  # see DIFFUSION_TARGETS
    decoder_layers: int = 3
    # 0: halfway between tst_d_model and n_features, as the reference
    decoder_hidden: int = 0
    # U-Net (diffusers UNet2DModel) and EDM (Karras et al. 2022)
    unet_channels: tuple = (32, 64)
    unet_attention: tuple = (False, True)  # self-attention in each resolution level
    unet_layers_per_block: int = 1
    sigma_data: float = 0.5
    p_mean: float = -1.2
    p_std: float = 1.2
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0
    sampling_steps: int = 18
    s_churn: float = 0.0  # 0: the deterministic Heun sampler
    ema_decay: float = 0.9999
    ema_warmup: bool = True  # decay min(ema_decay, (1 + n) / (10 + n)) after n updates
    ema_copy_steps: int = 0  # the EMA copies the weights for this many first updates
    # training
    # phase 1: TST pre-training (skipped unless completion == "tst")
    tst_epochs: int = 30
    epochs: int = 1000  # phase 2: diffusion, with continued TST refinement
    batch_size: int = 128
    lr: float = 1e-4
    tst_lr: float = 1e-3
    weight_decay: float = 1e-5
    grad_clip: float = 1.0
    seed: int = 0

    def __post_init__(self):
        positive_int(
            self,
            "length",
            "n_features",
            "delay",
            "embedding",
            "tst_d_model",
            "tst_heads",
            "tst_layers",
            "tst_feedforward",
            "decoder_layers",
            "unet_layers_per_block",
            "sampling_steps",
            "batch_size",
        )
        non_negative_int(
            self, "decoder_hidden", "tst_epochs", "epochs", "seed", "ema_copy_steps"
        )
        boolean(self, "masked", "ema_warmup", "tst_output_layer")
        choice(self, "diffusion_target", DIFFUSION_TARGETS)
        choice(self, "tst_pretrain_loss", TST_LOSSES)
        choice(self, "completion", COMPLETIONS)
        choice(self, "tst_norm", NORMS)
        choice(self, "tst_activation", ACTIVATIONS)
        choice(self, "tst_pos_encoding", POSITIONAL)
        probability(self, "tst_dropout", low_open=False)
        probability(self, "ema_decay", low_open=False)
        positive(
            self,
            "sigma_data",
            "p_std",
            "sigma_min",
            "sigma_max",
            "rho",
            "lr",
            "tst_lr",
            "grad_clip",
        )
        non_negative(self, "s_churn", "weight_decay")
        finite(self, "p_mean")
        self.unet_channels, self.unet_attention = (
            tuple(self.unet_channels),
            tuple(self.unet_attention),
        )
        if not self.unet_channels or len(self.unet_channels) != len(
            self.unet_attention
        ):
            raise ValueError(
                "GenerationConfig: unet_channels and unet_attention need one entry per "
                f"resolution level; got {self.unet_channels} and {self.unet_attention}"
            )
        if not all(
            isinstance(c, numbers.Integral) and not isinstance(c, bool) and c > 0
            for c in self.unet_channels
        ):
            raise ValueError(
                "GenerationConfig.unet_channels must be "
                f"positive integers; got {self.unet_channels}"
            )
        self.unet_channels = tuple(int(c) for c in self.unet_channels)
        if not all(isinstance(a, bool) for a in self.unet_attention):
            raise ValueError(
                f"GenerationConfig.unet_attention must be True or False per level; "
                f"got {self.unet_attention}"
            )
        if self.embedding > self.length:
            raise ValueError(
                f"GenerationConfig: embedding ({self.embedding}) "
                f"cannot exceed length ({self.length})"
            )
        if self.delay > self.embedding:
            raise ValueError(
                f"GenerationConfig: delay ({self.delay}) > "
                f"embedding ({self.embedding}) would skip time steps"
            )
        if self.diffusion_target == "reconstruction" and self.completion != "tst":
            raise ValueError(
                "GenerationConfig: diffusion_target 'reconstruction' needs the TST "
                f"completer (completion='tst'); got completion={self.completion!r}"
            )
        if self.tst_d_model % self.tst_heads:
            raise ValueError(
                f"GenerationConfig: tst_d_model ({self.tst_d_model}) "
                f"must be divisible by tst_heads ({self.tst_heads})"
            )
        if self.sigma_min >= self.sigma_max:
            raise ValueError(
                "GenerationConfig: need sigma_min < sigma_max; "
                f"got {self.sigma_min}, {self.sigma_max}"
            )

    @property
    def decoder_width(self) -> int:
        return self.decoder_hidden or max(
            1, self.tst_d_model + (self.n_features - self.tst_d_model) // 2
        )

    @classmethod
    def for_length(cls, length: int, n_features: int, **overrides) -> GenerationConfig:
        """The delay embedding the paper uses for ``length`` (24, 96 or 768), with any overrides."""
        delay, embedding = _preset(length)
        return cls(
            **{
                "length": length,
                "n_features": n_features,
                "delay": delay,
                "embedding": embedding,
                **overrides,
            }
        )

    @classmethod
    def paper(cls, length: int, n_features: int, **overrides) -> GenerationConfig:
        """The published scale: U-Net 128 channels x (1, 2, 2, 2), TST of 6 layers, 1,000 epochs."""
        _preset(length)
        paper = dict(
            tst_layers=6,
            tst_feedforward=2048,
            unet_channels=(128, 256, 256, 256),
            unet_layers_per_block=2,
            tst_epochs=30,
            epochs=1000,
            batch_size=128 if length < 768 else 32,
        )
        # the reference attends at 8, 4 and 2 pixels
        # (length 24), down to 16 for longer series
        paper["unet_attention"] = {
            24: (True, True, True, False),
            96: (True, True, True, True),
            768: (False, False, True, True),
        }[length]
        return cls.for_length(length, n_features, **{**paper, **overrides})

    @classmethod
    def build(
        cls,
        length: int,
        n_features: int,
        paper: bool = False,
        released: bool = False,
        **overrides,
    ) -> GenerationConfig:
        """:meth:`paper` when ``paper`` is true, else :meth:`for_length`; with ``released`` the
        released code's choices (:data:`RELEASED_CODE`) too; ``overrides`` win over both."""
        base = RELEASED_CODE if released else {}
        return (cls.paper if paper else cls.for_length)(
            length, n_features, **{**base, **overrides}
        )


def _preset(length: int) -> tuple[int, int]:
    if length not in DELAY_EMBEDDINGS:
        raise ValueError(
            "no delay embedding preset for length "
            f"{length}; presets: {sorted(DELAY_EMBEDDINGS)}"
        )
    return DELAY_EMBEDDINGS[length]

"""Regular time series generated from irregular ones: ImagenI2R (Fadlon et al., NeurIPS 2025).

A Time Series Transformer completes the missing values
(:mod:`~tsgen.generation.core`), a delay embedding turns each window into a
square image (:mod:`~tsgen.generation.delay`, from ImagenTime), and an EDM
diffusion model (:mod:`~tsgen.generation.edm`, Karras et al. 2022) learns the
images with noise and loss on the observed pixels only.
:class:`ImagenI2R` (:mod:`~tsgen.generation.model`) trains it all and samples
regular windows; :mod:`~tsgen.generation.experiments` holds the chapters'
protocols (the delay-embedding checks, the generation grid, the ablations).
"""

from .config import DELAY_EMBEDDINGS, GenerationConfig
from .core import (
    GRUDecoder,
    TSTCompleter,
    TSTEncoder,
    linear_fill,
    masked_mse,
    propagate_values,
    zero_fill,
)
from .delay import DelayEmbedder, ts_to_img_loop
from .edm import (
    EDMDenoiser,
    edm_loss_weight,
    heun_sampler,
    karras_sigmas,
    make_ema,
    make_unet,
    masked_edm_loss,
    masked_loss,
)
from .experiments import (
    ABLATIONS,
    DATASETS,
    METRICS,
    MetricProtocol,
    benchmark_windows,
    cell_name,
    checkpoint_selection,
    claim_check,
    delay_embedding_table,
    discriminative_floor,
    generation_ablations,
    generation_cell,
    generation_grid,
    generation_scores,
    inverse_comparison,
    irregular_windows,
    phase2_step_seconds,
    profile_comparison,
    round_trip_errors,
    score_columns,
    train_resumably,
    training_plan,
)
from .model import ImagenI2R

__all__ = [
    "ABLATIONS",
    "DATASETS",
    "DELAY_EMBEDDINGS",
    "METRICS",
    "DelayEmbedder",
    "EDMDenoiser",
    "GRUDecoder",
    "GenerationConfig",
    "ImagenI2R",
    "MetricProtocol",
    "TSTCompleter",
    "TSTEncoder",
    "benchmark_windows",
    "delay_embedding_table",
    "edm_loss_weight",
    "cell_name",
    "checkpoint_selection",
    "claim_check",
    "discriminative_floor",
    "generation_ablations",
    "generation_cell",
    "generation_grid",
    "generation_scores",
    "heun_sampler",
    "inverse_comparison",
    "irregular_windows",
    "karras_sigmas",
    "linear_fill",
    "make_ema",
    "make_unet",
    "masked_edm_loss",
    "masked_loss",
    "masked_mse",
    "propagate_values",
    "round_trip_errors",
    "score_columns",
    "phase2_step_seconds",
    "profile_comparison",
    "train_resumably",
    "training_plan",
    "ts_to_img_loop",
    "zero_fill",
]

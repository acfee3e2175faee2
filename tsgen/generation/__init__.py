"""Regular time series generated from irregular ones: ImagenI2R (Fadlon et al., NeurIPS 2025).

A Time Series Transformer completes the missing values
(:mod:`~tsgen.generation.completion`), a delay embedding turns each window
into a square image (:mod:`~tsgen.generation.delay`, from ImagenTime), and an
EDM diffusion model (:mod:`~tsgen.generation.edm`, Karras et al. 2022) learns
the images with noise and loss on the observed pixels only.
:class:`ImagenI2R` trains it all and samples regular windows.
"""

from .completion import (GRUDecoder, TSTCompleter, TSTEncoder, linear_fill, masked_mse, propagate_values,
                         zero_fill)
from .config import DELAY_EMBEDDINGS, GenerationConfig
from .delay import DelayEmbedder, ts_to_img_loop
from .edm import (EDMDenoiser, edm_loss_weight, heun_sampler, karras_sigmas, make_ema, make_unet, masked_edm_loss,
                  masked_loss)
from .evaluation import DATASETS, METRICS, benchmark_windows, generation_scores, score_columns
from .model import ImagenI2R

__all__ = [
    "DATASETS",
    "DELAY_EMBEDDINGS",
    "METRICS",
    "DelayEmbedder",
    "EDMDenoiser",
    "GRUDecoder",
    "GenerationConfig",
    "ImagenI2R",
    "TSTCompleter",
    "TSTEncoder",
    "benchmark_windows",
    "edm_loss_weight",
    "generation_scores",
    "heun_sampler",
    "karras_sigmas",
    "linear_fill",
    "make_ema",
    "make_unet",
    "masked_edm_loss",
    "masked_loss",
    "masked_mse",
    "propagate_values",
    "score_columns",
    "ts_to_img_loop",
    "zero_fill",
]

"""EDM (Karras et al. 2022) on delay-embedded images, with ImagenI2R's masking.

* :class:`EDMDenoiser` wraps a ``diffusers.UNet2DModel`` ``F`` in EDM's
  preconditioning, ``D(x; sigma) = c_skip x + c_out F(c_in x; c_noise)``.
* :func:`masked_edm_loss` draws log-normal noise levels, adds noise **only to
  observed pixels** and scores the denoiser **only on observed pixels**, with
  EDM's weight ``lambda(sigma)``; the network still sees every pixel (the
  completed ones without noise). With an all-ones mask it is EDM's loss.
* :func:`heun_sampler` is Algorithm 2 of the paper: Heun's second-order
  method on the probability-flow ODE, with optional stochastic churn.
* :func:`make_ema` keeps an exponential moving average of the weights.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from ..runtime import quiet

# diffusers imports tqdm.auto, which warns without ipywidgets
with quiet(warnings_=[(Warning, "IProgress not found")]):
    from diffusers import UNet2DModel


def make_unet(config) -> UNet2DModel:
    """The U-Net for ``config``: one resolution level per entry of ``unet_channels``."""
    down = tuple(
        "AttnDownBlock2D" if a else "DownBlock2D" for a in config.unet_attention
    )
    up = tuple(
        "AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(config.unet_attention)
    )
    size = max(config.embedding, _columns(config))
    return UNet2DModel(
        sample_size=size,
        in_channels=config.n_features,
        out_channels=config.n_features,
        block_out_channels=config.unet_channels,
        down_block_types=down,
        up_block_types=up,
        layers_per_block=config.unet_layers_per_block,
        norm_num_groups=min(32, min(config.unet_channels)),
        attention_head_dim=None,
    )


def _columns(config) -> int:
    full = (config.length - config.embedding) // config.delay + 1
    return full + int((full - 1) * config.delay + config.embedding < config.length)


class EDMDenoiser(nn.Module):
    """EDM's preconditioned denoiser around a U-Net that takes ``(image, c_noise)``."""

    def __init__(self, unet: nn.Module, sigma_data: float = 0.5):
        super().__init__()
        self.unet, self.sigma_data = unet, float(sigma_data)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        sigma = sigma.to(x.dtype).reshape(-1, 1, 1, 1).expand(x.shape[0], 1, 1, 1)
        sd2 = self.sigma_data**2
        c_skip = sd2 / (sigma**2 + sd2)
        c_out = sigma * self.sigma_data / (sigma**2 + sd2).sqrt()
        c_in = 1 / (sigma**2 + sd2).sqrt()
        c_noise = sigma.log().flatten() / 4
        return c_skip * x + c_out * self.unet(c_in * x, c_noise).sample


def edm_loss_weight(sigma: torch.Tensor, sigma_data: float) -> torch.Tensor:
    """lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2: unit effective weight at every level."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def masked_loss(
    denoised: torch.Tensor,
    clean: torch.Tensor,
    sigma: torch.Tensor,
    observed: torch.Tensor,
    sigma_data: float,
) -> torch.Tensor:
    """Weighted squared error averaged over observed pixels; unobserved pixels contribute nothing."""
    weight = edm_loss_weight(sigma, sigma_data).reshape(-1, 1, 1, 1)
    return (weight * (denoised - clean) ** 2 * observed).sum() / observed.sum().clamp(
        min=1.0
    )


def masked_edm_loss(
    denoiser: EDMDenoiser,
    clean: torch.Tensor,
    observed: torch.Tensor,
    p_mean: float = -1.2,
    p_std: float = 1.2,
) -> torch.Tensor:
    """One EDM training loss on completed images ``clean`` whose observed pixels are 1 in ``observed``."""
    sigma = (torch.randn(clean.shape[0], device=clean.device) * p_std + p_mean).exp()
    noise = torch.randn_like(clean) * sigma.reshape(-1, 1, 1, 1) * observed
    denoised = denoiser(clean + noise, sigma)
    return masked_loss(denoised, clean, sigma, observed, denoiser.sigma_data)


def karras_sigmas(
    steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0
) -> torch.Tensor:
    """t_0 > ... > t_{N-1} spaced evenly in sigma^(1/rho), then t_N = 0 (eq. 5)."""
    i = torch.arange(steps, dtype=torch.float64)
    ramp = i / max(steps - 1, 1)
    t = (
        sigma_max ** (1 / rho)
        + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))
    ) ** rho
    return torch.cat([t, torch.zeros(1, dtype=torch.float64)])


@torch.no_grad()
def heun_sampler(
    denoiser: nn.Module,
    shape: tuple,
    steps: int = 18,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    rho: float = 7.0,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float = math.inf,
    s_noise: float = 1.0,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Algorithm 2 of Karras et al. (2022); ``s_churn = 0`` is the deterministic sampler (Algorithm 1).

    Noise is drawn on the CPU from ``generator``, so a seed gives the same
    samples on any device.
    """

    def normal(like_shape):
        return torch.randn(like_shape, generator=generator, dtype=torch.float64).to(
            device
        )

    def D(x, t):  # the denoiser in float32, the ODE state in float64
        return denoiser(
            x.float(), torch.full((x.shape[0],), float(t), device=device)
        ).double()

    t = karras_sigmas(steps, sigma_min, sigma_max, rho).to(device)
    x = normal(shape) * t[0]  # x_0 ~ N(0, t_0^2 I)
    for i in range(steps):
        t_cur, t_next = t[i], t[i + 1]
        gamma = (
            min(s_churn / steps, math.sqrt(2) - 1) if s_tmin <= t_cur <= s_tmax else 0.0
        )
        t_hat = t_cur + gamma * t_cur  # raise the noise level ...
        # ... with fresh noise
        x_hat = (
            x + (t_hat**2 - t_cur**2).sqrt() * s_noise * normal(shape)
            if gamma > 0
            else x
        )
        d = (x_hat - D(x_hat, t_hat)) / t_hat  # dx/dt at t_hat
        x_next = x_hat + (t_next - t_hat) * d  # Euler step
        if t_next > 0:  # second-order correction
            d_prime = (x_next - D(x_next, t_next)) / t_next
            x_next = x_hat + (t_next - t_hat) * (0.5 * d + 0.5 * d_prime)
        x = x_next
    return x.float()


def make_ema(
    module: nn.Module, decay: float, warmup: bool = True, copy_steps: int = 0
) -> AveragedModel:
    """An exponential moving average of ``module``'s weights (and buffers).

    For the first ``copy_steps`` updates the average copies the weights (the
    released ImagenI2R code: 100); after that, with ``warmup`` the decay after
    ``n`` updates is ``min(decay, (1 + n) / (10 + n))``, so a short run is not
    dominated by the random initial weights, and without it ``decay``.
    """

    def average(
        averaged: torch.Tensor, current: torch.Tensor, n_averaged: torch.Tensor
    ) -> torch.Tensor:
        n = float(n_averaged)
        if n < copy_steps:
            return current.clone()
        d = min(decay, (1 + n) / (10 + n)) if warmup else decay
        return averaged * d + current * (1 - d)

    return AveragedModel(module, avg_fn=average, use_buffers=True)

"""The networks the engines wrap: a window forecaster and a window imputer.

Both take a tensor ``[batch, time, channels]`` (NaN = missing) or a PyPOTS-style
dict with ``X`` and ``missing_mask``, and both have a layer called ``encoder``
(the features an engine hooks) and a LayerNorm called ``norm`` (what
``parameters="norm"`` adapts).
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import positive_int
from .base import split_inputs


class MLPForecaster(nn.Module):
    """``[B, context_length, C] -> [B, horizon, C]``; ``encoder`` features are ``[B, hidden]``.

    With ``use_mask`` the observed mask is concatenated to the values, so the
    model can tell a missing value from a zero.
    """

    def __init__(
        self,
        context_length: int,
        horizon: int,
        n_features: int,
        hidden: int = 64,
        use_mask: bool = False,
    ):
        super().__init__()
        self.context_length, self.horizon, self.n_features, self.hidden = (
            context_length,
            horizon,
            n_features,
            hidden,
        )
        positive_int(self, "context_length", "horizon", "n_features", "hidden")
        self.use_mask = use_mask
        n_in = self.context_length * self.n_features * (2 if use_mask else 1)
        self.encoder = nn.Sequential(
            nn.Flatten(),
            nn.Linear(n_in, self.hidden),
            nn.GELU(),
            nn.Linear(self.hidden, self.hidden),
        )
        self.norm = nn.LayerNorm(self.hidden)
        self.head = nn.Sequential(
            nn.GELU(), nn.Linear(self.hidden, self.horizon * self.n_features)
        )

    def forward(self, inputs) -> torch.Tensor:
        x, mask = split_inputs(inputs)
        if tuple(x.shape[1:]) != (self.context_length, self.n_features):
            raise ValueError(
                f"expected windows of shape [batch, {self.context_length}, "
                f"{self.n_features}]; got {tuple(x.shape)}"
            )
        if self.use_mask:
            x = torch.cat([x, mask], dim=-1)
        elif not mask.bool().all():
            raise ValueError(
                "the input has missing values but the "
                "forecaster was built with use_mask=False"
            )
        return self.head(self.norm(self.encoder(x))).view(
            -1, self.horizon, self.n_features
        )


class _TemporalConv(nn.Module):
    """Two residual same-length 1-D convolutions over time, on ``[B, T, D]``."""

    def __init__(self, hidden: int, kernel_size: int = 5):
        super().__init__()
        self.conv1 = nn.Conv1d(hidden, hidden, kernel_size, padding=kernel_size // 2)
        self.conv2 = nn.Conv1d(hidden, hidden, kernel_size, padding=kernel_size // 2)
        self.act = nn.GELU()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        z = h.transpose(1, 2)
        z = z + self.act(self.conv1(z))
        z = z + self.act(self.conv2(z))
        return z.transpose(1, 2)


class ConvImputer(nn.Module):
    """``{X, missing_mask}`` (or a NaN tensor) ``-> [B, T, C]`` reconstruction of every entry.

    ``encoder`` features are ``[B, T, hidden]``. Combine as PyPOTS does:
    ``imputed = M * X + (1 - M) * reconstruction``.
    """

    def __init__(self, n_features: int, hidden: int = 32, kernel_size: int = 5):
        super().__init__()
        self.n_features, self.hidden, self.kernel_size = n_features, hidden, kernel_size
        positive_int(self, "n_features", "hidden", "kernel_size")
        self.embed = nn.Linear(2 * self.n_features, self.hidden)
        self.encoder = _TemporalConv(self.hidden, self.kernel_size)
        self.norm = nn.LayerNorm(self.hidden)
        self.head = nn.Linear(self.hidden, self.n_features)

    def forward(self, inputs) -> torch.Tensor:
        x, mask = split_inputs(inputs)
        if x.ndim != 3 or x.shape[2] != self.n_features:
            raise ValueError(
                f"expected [batch, time, {self.n_features}] "
                f"inputs; got {tuple(x.shape)}"
            )
        return self.head(
            self.norm(self.encoder(self.embed(torch.cat([x, mask], dim=-1))))
        )

"""The networks of ImagenI2R's completion, and the simple fills they are compared with.

Three ways to fill the NaN of a window ``[batch, length, features]``:

* :func:`zero_fill` — the naive "ImagenTime + masking" input;
* :func:`linear_fill` — linear interpolation in time, nearest value at the ends;
* :class:`TSTCompleter` — a Time Series Transformer encoder (:class:`TSTEncoder`,
  Zerveas et al. 2021) and a bidirectional GRU decoder (:class:`GRUDecoder`)
  with a sigmoid output, trained to reconstruct the observed entries
  (:func:`masked_mse`); ImagenI2R's completion.

:func:`propagate_values` (forward, then backward fill) gives the transformer a
NaN-free input; the time steps that were missing are hidden from attention
with a key-padding mask, so the filled values only keep the arithmetic finite.
The U-Net that learns the images is built in :mod:`~tsgen.generation.edm`,
beside the EDM preconditioning that wraps it.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _check_windows(x: torch.Tensor) -> torch.Tensor:
    if x.ndim != 3:
        raise ValueError(
            f"expected windows [batch, length, features]; got shape {tuple(x.shape)}"
        )
    if torch.isinf(x).any():
        raise ValueError("windows hold infinite values; use NaN for missing values")
    empty = torch.isnan(x).all(dim=2).all(dim=1)
    if empty.any():
        raise ValueError(
            f"{int(empty.sum())} window(s) have no observed value (first at index "
            f"{int(empty.nonzero()[0])}); an all-NaN window cannot be completed"
        )
    return x


def _neighbours(observed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For every entry, the time index of the last observed value at or before it (-1: none)
    and of the first observed value at or after it (``length``: none), per feature."""
    length = observed.shape[1]
    steps = (
        torch.arange(length, device=observed.device)
        .view(1, length, 1)
        .expand_as(observed)
    )
    previous = torch.where(observed, steps, -1).cummax(dim=1).values
    # the same running maximum on the reversed time axis finds the next observation
    reversed_steps = (
        torch.where(observed, length - 1 - steps, -1)
        .flip(1)
        .cummax(dim=1)
        .values.flip(1)
    )
    following = torch.where(reversed_steps >= 0, length - 1 - reversed_steps, length)
    return previous, following


def propagate_values(x: torch.Tensor) -> torch.Tensor:
    """Forward fill the NaN of each window along time, then backward fill the leading ones.

    A feature with no observed value in a window is set to 0; a window with no
    observed value at all is an error (there is nothing to propagate).
    """
    x = _check_windows(x)
    observed = ~torch.isnan(x)
    previous, following = _neighbours(observed)
    length = x.shape[1]
    source = torch.where(previous >= 0, previous, following)
    filled = torch.gather(torch.nan_to_num(x), 1, source.clamp(max=length - 1))
    return torch.where(source < length, filled, torch.zeros_like(filled))


def linear_fill(x: torch.Tensor) -> torch.Tensor:
    """Linear interpolation between the nearest observations in time; the nearest one at the ends."""
    x = _check_windows(x)
    observed = ~torch.isnan(x)
    previous, following = _neighbours(observed)
    length = x.shape[1]
    values = torch.nan_to_num(x)
    left = torch.gather(values, 1, previous.clamp(min=0))
    right = torch.gather(values, 1, following.clamp(max=length - 1))
    steps = torch.arange(length, device=x.device).view(1, length, 1)
    span = (following - previous).clamp(min=1)
    between = left + (right - left) * (steps - previous) / span
    has_left, has_right = previous >= 0, following < length
    out = torch.where(has_left & has_right, between, torch.where(has_left, left, right))
    return torch.where(has_left | has_right, out, torch.zeros_like(out))


def zero_fill(x: torch.Tensor) -> torch.Tensor:
    """Missing values become 0 (the scaled data's minimum)."""
    return torch.nan_to_num(_check_windows(x), nan=0.0)


def masked_mse(
    prediction: torch.Tensor, target: torch.Tensor, observed: torch.Tensor
) -> torch.Tensor:
    """Mean squared error over the observed entries only (NaN in ``target`` elsewhere is ignored)."""
    observed = observed.to(prediction.dtype)
    error = (prediction - torch.nan_to_num(target)) ** 2 * observed
    return error.sum() / observed.sum().clamp(min=1.0)


class FixedPositionalEncoding(nn.Module):
    """The sinusoidal encoding of Vaswani et al., added to the projected input."""

    def __init__(self, d_model: int, max_len: int, dropout: float):
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1)
        frequency = torch.exp(
            torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model)
        )
        table = torch.zeros(max_len, d_model)
        table[:, 0::2] = torch.sin(position * frequency)
        table[:, 1::2] = torch.cos(position * frequency)[:, : d_model // 2]
        self.register_buffer("table", table)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.dropout(h + self.table[: h.shape[1]])


class LearnablePositionalEncoding(nn.Module):
    def __init__(self, d_model: int, max_len: int, dropout: float):
        super().__init__()
        self.table = nn.Parameter(torch.empty(max_len, d_model).uniform_(-0.02, 0.02))
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.dropout(h + self.table[: h.shape[1]])


class BatchNormEncoderLayer(nn.Module):
    """A post-norm transformer encoder layer with BatchNorm over the feature axis.

    Zerveas et al. found BatchNorm better than LayerNorm for time series: it
    copes with outlier values that LayerNorm would pass on.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        feedforward: int,
        dropout: float,
        activation: str,
    ):
        super().__init__()
        self.attention = nn.MultiheadAttention(
            d_model, n_heads, dropout=dropout, batch_first=True
        )
        self.feedforward = nn.Sequential(
            nn.Linear(d_model, feedforward),
            _activation(activation),
            nn.Dropout(dropout),
            nn.Linear(feedforward, d_model),
        )
        self.norm1, self.norm2 = nn.BatchNorm1d(d_model), nn.BatchNorm1d(d_model)
        self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def _norm(self, norm: nn.BatchNorm1d, h: torch.Tensor) -> torch.Tensor:
        return norm(h.transpose(1, 2)).transpose(1, 2)

    def forward(
        self, h: torch.Tensor, src_key_padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        attended = self.attention(
            h, h, h, key_padding_mask=src_key_padding_mask, need_weights=False
        )[0]
        h = self._norm(self.norm1, h + self.dropout1(attended))
        return self._norm(self.norm2, h + self.dropout2(self.feedforward(h)))


def _activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU, "gelu": nn.GELU}[name]()


class TSTEncoder(nn.Module):
    """Time Series Transformer encoder: ``[batch, length, features]`` -> ``[batch, length, d_model]``.

    Input projection scaled by sqrt(d_model), positional encoding, a stack of
    encoder layers (BatchNorm or LayerNorm), then the activation and dropout.
    ``keep`` is True for time steps that attention may look at.
    """

    def __init__(
        self,
        n_features: int,
        max_len: int,
        d_model: int,
        n_heads: int,
        n_layers: int,
        feedforward: int,
        dropout: float,
        pos_encoding: str = "fixed",
        activation: str = "gelu",
        norm: str = "BatchNorm",
    ):
        super().__init__()
        self.d_model = d_model
        self.project = nn.Linear(n_features, d_model)
        positional = (
            FixedPositionalEncoding
            if pos_encoding == "fixed"
            else LearnablePositionalEncoding
        )
        self.positional = positional(d_model, max_len, dropout)
        if norm == "BatchNorm":
            layers = [
                BatchNormEncoderLayer(
                    d_model, n_heads, feedforward, dropout, activation
                )
                for _ in range(n_layers)
            ]
        else:
            layers = [
                nn.TransformerEncoderLayer(
                    d_model, n_heads, feedforward, dropout, activation, batch_first=True
                )
                for _ in range(n_layers)
            ]
        self.layers = nn.ModuleList(layers)
        self.activation = _activation(activation)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        h = self.positional(self.project(x) * math.sqrt(self.d_model))
        for layer in self.layers:
            h = layer(h, src_key_padding_mask=~keep)
        return self.dropout(self.activation(h))


class GRUDecoder(nn.Module):
    """Bidirectional GRU over the encoder states, a linear read-out and a sigmoid (data in [0, 1])."""

    def __init__(self, d_model: int, hidden: int, n_layers: int, n_features: int):
        super().__init__()
        self.gru = nn.GRU(
            d_model, hidden, num_layers=n_layers, batch_first=True, bidirectional=True
        )
        self.readout = nn.Linear(2 * hidden, n_features)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.readout(self.gru(h)[0]))


class TSTCompleter(nn.Module):
    """TST encoder + GRU decoder: reconstructs a whole window from its observed time steps."""

    def __init__(
        self,
        encoder: TSTEncoder,
        decoder: GRUDecoder,
        output_layer: nn.Module | None = None,
    ):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        # the released code's Linear(d_model, d_model) on the encoder states
        self.output_layer = output_layer

    @classmethod
    def from_config(cls, config) -> TSTCompleter:
        encoder = TSTEncoder(
            config.n_features,
            config.length,
            config.tst_d_model,
            config.tst_heads,
            config.tst_layers,
            config.tst_feedforward,
            config.tst_dropout,
            config.tst_pos_encoding,
            config.tst_activation,
            config.tst_norm,
        )
        decoder = GRUDecoder(
            config.tst_d_model,
            config.decoder_width,
            config.decoder_layers,
            config.n_features,
        )
        output_layer = (
            nn.Linear(config.tst_d_model, config.tst_d_model)
            if config.tst_output_layer
            else None
        )
        return cls(encoder, decoder, output_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction ``[batch, length, features]`` of windows with NaN for missing values."""
        # a time step with any missing feature is
        # hidden from attention, as in the reference
        keep = ~torch.isnan(x).any(dim=2)
        # a window whose every step has a gap would leave attention nothing to attend to
        keep = torch.where(keep.any(dim=1, keepdim=True), keep, torch.ones_like(keep))
        h = self.encoder(propagate_values(x), keep)
        if self.output_layer is not None:
            h = self.output_layer(h)
        return self.decoder(h)

    def loss(self, x: torch.Tensor, kind: str = "mse") -> torch.Tensor:
        """The reconstruction loss on the observed entries: ``"mse"`` or ``"scaled_rmse"``.

        ``"scaled_rmse"`` is 10 * sqrt(MSE), the released code's pre-training loss.
        """
        mse = masked_mse(self(x), x, ~torch.isnan(x))
        if kind == "mse":
            return mse
        if kind == "scaled_rmse":
            return 10 * torch.sqrt(mse)
        raise ValueError(f"loss kind must be 'mse' or 'scaled_rmse'; got {kind!r}")

    def complete(self, x: torch.Tensor) -> torch.Tensor:
        """Observed values kept, missing ones taken from the reconstruction."""
        return torch.where(torch.isnan(x), self(x), x)

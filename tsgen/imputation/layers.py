"""Test-time-training layers: TTT-Linear and TTT-MLP in the mini-batch dual form.

Sun et al. 2024, *Learning to (Learn at Test Time): RNNs with Expressive Hidden
States* (https://arxiv.org/abs/2407.04620). The hidden state of the sequence
layer is the set of weights ``θ`` of a small inner model ``f`` (linear or a
two-layer MLP). For each token ``x_t`` the layer makes three views
``k_t, v_t, q_t`` and takes a gradient step on the self-supervised
reconstruction loss

    ℓ(θ; x_t) = ½ ‖LN(f(k_t; θ)) − (v_t − k_t)‖²

with a learnable per-token inner learning rate ``η_t``; the output is
``z_t = q_t + LN(f(q_t; θ_t))`` (residual plus the inner LayerNorm).

**Mini-batch TTT.** Within an inner mini-batch of ``b`` tokens every gradient is
taken at the weights ``θ_0`` from the end of the previous mini-batch, and
``θ_t = θ_0 − Σ_{s≤t} η_s ∇ℓ(θ_0; x_s)``. The **dual form** never materialises
``θ_t``: for a linear layer ``Zq_t = q_t θ_0 − Σ_{s≤t} η_s (q_t·k_s + 1) g_s``
where ``g_s`` is the gradient with respect to the pre-norm output, i.e. one
causal (lower-triangular) matrix product per mini-batch. Only ``θ_b`` is formed,
to start the next mini-batch. The gradient through the inner LayerNorm is written
out in closed form (no autograd inside the layer), as in the paper's kernels.
A per-token loop over the same update (the "primal form",
:func:`tsgen.imputation.speed.per_token_reference`) gives the same outputs.

Every head has its own inner model and inner LayerNorm. Imputation may look at
the future: :class:`BidirectionalTTT` runs one layer forward and one on the
time-reversed sequence and mixes the two.
"""

from __future__ import annotations

import abc
import math

import torch
from torch import nn

LAYER_TYPES = ("linear", "mlp")
_LN_EPS = 1e-6


class TTTLayer(nn.Module, abc.ABC):
    """Shared machinery of the TTT layers: views, inner lr, inner LayerNorm, the mini-batch loop.

    ``forward(x)`` maps ``[batch, time, d_model]`` to the same shape.
    ``mini_batch_size`` is the inner mini-batch ``b`` (the last mini-batch may be
    shorter); ``base_lr`` scales the learnable inner learning rate
    ``η_t = base_lr · sigmoid(w·x_t + c) / head_dim`` (one per head and token).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int = 4,
        mini_batch_size: int = 16,
        base_lr: float = 1.0,
    ):
        super().__init__()
        if d_model < 1 or n_heads < 1 or d_model % n_heads:
            raise ValueError(
                f"d_model ({d_model}) must be a positive "
                f"multiple of n_heads ({n_heads})"
            )
        if int(mini_batch_size) != mini_batch_size or mini_batch_size < 1:
            raise ValueError(
                f"mini_batch_size must be a positive integer; got {mini_batch_size!r}"
            )
        if not base_lr > 0:
            raise ValueError(f"base_lr must be positive; got {base_lr!r}")
        self.d_model, self.n_heads, self.head_dim = d_model, n_heads, d_model // n_heads
        self.mini_batch_size, self.base_lr = int(mini_batch_size), float(base_lr)
        self.q_proj = nn.Linear(d_model, d_model, bias=False)
        self.k_proj = nn.Linear(d_model, d_model, bias=False)
        self.v_proj = nn.Linear(d_model, d_model, bias=False)
        self.lr_gate = nn.Linear(d_model, n_heads)
        self.inner_norm_weight = nn.Parameter(torch.ones(n_heads, 1, self.head_dim))
        self.inner_norm_bias = nn.Parameter(torch.zeros(n_heads, 1, self.head_dim))
        self.out_norm = nn.LayerNorm(d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    # ---- the pieces
    # (public so that the per-token reference in speed.py can reuse them)
    def views(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``q, k, v`` as ``[B, H, T, head_dim]`` and the inner learning rate ``η`` as ``[B, H, T]``."""
        batch, length, _ = x.shape

        def heads(t):
            return t.view(batch, length, self.n_heads, self.head_dim).transpose(1, 2)

        eta = (
            self.base_lr
            * torch.sigmoid(self.lr_gate(x)).transpose(1, 2)
            / self.head_dim
        )
        return heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x)), eta

    def inner_norm(
        self, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-head LayerNorm over ``head_dim``: ``(output, normalised z, std)``."""
        mean = z.mean(-1, keepdim=True)
        std = torch.sqrt(z.var(-1, unbiased=False, keepdim=True) + _LN_EPS)
        z_hat = (z - mean) / std
        return self.inner_norm_weight * z_hat + self.inner_norm_bias, z_hat, std

    def reconstruction_grad(
        self, z: torch.Tensor, target: torch.Tensor
    ) -> torch.Tensor:
        """Gradient of ``½‖LN(z) − target‖²`` with respect to ``z``, through the LayerNorm."""

        out, z_hat, std = self.inner_norm(z)
        g_hat = (out - target) * self.inner_norm_weight
        return (
            g_hat
            - g_hat.mean(-1, keepdim=True)
            - z_hat * (g_hat * z_hat).mean(-1, keepdim=True)
        ) / std

    def merge_heads(self, z: torch.Tensor) -> torch.Tensor:
        """``[B, H, T, head_dim]`` → ``[B, T, d_model]`` through the output norm and projection."""

        batch, _, length, _ = z.shape
        return self.out_proj(
            self.out_norm(z.transpose(1, 2).reshape(batch, length, self.d_model))
        )

    @abc.abstractmethod
    def initial_state(self, batch: int) -> tuple[torch.Tensor, ...]:
        """The learned initial inner weights, one copy per sample: tensors ``[B, H, ...]``."""

    @abc.abstractmethod
    def inner_model(
        self, state: tuple[torch.Tensor, ...], x: torch.Tensor
    ) -> torch.Tensor:
        """``f(x; θ)`` before the inner LayerNorm, for ``x`` of shape ``[B, H, t, head_dim]``."""

    @abc.abstractmethod
    def dual_step(
        self, state, q, k, v, eta
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """One inner mini-batch in the dual form: ``(z [B, H, t, head_dim], state at its end)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(
                "expected input [batch, time, "
                f"{self.d_model}]; got shape {tuple(x.shape)}"
            )
        q, k, v, eta = self.views(x)
        state = self.initial_state(x.shape[0])
        outputs = []
        for start in range(0, x.shape[1], self.mini_batch_size):
            chunk = slice(start, start + self.mini_batch_size)
            z, state = self.dual_step(
                state, q[:, :, chunk], k[:, :, chunk], v[:, :, chunk], eta[:, :, chunk]
            )
            outputs.append(z)
        return self.merge_heads(torch.cat(outputs, dim=2))


def _causal_weights(
    left: torch.Tensor, right: torch.Tensor, eta: torch.Tensor
) -> torch.Tensor:
    """``[B, H, t, t]`` with entry ``(t, s) = η_s (left_t·right_s + 1)`` for ``s ≤ t``, else 0."""
    return torch.tril((left @ right.transpose(-1, -2) + 1.0) * eta.unsqueeze(-2))


def _weighted_outer(
    x: torch.Tensor, g: torch.Tensor, eta: torch.Tensor
) -> torch.Tensor:
    """``Σ_s η_s x_sᵀ g_s``: the summed weight gradient of a mini-batch."""
    return (x * eta.unsqueeze(-1)).transpose(-1, -2) @ g


def _weighted_sum(g: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
    return (g * eta.unsqueeze(-1)).sum(-2, keepdim=True)


class TTTLinear(TTTLayer):
    """TTT layer whose inner model is linear: ``f(x; W, b) = x W + b`` per head."""

    def __init__(
        self,
        d_model: int,
        n_heads: int = 4,
        mini_batch_size: int = 16,
        base_lr: float = 1.0,
    ):
        super().__init__(d_model, n_heads, mini_batch_size, base_lr)
        self.W0 = nn.Parameter(
            torch.randn(n_heads, self.head_dim, self.head_dim) * 0.02
        )
        self.b0 = nn.Parameter(torch.zeros(n_heads, 1, self.head_dim))

    def initial_state(self, batch):
        return self.W0.expand(batch, -1, -1, -1), self.b0.expand(batch, -1, -1, -1)

    def inner_model(self, state, x):
        W, b = state
        return x @ W + b

    def dual_step(self, state, q, k, v, eta):
        W, b = state
        g = self.reconstruction_grad(self.inner_model(state, k), v - k)
        z = q @ W + b - _causal_weights(q, k, eta) @ g
        new_state = (W - _weighted_outer(k, g, eta), b - _weighted_sum(g, eta))
        return q + self.inner_norm(z)[0], new_state


def _gelu_grad(x: torch.Tensor) -> torch.Tensor:
    """Derivative of the exact GELU ``x Φ(x)``."""
    cdf = 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))
    pdf = torch.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    return cdf + x * pdf


class TTTMLP(TTTLayer):
    """TTT layer whose inner model is a two-layer MLP with a GELU, hidden width ``4 · head_dim``."""

    def __init__(
        self,
        d_model: int,
        n_heads: int = 4,
        mini_batch_size: int = 16,
        base_lr: float = 1.0,
    ):
        super().__init__(d_model, n_heads, mini_batch_size, base_lr)
        hidden = 4 * self.head_dim
        self.W1 = nn.Parameter(torch.randn(n_heads, self.head_dim, hidden) * 0.02)
        self.b1 = nn.Parameter(torch.zeros(n_heads, 1, hidden))
        self.W2 = nn.Parameter(torch.randn(n_heads, hidden, self.head_dim) * 0.02)
        self.b2 = nn.Parameter(torch.zeros(n_heads, 1, self.head_dim))

    def initial_state(self, batch):
        return tuple(
            p.expand(batch, -1, -1, -1) for p in (self.W1, self.b1, self.W2, self.b2)
        )

    def inner_model(self, state, x):
        W1, b1, W2, b2 = state
        return nn.functional.gelu(x @ W1 + b1) @ W2 + b2

    def dual_step(self, state, q, k, v, eta):
        W1, b1, W2, b2 = state
        # gradients at the mini-batch's starting
        # weights, by hand (backprop through two layers)
        z1 = k @ W1 + b1
        x2 = nn.functional.gelu(z1)
        g2 = self.reconstruction_grad(x2 @ W2 + b2, v - k)
        g1 = (g2 @ W2.transpose(-1, -2)) * _gelu_grad(z1)
        # queries through the weights updated token by token, in matrix form
        z1_q = q @ W1 + b1 - _causal_weights(q, k, eta) @ g1
        x2_q = nn.functional.gelu(z1_q)
        z2_q = x2_q @ W2 + b2 - _causal_weights(x2_q, x2, eta) @ g2
        new_state = (
            W1 - _weighted_outer(k, g1, eta),
            b1 - _weighted_sum(g1, eta),
            W2 - _weighted_outer(x2, g2, eta),
            b2 - _weighted_sum(g2, eta),
        )
        return q + self.inner_norm(z2_q)[0], new_state


def make_ttt_layer(
    layer_type: str, d_model: int, n_heads: int, mini_batch_size: int, base_lr: float
) -> TTTLayer:
    """A :class:`TTTLinear` (``"linear"``) or :class:`TTTMLP` (``"mlp"``)."""
    classes = {"linear": TTTLinear, "mlp": TTTMLP}
    if layer_type not in classes:
        raise ValueError(
            f"unknown TTT layer type {layer_type!r}; choose one of {LAYER_TYPES}"
        )
    return classes[layer_type](d_model, n_heads, mini_batch_size, base_lr)


class BidirectionalTTT(nn.Module):
    """A forward TTT layer and one on the time-reversed sequence, concatenated and mixed linearly."""

    def __init__(self, forward_layer: TTTLayer, backward_layer: TTTLayer):
        super().__init__()
        if forward_layer.d_model != backward_layer.d_model:
            raise ValueError(
                "the forward and backward layers must have the same d_model"
            )
        self.forward_layer, self.backward_layer = forward_layer, backward_layer
        self.mix = nn.Linear(2 * forward_layer.d_model, forward_layer.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        backward = self.backward_layer(x.flip(1)).flip(1)
        return self.mix(torch.cat([self.forward_layer(x), backward], dim=-1))


class TTTBlock(nn.Module):
    """Pre-norm residual block: ``h + TTT(LN(h))`` then ``h + FFN(LN(h))``."""

    def __init__(
        self,
        d_model: int,
        d_ffn: int,
        n_heads: int = 4,
        layer_type: str = "linear",
        mini_batch_size: int = 16,
        base_lr: float = 1.0,
        bidirectional: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__()

        def layer():
            return make_ttt_layer(
                layer_type, d_model, n_heads, mini_batch_size, base_lr
            )

        self.norm1 = nn.LayerNorm(d_model)
        self.ttt = BidirectionalTTT(layer(), layer()) if bidirectional else layer()
        self.norm2 = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(
            nn.Linear(d_model, d_ffn),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(d_ffn, d_model),
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h + self.dropout(self.ttt(self.norm1(h)))
        return h + self.dropout(self.ffn(self.norm2(h)))


class TTTEncoder(nn.Module):
    """A stack of :class:`TTTBlock` with a final LayerNorm."""

    def __init__(self, n_layers: int, d_model: int, d_ffn: int, **block_kwargs):
        super().__init__()
        if int(n_layers) != n_layers or n_layers < 1:
            raise ValueError(f"n_layers must be a positive integer; got {n_layers!r}")
        self.blocks = nn.ModuleList(
            TTTBlock(d_model, d_ffn, **block_kwargs) for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            h = block(h)
        return self.norm(h)

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

    θ_t = θ_0 − c_t Σ_{s≤t} η_s ∇ℓ(θ_0; x_s)

where ``t = 1 … b`` is the position inside the mini-batch and ``c_t`` the
``inner_lr_scaling``: ``"constant"`` (``c_t = 1``, tsgen's default) or
``"inverse_position"`` (``c_t = 1/t``, the paper's scaling and the official
ttt-lm code's ``token_idx``: the factor belongs to the *query* position ``t``
and divides the whole sum, so ``θ_t`` takes the mean of the ``t`` weighted
gradients; the next mini-batch starts from ``θ_b``, i.e. with ``1/b``). The
official code also adds a learnable offset to ``1/t``; tsgen keeps it fixed.

The **dual form** never materialises ``θ_t``: for a linear layer
``Zq_t = q_t θ_0 − c_t Σ_{s≤t} η_s (q_t·k_s + 1) g_s`` where ``g_s`` is the
gradient with respect to the pre-norm output, i.e. one causal
(lower-triangular) matrix product per mini-batch. Only ``θ_b`` is formed, to
start the next mini-batch. The gradient through the inner LayerNorm is written
out in closed form (no autograd inside the layer), as in the paper's kernels.
A per-token loop over the same update (the "primal form",
:func:`tsgen.imputation.speed.per_token_reference`) gives the same outputs.

How it is made fast (these are small tensors: the cost is the number of
operations, forward and backward, not their arithmetic). Only what carries the
state from one mini-batch to the next stays in the Python loop over
mini-batches: the gradients ``g`` at the keys and the update of ``θ``. All that
does not depend on the state (the causal weights, the LayerNorm targets, the
learning rates) is computed for every mini-batch at once before the loop, and
the outputs of all mini-batches (queries through their starting weights, the
causal products, the output LayerNorm) at once after it. The LayerNorm and GELU
derivatives are PyTorch's fused kernels, which are themselves differentiable,
so the outer gradients flow through them. :class:`BidirectionalTTT` runs its
two directions as one call, as extra heads.

Every head has its own inner model and inner LayerNorm. Imputation may look at
the future: :class:`BidirectionalTTT` runs one layer forward and one on the
time-reversed sequence and mixes the two.
"""

from __future__ import annotations

import abc
import math
from typing import NamedTuple

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

LAYER_TYPES = ("linear", "mlp")
INNER_LR_SCALINGS = ("constant", "inverse_position")
_LN_EPS = 1e-6
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _per_sample(weight: torch.Tensor, batch: int) -> torch.Tensor:
    """``[H, ...]`` → ``[batch · H, ...]``: one copy per sample, heads inside samples."""
    return weight.expand(batch, *weight.shape).reshape(-1, *weight.shape[1:])


def _to_chunks(x: torch.Tensor, size: int) -> torch.Tensor:
    """``[B, H, T, ...]`` → ``[n, B·H, size, ...]``, the time axis zero-padded to ``n · size``."""
    batch, heads, length = x.shape[:3]
    n = -(-length // size)
    tail = [0, 0] * (x.ndim - 3) + [0, n * size - length]
    x = F.pad(x, tail)
    return x.reshape(batch * heads, n, size, *x.shape[3:]).transpose(0, 1)


def _from_chunks(z: torch.Tensor, batch: int, length: int) -> torch.Tensor:
    """The inverse of :func:`_to_chunks` for ``[n, B·H, size, d]``."""
    n, bh, size, dim = z.shape
    z = z.transpose(0, 1).reshape(batch, bh // batch, n * size, dim)
    return z[:, :, :length]


def _reconstruction_grad(
    z: torch.Tensor, offset: torch.Tensor, gain: torch.Tensor
) -> torch.Tensor:
    """Gradient of ``½‖γ·LN(z) + β − target‖²`` with respect to ``z``.

    ``gain = γ²`` and ``offset = (β − target)·γ``, so the gradient with respect
    to the normalised ``ẑ`` is ``γ²·ẑ + offset``; the LayerNorm's own backward
    kernel carries it to ``z`` (``(ĝ − mean ĝ − ẑ·mean(ĝ ẑ)) / std``).
    """
    z_hat, mean, rstd = torch.ops.aten.native_layer_norm(
        z, [z.shape[-1]], None, None, _LN_EPS
    )
    g_hat = torch.addcmul(offset, gain, z_hat)
    return torch.ops.aten.native_layer_norm_backward(
        g_hat, z, [z.shape[-1]], mean, rstd, None, None, [True, False, False]
    )[0]


def _causal(left: torch.Tensor, right: torch.Tensor, mask: torch.Tensor):
    """Entry ``(t, s)``: ``mask_ts (left_t·right_s + 1)``; ``mask_ts = c_t η_s`` for ``s ≤ t``, else 0."""
    return (left @ right.transpose(-1, -2) + 1.0) * mask


class _Chunks(NamedTuple):
    """The inputs of every inner mini-batch, ``[n, B·H, b, ...]``, computed before the loop."""

    # [k 1; q 1]: the keys and queries, each with a 1 appended for the inner
    # model's bias, stacked along the token axis: [n, B·H, 2b, d + 1]
    keys_queries: torch.Tensor
    attention: torch.Tensor  # c_t η_s (q_t·k_s + 1) for s ≤ t: [n, B·H, b, b]
    mask: torch.Tensor  # c_t η_s for s ≤ t: [n, B·H, b, b]
    offset: torch.Tensor  # (β − v + k)·γ, see _reconstruction_grad
    gain: torch.Tensor  # γ², [B·H, 1, d]
    neg_eta: torch.Tensor  # −c_b η_s of the end-of-mini-batch update: [n, B·H, b]
    keys_eta: torch.Tensor  # (−c_b η_s [k_s 1])ᵀ: [n, B·H, d + 1, b]


class TTTLayer(nn.Module, abc.ABC):
    """Shared machinery of the TTT layers: views, inner lr, inner LayerNorm, the mini-batch loop.

    ``forward(x)`` maps ``[batch, time, d_model]`` to the same shape.
    ``mini_batch_size`` is the inner mini-batch ``b`` (the last mini-batch may be
    shorter); ``base_lr`` scales the learnable inner learning rate
    ``η_t = base_lr · sigmoid(w·x_t + c) / head_dim`` (one per head and token).
    ``inner_lr_scaling`` is ``"constant"`` (default) or ``"inverse_position"``
    (the paper's ``1/t`` inside a mini-batch; see the module docstring).
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int = 4,
        mini_batch_size: int = 16,
        base_lr: float = 1.0,
        inner_lr_scaling: str = "constant",
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
        if inner_lr_scaling not in INNER_LR_SCALINGS:
            raise ValueError(
                f"inner_lr_scaling must be one of {INNER_LR_SCALINGS}; "
                f"got {inner_lr_scaling!r}"
            )
        self.d_model, self.n_heads, self.head_dim = d_model, n_heads, d_model // n_heads
        self.mini_batch_size, self.base_lr = int(mini_batch_size), float(base_lr)
        self.inner_lr_scaling = inner_lr_scaling
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
        # one projection for q, k, v instead of three
        qkv = F.linear(
            x, torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight])
        )
        qkv = qkv.view(batch, length, 3, self.n_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        eta = (
            self.base_lr
            * torch.sigmoid(self.lr_gate(x)).transpose(1, 2)
            / self.head_dim
        )
        return q, k, v, eta

    def inner_norm(
        self, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-head LayerNorm over ``head_dim``: ``(output, normalised z, std)``."""
        mean = z.mean(-1, keepdim=True)
        std = torch.sqrt(z.var(-1, unbiased=False, keepdim=True) + _LN_EPS)
        z_hat = (z - mean) / std
        return self.inner_norm_weight * z_hat + self.inner_norm_bias, z_hat, std

    def merge_heads(self, z: torch.Tensor, project: bool = True) -> torch.Tensor:
        """``[B, H, T, head_dim]`` → ``[B, T, d_model]`` through the output norm and projection.

        ``project=False`` stops before the projection (for a caller that folds it
        into its own linear map).
        """
        batch, _, length, _ = z.shape
        normed = self.out_norm(z.transpose(1, 2).reshape(batch, length, self.d_model))
        return self.out_proj(normed) if project else normed

    def initial_state(self, batch: int) -> tuple[torch.Tensor, ...]:
        """The learned initial inner weights, one copy per sample: tensors ``[B, H, ...]``."""
        return tuple(w.expand(batch, *w.shape) for w in self.inner_weights())

    def position_scale(self, size: int, like: torch.Tensor) -> torch.Tensor:
        """``c_t`` for ``t = 1 … size`` (see ``inner_lr_scaling``), dtype and device of ``like``."""
        if self.inner_lr_scaling == "inverse_position":
            return 1.0 / torch.arange(1, size + 1, dtype=like.dtype, device=like.device)
        return torch.ones(size, dtype=like.dtype, device=like.device)

    @abc.abstractmethod
    def inner_weights(self) -> tuple[torch.Tensor, ...]:
        """The learned initial inner weights ``θ_0``, tensors ``[H, ...]``."""

    @abc.abstractmethod
    def inner_model(
        self, state: tuple[torch.Tensor, ...], x: torch.Tensor
    ) -> torch.Tensor:
        """``f(x; θ)`` before the inner LayerNorm, for ``x`` of shape ``[B, H, t, head_dim]``."""

    @abc.abstractmethod
    def dual_chunks(self, state: tuple[torch.Tensor, ...], c: _Chunks) -> torch.Tensor:
        """All mini-batches in the dual form: ``f`` of the queries before the inner LayerNorm.

        ``state`` holds the initial weights ``[B·H, ...]``; returns
        ``[n, B·H, b, head_dim]`` for the chunked inputs ``c``.
        """

    def dual_form(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        eta: torch.Tensor,
        weights: tuple[torch.Tensor, ...],
        norm_weight: torch.Tensor,
        norm_bias: torch.Tensor,
    ) -> torch.Tensor:
        """``q + LN(f(q; θ_t))`` as ``[B, H', T, head_dim]`` for views ``[B, H', T, ...]``.

        ``weights`` (``θ_0``) and the inner LayerNorm's ``norm_weight`` and
        ``norm_bias`` are per head, ``[H', ...]``; ``H'`` may hold the heads of
        several layers of this class (the two directions of
        :class:`BidirectionalTTT`).
        """
        batch, _, length, _ = q.shape
        size = min(self.mini_batch_size, length)
        q_c, k_c, v_c = (_to_chunks(t, size) for t in (q, k, v))
        eta_c = _to_chunks(eta, size)  # padded steps get η = 0: they change nothing
        gamma = _per_sample(norm_weight, batch)
        beta = _per_sample(norm_bias, batch)
        scale = self.position_scale(size, eta)
        mask = torch.tril(scale[:, None] * eta_c.unsqueeze(-2))
        # the update that ends a mini-batch, negated: W + Σ_s (−c_b η_s) k_sᵀ g_s
        neg_eta = eta_c * -scale[-1]
        ones = torch.ones_like(k_c[..., :1])
        k_1, q_1 = torch.cat([k_c, ones], dim=-1), torch.cat([q_c, ones], dim=-1)
        chunks = _Chunks(
            keys_queries=torch.cat([k_1, q_1], dim=2),
            attention=(q_1 @ k_1.transpose(-1, -2)) * mask,  # (q·k + 1) c_t η_s
            mask=mask,
            # (γ·LN(z) + β − (v − k))·γ = γ²·ẑ + (β − v + k)·γ
            offset=(beta - v_c + k_c) * gamma,
            gain=gamma * gamma,
            neg_eta=neg_eta,
            keys_eta=(k_1 * neg_eta[..., None]).transpose(-1, -2),
        )
        z = self.dual_chunks(tuple(_per_sample(w, batch) for w in weights), chunks)
        z_hat = F.layer_norm(z, z.shape[-1:], eps=_LN_EPS)
        return _from_chunks(q_c + torch.addcmul(beta, gamma, z_hat), batch, length)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        q, k, v, eta = self.views(x)
        z = self.dual_form(
            q,
            k,
            v,
            eta,
            self.inner_weights(),
            self.inner_norm_weight,
            self.inner_norm_bias,
        )
        return self.merge_heads(z)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(
                "expected input [batch, time, "
                f"{self.d_model}]; got shape {tuple(x.shape)}"
            )


def _unbind(*chunked: torch.Tensor):
    """Mini-batch by mini-batch. (Unbinding once: indexing chunk by chunk would
    cost a full-size tensor in the backward pass for every chunk.)"""
    return zip(*(t.unbind(0) for t in chunked), strict=True)


def _update(weight, inputs_eta, grads):
    """``W + Σ_s (−c_b η_s) x_sᵀ grads_s``, the step that ends a mini-batch; ``inputs_eta = (−c_b η x)ᵀ``."""
    return torch.baddbmm(weight, inputs_eta, grads)


class TTTLinear(TTTLayer):
    """TTT layer whose inner model is linear: ``f(x; W, b) = x W + b`` per head."""

    def __init__(
        self,
        d_model: int,
        n_heads: int = 4,
        mini_batch_size: int = 16,
        base_lr: float = 1.0,
        inner_lr_scaling: str = "constant",
    ):
        super().__init__(d_model, n_heads, mini_batch_size, base_lr, inner_lr_scaling)
        self.W0 = nn.Parameter(
            torch.randn(n_heads, self.head_dim, self.head_dim) * 0.02
        )
        self.b0 = nn.Parameter(torch.zeros(n_heads, 1, self.head_dim))

    def inner_weights(self):
        return self.W0, self.b0

    def inner_model(self, state, x):
        W, b = state
        return x @ W + b

    def dual_chunks(self, state, c):
        Wb = torch.cat(state, dim=1)  # [W; b], for inputs with a 1 appended
        size, n, outputs = c.attention.shape[-1], c.offset.shape[0], []
        # the only sequential part: gradients at each mini-batch's starting weights
        for i, (kq, attention, offset, keys_eta) in enumerate(
            _unbind(c.keys_queries, c.attention, c.offset, c.keys_eta)
        ):
            z_k, z_q = torch.bmm(kq, Wb).split(size, dim=1)
            g = _reconstruction_grad(z_k, offset, c.gain)
            outputs.append(z_q - attention @ g)
            if i + 1 < n:
                Wb = _update(Wb, keys_eta, g)
        return torch.stack(outputs)


class _GeluAndSlope(torch.autograd.Function):
    """``(GELU(z), GELU'(z))`` for the exact GELU ``z Φ(z)``, with a cheap backward pass.

    The inner MLP needs the GELU and its derivative at the same points, and the
    outer backward pass needs both derivatives again; autograd through
    PyTorch's GELU kernels would recompute the transcendentals each time, which
    dominates TTT-MLP on a CPU. Here the backward pass reuses ``GELU'`` and
    computes ``GELU'' = φ (2 − z²)`` with one ``exp``.
    """

    @staticmethod
    def forward(ctx, z):
        slope = torch.ops.aten.gelu_backward(torch.ones_like(z), z)
        ctx.save_for_backward(z, slope)
        ctx.set_materialize_grads(False)
        return F.gelu(z), slope

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_value, grad_slope):
        z, slope = ctx.saved_tensors
        grad = None if grad_value is None else grad_value * slope
        if grad_slope is not None:
            square = z * z
            pdf = torch.exp(square * -0.5).mul_(_INV_SQRT_2PI)
            curvature = square.sub_(2.0).mul_(pdf).mul_(grad_slope)  # −GELU''·grad
            grad = curvature.neg_() if grad is None else grad.sub_(curvature)
        return grad


class TTTMLP(TTTLayer):
    """TTT layer whose inner model is a two-layer MLP with a GELU, hidden width ``4 · head_dim``."""

    def __init__(
        self,
        d_model: int,
        n_heads: int = 4,
        mini_batch_size: int = 16,
        base_lr: float = 1.0,
        inner_lr_scaling: str = "constant",
    ):
        super().__init__(d_model, n_heads, mini_batch_size, base_lr, inner_lr_scaling)
        hidden = 4 * self.head_dim
        self.W1 = nn.Parameter(torch.randn(n_heads, self.head_dim, hidden) * 0.02)
        self.b1 = nn.Parameter(torch.zeros(n_heads, 1, hidden))
        self.W2 = nn.Parameter(torch.randn(n_heads, hidden, self.head_dim) * 0.02)
        self.b2 = nn.Parameter(torch.zeros(n_heads, 1, self.head_dim))

    def inner_weights(self):
        return self.W1, self.b1, self.W2, self.b2

    def inner_model(self, state, x):
        W1, b1, W2, b2 = state
        return F.gelu(x @ W1 + b1) @ W2 + b2

    def dual_chunks(self, state, c):
        W1, b1, W2, b2 = state
        Wb1 = torch.cat([W1, b1], dim=1)  # [W1; b1], for inputs with a 1 appended
        size, n, outputs = c.attention.shape[-1], c.offset.shape[0], []
        for i, (kq, attention, mask, offset, neg_eta, keys_eta) in enumerate(
            _unbind(
                c.keys_queries, c.attention, c.mask, c.offset, c.neg_eta, c.keys_eta
            )
        ):
            # gradients at the mini-batch's starting weights, by hand (two layers)
            z1_k, z1_q = torch.bmm(kq, Wb1).split(size, dim=1)
            x2, slope = _GeluAndSlope.apply(z1_k)
            g2 = _reconstruction_grad(torch.baddbmm(b2, x2, W2), offset, c.gain)
            g1 = (g2 @ W2.transpose(1, 2)) * slope
            # queries through the weights updated token by token, in matrix form
            x2_q = F.gelu(z1_q - attention @ g1)
            outputs.append(torch.baddbmm(b2, x2_q, W2) - _causal(x2_q, x2, mask) @ g2)
            if i + 1 < n:
                Wb1 = _update(Wb1, keys_eta, g1)
                g2_eta = g2 * neg_eta[..., None]
                W2 = torch.baddbmm(W2, x2.transpose(1, 2), g2_eta)
                b2 = b2 + g2_eta.sum(1, keepdim=True)
        return torch.stack(outputs)


def make_ttt_layer(
    layer_type: str,
    d_model: int,
    n_heads: int,
    mini_batch_size: int,
    base_lr: float,
    inner_lr_scaling: str = "constant",
) -> TTTLayer:
    """A :class:`TTTLinear` (``"linear"``) or :class:`TTTMLP` (``"mlp"``)."""
    classes = {"linear": TTTLinear, "mlp": TTTMLP}
    if layer_type not in classes:
        raise ValueError(
            f"unknown TTT layer type {layer_type!r}; choose one of {LAYER_TYPES}"
        )
    return classes[layer_type](
        d_model, n_heads, mini_batch_size, base_lr, inner_lr_scaling
    )


class BidirectionalTTT(nn.Module):
    """A forward TTT layer and one on the time-reversed sequence, concatenated and mixed linearly.

    When the two layers are of one class with the same mini-batch size and
    ``inner_lr_scaling`` (as :class:`TTTBlock` builds them), their heads run as
    one batched dual form; otherwise one after the other. ``inner_lr_scaling``,
    if given, must agree with the layers' own (it is a property of the layers).
    """

    def __init__(
        self,
        forward_layer: TTTLayer,
        backward_layer: TTTLayer,
        inner_lr_scaling: str | None = None,
    ):
        super().__init__()
        if forward_layer.d_model != backward_layer.d_model:
            raise ValueError(
                "the forward and backward layers must have the same d_model"
            )
        for layer in (forward_layer, backward_layer):
            if inner_lr_scaling not in (None, layer.inner_lr_scaling):
                raise ValueError(
                    f"inner_lr_scaling {inner_lr_scaling!r} differs from the "
                    f"layers' {layer.inner_lr_scaling!r}"
                )
        self.forward_layer, self.backward_layer = forward_layer, backward_layer
        self.mix = nn.Linear(2 * forward_layer.d_model, forward_layer.d_model)

    def _batchable(self) -> bool:
        f, b = self.forward_layer, self.backward_layer
        return (
            type(f) is type(b)
            and f.head_dim == b.head_dim
            and f.mini_batch_size == b.mini_batch_size
            and f.inner_lr_scaling == b.inner_lr_scaling
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f, b = self.forward_layer, self.backward_layer
        if not self._batchable():
            backward = b(x.flip(1)).flip(1)
            return self.mix(torch.cat([f(x), backward], dim=-1))
        f._check_input(x)
        # both directions as one dual form: the backward layer's heads follow the forward's
        views = [
            torch.cat(pair, dim=1)
            for pair in zip(f.views(x), b.views(x.flip(1)), strict=True)
        ]
        z = f.dual_form(
            *views,
            tuple(
                torch.cat(pair)
                for pair in zip(f.inner_weights(), b.inner_weights(), strict=True)
            ),
            torch.cat([f.inner_norm_weight, b.inner_norm_weight]),
            torch.cat([f.inner_norm_bias, b.inner_norm_bias]),
        )
        z_f, z_b = z.split([f.n_heads, b.n_heads], dim=1)
        normed = torch.cat(
            [f.merge_heads(z_f, False), b.merge_heads(z_b, False).flip(1)], -1
        )
        # mix(out_proj_f(·), out_proj_b(·)) as one linear map: the weights composed
        mix_f, mix_b = self.mix.weight.split(f.d_model, dim=1)
        weight = torch.cat([mix_f @ f.out_proj.weight, mix_b @ b.out_proj.weight], 1)
        bias = self.mix.bias + mix_f @ f.out_proj.bias + mix_b @ b.out_proj.bias
        return F.linear(normed, weight, bias)


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
        inner_lr_scaling: str = "constant",
    ):
        super().__init__()

        def layer():
            return make_ttt_layer(
                layer_type, d_model, n_heads, mini_batch_size, base_lr, inner_lr_scaling
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
    """A stack of :class:`TTTBlock` with a final LayerNorm.

    ``block_kwargs`` go to every :class:`TTTBlock` (``n_heads``, ``layer_type``,
    ``mini_batch_size``, ``base_lr``, ``bidirectional``, ``dropout``,
    ``inner_lr_scaling``).
    """

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

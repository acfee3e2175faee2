"""The "before" of the refactoring: a plain RNN whose hidden state is trained by gradient steps.

This is test-time training in its most literal form, written the way one first
writes it: a Python loop over time steps; at every step the hidden state (the
weight matrix ``W`` of a linear inner model) takes one gradient step, computed
by autograd, on reconstructing the step's value view from its key view; the
readout maps the query view through the updated ``W`` to the features. It is
trained on the observed entries only (reconstruction), has one head, a fixed
inner learning rate, no LayerNorm, looks only at the past and knows nothing of
PyPOTS. The chapter "From a naive TTT RNN to a PyPOTS imputer" turns it into
:class:`~tsgen.imputation.ttt.TTTImputer` step by step.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..config import integer, number
from ..data.validation import as_float_array
from ..runtime import seeded, torch_generator


class NaiveTTTImputer(nn.Module):
    """``forward(X)`` with NaN for missing values → reconstruction ``[B, T, C]`` (a tensor).

    Input at each step: ``[x_t with 0 for missing, observed mask]``. Hidden state
    ``W_t = W_{t−1} − inner_lr · ∇_W ‖k_t W_{t−1} − v_t‖²``; output ``readout(q_t W_t)``.
    """

    def __init__(
        self, n_features: int, d_hidden: int = 16, inner_lr: float = 0.1, seed: int = 0
    ):
        super().__init__()
        n_features = integer(n_features, "n_features")
        d_hidden = integer(d_hidden, "d_hidden")
        self.n_features = n_features
        self.inner_lr = number(inner_lr, "inner_lr", minimum=0)
        # reproducible initialisation that leaves the caller's generators alone
        with seeded(seed):
            self.key = nn.Linear(2 * n_features, d_hidden)
            self.value = nn.Linear(2 * n_features, d_hidden)
            self.query = nn.Linear(2 * n_features, d_hidden)
            self.W0 = nn.Parameter(torch.zeros(d_hidden, d_hidden))
            self.readout = nn.Linear(d_hidden, n_features)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if X.ndim != 3 or X.shape[-1] != self.n_features:
            raise ValueError(
                f"expected X [batch, time, {self.n_features}]; "
                f"got shape {tuple(X.shape)}"
            )
        mask = (~torch.isnan(X)).to(X.dtype)
        u = torch.cat([torch.nan_to_num(X), mask], dim=-1)
        outputs = []
        # the hidden-state update is a gradient step, even at inference
        with torch.enable_grad():
            W = self.W0.expand(X.shape[0], -1, -1)
            for t in range(X.shape[1]):
                k, v, q = self.key(u[:, t]), self.value(u[:, t]), self.query(u[:, t])
                loss = (torch.einsum("bi,bij->bj", k, W) - v).pow(2).sum()
                (grad,) = torch.autograd.grad(loss, W, create_graph=self.training)
                W = W - self.inner_lr * grad
                outputs.append(torch.einsum("bi,bij->bj", q, W))
        reconstruction = self.readout(torch.stack(outputs, dim=1))
        return reconstruction if self.training else reconstruction.detach()

    def impute(self, X) -> np.ndarray:
        """``X`` ``[n, T, C]`` (NaN = missing) with the gaps filled by the reconstruction."""
        arr = as_float_array(X, "X", ndim=3)
        was_training = self.training
        self.eval()
        try:
            x = torch.as_tensor(arr, dtype=torch.float32)
            reconstruction = self(x).numpy()
        finally:
            self.train(was_training)
        if not np.isfinite(reconstruction).all():
            raise ValueError(
                "NaiveTTTImputer's reconstruction is not finite: the weights "
                "or the scale of X are out of range"
            )
        return np.where(np.isnan(arr), reconstruction, arr)


def train_naive(
    model: NaiveTTTImputer,
    X,
    epochs: int = 5,
    lr: float = 1e-2,
    batch_size: int = 32,
    seed: int = 0,
) -> list[float]:
    """Fit on the observed entries of ``X`` (mean squared reconstruction error); returns the loss per epoch.

    No validation split, no held-out entries, no early stopping: the naive
    recipe, kept as the chapter's starting point. ``epochs`` and
    ``batch_size`` are whole numbers, ``lr`` a finite positive number; a
    non-finite loss (diverging training) raises instead of being returned.
    """
    epochs = integer(epochs, "epochs", minimum=0)
    batch_size = integer(batch_size, "batch_size")
    lr = number(lr, "lr", minimum=0, low_open=True)
    arr = torch.as_tensor(as_float_array(X, "X", ndim=3), dtype=torch.float32)
    if arr.shape[-1] != model.n_features:
        raise ValueError(
            f"X has {arr.shape[-1]} features; the "
            f"model was built for {model.n_features}"
        )
    generator = torch_generator(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    observed = ~torch.isnan(arr)
    losses = []
    model.train()
    for epoch in range(epochs):
        order, total = torch.randperm(len(arr), generator=generator), 0.0
        for start in range(0, len(arr), batch_size):
            idx = order[start : start + batch_size]
            reconstruction = model(arr[idx])
            err = (reconstruction - torch.nan_to_num(arr[idx])).pow(2) * observed[idx]
            loss = err.sum() / observed[idx].sum().clamp_min(1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        if not np.isfinite(total):
            raise ValueError(
                f"naive training diverged in epoch {epoch + 1} (loss {total}); "
                f"lower lr={lr:g}"
            )
        losses.append(total / len(arr))
    model.eval()
    return losses

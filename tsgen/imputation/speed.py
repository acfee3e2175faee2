"""Measuring speed: wall-clock time of a training step or a forward pass, and the per-token TTT loop.

:func:`per_token_reference` is the primal form of a TTT layer (one token at a
time, inner gradients by autograd): the tests check the dual form against it
and the speed comparison times the two.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from ..data import add_missingness
from .layers import TTTLayer


def training_batch(
    X: np.ndarray, rate: float = 0.2, seed: int = 0
) -> dict[str, torch.Tensor]:
    """A PyPOTS training batch from complete windows ``X``: ``rate`` of the entries hidden for MIT."""
    data = add_missingness(X, "point", rate, seed=seed)
    as_tensor = lambda a: torch.as_tensor(np.nan_to_num(a), dtype=torch.float32)  # noqa: E731
    return {
        "X": as_tensor(data["X"]),
        "missing_mask": as_tensor(data["missing_mask"]),
        "X_ori": as_tensor(data["X_ori"]),
        "indicating_mask": as_tensor(data["indicating_mask"]),
    }


def _synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def step_seconds(
    loss_fn: Callable[[], torch.Tensor], repeats: int = 5, warmup: int = 1
) -> float:
    """Median seconds of ``loss_fn().backward()`` over ``repeats`` runs, after ``warmup`` runs."""
    if repeats < 1 or warmup < 0:
        raise ValueError(
            f"repeats must be >= 1 and warmup >= 0; got {repeats}, {warmup}"
        )
    times = []
    for i in range(warmup + repeats):
        started = time.perf_counter()
        loss_fn().backward()
        _synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def forward_seconds(
    fn: Callable[[], object], repeats: int = 5, warmup: int = 1
) -> float:
    """Median seconds of ``fn()`` without gradients over ``repeats`` runs, after ``warmup`` runs."""
    if repeats < 1 or warmup < 0:
        raise ValueError(
            f"repeats must be >= 1 and warmup >= 0; got {repeats}, {warmup}"
        )
    times = []
    for i in range(warmup + repeats):
        started = time.perf_counter()
        with torch.no_grad():
            fn()
        _synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def imputer_step_seconds(
    imputer, batch: dict, repeats: int = 5, warmup: int = 1
) -> float:
    """Forward + backward of a PyPOTS imputer's model core on one batch with its own training loss."""
    model = imputer.model
    model.train()
    device = next(model.parameters()).device
    inputs = {k: v.to(device) for k, v in batch.items()}
    try:
        return step_seconds(
            lambda: model(inputs, calc_criterion=True)["loss"], repeats, warmup
        )
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()


def per_token_reference(layer: TTTLayer, x: torch.Tensor) -> torch.Tensor:
    """The primal form of ``layer``: one token at a time, gradients by autograd, weights materialised.

    Mini-batch TTT semantics: inside an inner mini-batch every gradient is taken
    at the weights from the end of the previous mini-batch, and the weights used
    for token t are those after the updates of tokens s <= t. It computes the
    layer's forward pass only (no gradient to the outer weights).
    """
    with torch.no_grad():
        q, k, v, eta = layer.views(x)
        base = [s.clone() for s in layer.initial_state(x.shape[0])]
    length, size = x.shape[1], layer.mini_batch_size
    outputs = []
    for start in range(0, length, size):
        current = list(base)
        for t in range(start, min(start + size, length)):
            at_base = [s.detach().requires_grad_(True) for s in base]
            token = slice(t, t + 1)
            with torch.enable_grad():
                out = layer.inner_norm(layer.inner_model(at_base, k[:, :, token]))[0]
                loss = 0.5 * (out - (v - k)[:, :, token]).pow(2).sum()
                grads = torch.autograd.grad(loss, at_base)
            current = [
                w - eta[:, :, t, None, None] * g
                for w, g in zip(current, grads, strict=True)
            ]
            with torch.no_grad():
                inner = layer.inner_model(current, q[:, :, token])
                z = q[:, :, token] + layer.inner_norm(inner)[0]
            outputs.append(z)
        base = current
    with torch.no_grad():
        return layer.merge_heads(torch.cat(outputs, dim=2))

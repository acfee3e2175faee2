"""Measuring speed: wall-clock time of a training step or a forward pass, and the per-token TTT loop.

:func:`per_token_reference` is the primal form of a TTT layer (one token at a
time, inner gradients by autograd): the tests check the dual form against it
and the speed comparison times the two.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial

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
    return interleaved_step_seconds({"model": imputer}, batch, repeats, warmup)["model"]


def interleaved_step_seconds(
    imputers: dict, batch: dict, repeats: int = 5, warmup: int = 1
) -> dict[str, float]:
    """:func:`imputer_step_seconds` of several imputers, timed in turns.

    Each round times every model once, so a change in the machine's load
    (other processes) reaches all of them alike and their ratios stay fair.
    Returns the median seconds per name; the models are left in eval mode with
    no gradients.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(
            f"repeats must be >= 1 and warmup >= 0; got {repeats}, {warmup}"
        )
    losses = {}
    for name, imputer in imputers.items():
        model = imputer.model
        model.train()
        device = next(model.parameters()).device
        inputs = {k: v.to(device) for k, v in batch.items()}
        losses[name] = partial(_training_loss, model, inputs)
    times = {name: [] for name in imputers}
    try:
        for i in range(warmup + repeats):
            for name, loss_fn in losses.items():
                seconds = step_seconds(loss_fn, repeats=1, warmup=0)
                if i >= warmup:
                    times[name].append(seconds)
    finally:
        for imputer in imputers.values():
            imputer.model.zero_grad(set_to_none=True)
            imputer.model.eval()
    return {name: statistics.median(t) for name, t in times.items()}


def _training_loss(model, inputs: dict) -> torch.Tensor:
    return model(inputs, calc_criterion=True)["loss"]


def per_token_reference(layer: TTTLayer, x: torch.Tensor) -> torch.Tensor:
    """The primal form of ``layer``: one token at a time, gradients by autograd, weights materialised.

    Mini-batch TTT semantics: inside an inner mini-batch every gradient is taken
    at the weights ``θ_0`` from the end of the previous mini-batch, and the
    weights used for token ``t`` (1-based inside the mini-batch) are
    ``θ_t = θ_0 − c_t Σ_{s≤t} η_s ∇ℓ(θ_0; x_s)`` with ``c_t = 1`` or, for
    ``inner_lr_scaling="inverse_position"``, ``c_t = 1/t``; the next mini-batch
    starts from the last ``θ_t``. It computes the layer's forward pass only (no
    gradient to the outer weights).
    """
    with torch.no_grad():
        q, k, v, eta = layer.views(x)
        base = [s.clone() for s in layer.initial_state(x.shape[0])]
    inverse = layer.inner_lr_scaling == "inverse_position"
    length, size = x.shape[1], layer.mini_batch_size
    outputs = []
    for start in range(0, length, size):
        summed = [torch.zeros_like(w) for w in base]
        for t in range(start, min(start + size, length)):
            at_base = [s.detach().requires_grad_(True) for s in base]
            token = slice(t, t + 1)
            with torch.enable_grad():
                out = layer.inner_norm(layer.inner_model(at_base, k[:, :, token]))[0]
                loss = 0.5 * (out - (v - k)[:, :, token]).pow(2).sum()
                grads = torch.autograd.grad(loss, at_base)
            summed = [
                total + eta[:, :, t, None, None] * g
                for total, g in zip(summed, grads, strict=True)
            ]
            scale = 1.0 / (t - start + 1) if inverse else 1.0
            current = [w - scale * total for w, total in zip(base, summed, strict=True)]
            with torch.no_grad():
                inner = layer.inner_model(current, q[:, :, token])
                z = q[:, :, token] + layer.inner_norm(inner)[0]
            outputs.append(z)
        base = current
    with torch.no_grad():
        return layer.merge_heads(torch.cat(outputs, dim=2))

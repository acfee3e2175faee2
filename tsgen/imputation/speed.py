"""Wall-clock time of one training step (forward + backward), for speed comparisons measured in one run."""

from __future__ import annotations

import statistics
import time
from typing import Callable

import numpy as np
import torch

from ..data import add_missingness


def training_batch(X: np.ndarray, rate: float = 0.2, seed: int = 0) -> dict[str, torch.Tensor]:
    """A PyPOTS training batch from complete windows ``X``: ``rate`` of the entries hidden for MIT."""
    data = add_missingness(X, "point", rate, seed=seed)
    as_tensor = lambda a: torch.as_tensor(np.nan_to_num(a), dtype=torch.float32)  # noqa: E731
    return {"X": as_tensor(data["X"]), "missing_mask": as_tensor(data["missing_mask"]),
            "X_ori": as_tensor(data["X_ori"]), "indicating_mask": as_tensor(data["indicating_mask"])}


def step_seconds(loss_fn: Callable[[], torch.Tensor], repeats: int = 5, warmup: int = 1) -> float:
    """Median seconds of ``loss_fn().backward()`` over ``repeats`` runs, after ``warmup`` runs."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0; got {repeats}, {warmup}")
    times = []
    for i in range(warmup + repeats):
        started = time.perf_counter()
        loss_fn().backward()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def imputer_step_seconds(imputer, batch: dict, repeats: int = 5, warmup: int = 1) -> float:
    """Forward + backward of a PyPOTS imputer's model core on one batch with its own training loss."""
    model = imputer.model
    model.train()
    device = next(model.parameters()).device
    inputs = {k: v.to(device) for k, v in batch.items()}
    try:
        return step_seconds(lambda: model(inputs, calc_criterion=True)["loss"], repeats, warmup)
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()

"""Data sets of the TTT imputer: SAITS's (MIT masks drawn per sample, every time a batch is made).

:func:`check_set` is the gate every public entry point goes through, so bad
input fails with a message instead of producing NaN deep inside training.
"""

from __future__ import annotations

import numpy as np
from pypots.imputation.saits.data import DatasetForSAITS

from ...data.validation import as_float_array


class DatasetForTTTImputer(DatasetForSAITS):
    """SAITS's data set: in training, ``rate`` of the observed values are hidden afresh for MIT."""


def check_set(
    data,
    n_steps: int,
    n_features: int,
    name: str = "test_set",
    need_truth: bool = False,
) -> dict:
    """Validate a PyPOTS data dict and return it with float arrays.

    ``X`` must be ``[n_samples, n_steps, n_features]`` with NaN for missing values,
    no infinite value and no all-NaN sample; ``X_ori`` (required when
    ``need_truth``) must have the same shape.
    """
    if not isinstance(data, dict) or "X" not in data:
        raise ValueError(f"{name} must be a dict with an 'X' entry (PyPOTS format)")
    X = as_float_array(data["X"], f"{name}['X']", ndim=3)
    if X.shape[1:] != (n_steps, n_features):
        raise ValueError(
            f"{name}['X'] has {X.shape[1]} steps and {X.shape[2]} features; "
            f"the model was built for {n_steps} steps and {n_features} features"
        )
    out = {**data, "X": X.astype(np.float32)}
    if need_truth or "X_ori" in data:
        if "X_ori" not in data:
            raise ValueError(
                f"{name} must contain 'X_ori' (the values "
                "before masking) to score the imputation"
            )
        X_ori = np.asarray(data["X_ori"], dtype=float)
        if X_ori.shape != X.shape:
            raise ValueError(
                f"{name}['X_ori'] has shape {X_ori.shape}; {name}['X'] has {X.shape}"
            )
        if np.isinf(X_ori).any():
            raise ValueError(
                f"{name}['X_ori'] holds infinite values; use NaN for missing values"
            )
        out["X_ori"] = X_ori.astype(np.float32)
    return out

"""Imputation errors over the values that were held out, from PyPOTS.

PyPOTS (``pypots.nn.functional``) already has the masked errors that the
imputation literature reports (SAITS, TSI-Bench); we call them rather than
re-implement them, and only add the checks that turn a silent NaN into an
error. Use ``indicating_mask`` of :func:`tsgen.data.add_missingness` as the mask:
it marks the values that were observed and then removed.
"""

from __future__ import annotations

import numpy as np

NAMES = ("mae", "mse", "rmse", "mre")


def imputation_errors(imputed, truth, mask) -> dict[str, float]:
    """MAE, MSE, RMSE and MRE of ``imputed`` against ``truth`` where ``mask`` is 1.

    ``truth`` may hold NaN outside the mask (values never observed); inside
    the mask it must be complete. ``imputed`` must be complete everywhere
    the mask is 1. MRE is PyPOTS's: sum |error| / sum |truth| over the mask;
    where the truth is 0 at every masked value it is undefined (PyPOTS would
    divide by 1e-12 and report ~1e13), and that is a ValueError.
    """
    from .. import _pypots  # noqa: F401  (no banner; before pypots)

    # isort: split
    from pypots.nn.functional import calc_mae, calc_mre, calc_mse, calc_rmse

    imputed, truth, mask = (np.asarray(a, dtype=float) for a in (imputed, truth, mask))
    if not imputed.shape == truth.shape == mask.shape:
        raise ValueError(
            f"imputed {imputed.shape}, truth {truth.shape} "
            f"and mask {mask.shape} must have one shape"
        )
    if not np.isin(mask, (0.0, 1.0)).all():
        raise ValueError("mask must hold only 0 and 1")
    if mask.sum() == 0:
        raise ValueError("mask selects no value to score")
    held = mask == 1
    for name, arr in (("imputed", imputed), ("truth", truth)):
        if not np.isfinite(arr[held]).all():
            raise ValueError(f"{name} has NaN or infinite values where mask is 1")
    if not np.abs(truth[held]).sum() > 0:
        raise ValueError(
            "truth is 0 at every value the mask selects, so MRE (error relative "
            "to the truth) is undefined; score such data with MAE or RMSE"
        )
    # outside the mask the values do not count, but NaN * 0 would still be NaN
    imputed, truth = np.where(held, imputed, 0.0), np.where(held, truth, 0.0)
    errors = {
        "mae": calc_mae(imputed, truth, mask),
        "mse": calc_mse(imputed, truth, mask),
        "rmse": calc_rmse(imputed, truth, mask),
        "mre": calc_mre(imputed, truth, mask),
    }
    return {k: float(v) for k, v in errors.items()}

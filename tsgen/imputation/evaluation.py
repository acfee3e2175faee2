"""The TTT imputer beside PyPOTS's baselines, in one code path.

:func:`imputation_splits` makes time-ordered train / validation / test windows
of a TimeGAN data set with point missingness (the scaler sees only training
windows); :func:`make_imputer` builds any of :data:`MODELS` at one size and
training budget; :func:`fit_and_score` trains it (validation split for early
stopping) and scores the held-out test entries; :func:`compare` loops over data
sets, missing rates, seeds and models and returns one row per run.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
from pypots.imputation import BRITS, LOCF, SAITS, Lerp, Mean, Transformer
from pypots.imputation.base import BaseNNImputer
from pypots.optim.adam import Adam

from ..data import MinMaxScaler, add_missingness, load_timegan, windowed_splits
from ..metrics.imputation import imputation_errors
from .ttt import TTTImputer
from .ttt.model import quiet_pypots, seeded

MODELS = ("TTTImputer", "SAITS", "Transformer", "BRITS", "LOCF", "Lerp", "Mean")
LABELS = {"Lerp": "linear interpolation", "Mean": "mean"}


def _evenly(windows: np.ndarray, limit: int | None) -> np.ndarray:
    """At most ``limit`` windows spread evenly over the split (all of them when ``limit`` is None)."""
    if limit is None or len(windows) <= limit:
        return windows
    return windows[np.unique(np.linspace(0, len(windows) - 1, int(limit)).round().astype(int))]


def imputation_splits(name: str, rate: float, seed: int = 0, length: int = 24, stride: int = 1,
                      max_windows: dict | None = None, fractions=(0.7, 0.1, 0.2)) -> dict[str, dict]:
    """``{"train", "val", "test"}`` PyPOTS dicts of a TimeGAN data set with ``rate`` point missingness.

    The series is split in time order before windowing (no test time step is
    seen in training), min-max scaled with the training split's range, and
    ``max_windows`` (e.g. ``{"train": 512, "test": 256}``) keeps an even subset
    of a split's windows. Each split gets its own missingness draw from ``seed``.
    """
    series = load_timegan(name).to_numpy(dtype=float)
    windows = windowed_splits(series, length, stride, fractions)
    scaler = MinMaxScaler().fit(windows["train"])
    limits = max_windows or {}
    unknown = set(limits) - set(windows)
    if unknown:
        raise ValueError(f"max_windows names unknown split(s) {sorted(unknown)}; splits are {sorted(windows)}")
    return {split: add_missingness(scaler.transform(_evenly(w, limits.get(split))), "point", rate, seed=1000 * seed + i)
            for i, (split, w) in enumerate(windows.items())}


def make_imputer(model: str, n_steps: int, n_features: int, *, d_model: int = 64, n_layers: int = 2,
                 n_heads: int = 4, d_ffn: int = 128, epochs: int = 100, patience: int | None = 10,
                 batch_size: int = 32, lr: float = 1e-3, device=None, seed: int = 0, **ttt_params):
    """One imputer of :data:`MODELS` at a shared size; ``ttt_params`` go to :class:`TTTImputer` only."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {MODELS}")
    if ttt_params and model != "TTTImputer":
        raise ValueError(f"{sorted(ttt_params)} are TTTImputer parameters; {model} does not take them")
    budget = dict(epochs=epochs, patience=patience, batch_size=batch_size, device=device)
    attention = dict(n_layers=n_layers, d_model=d_model, n_heads=n_heads, d_k=d_model // n_heads,
                     d_v=d_model // n_heads, d_ffn=d_ffn)
    with quiet_pypots(), seeded(seed):
        if model == "TTTImputer":
            return TTTImputer(n_steps, n_features, n_layers=n_layers, d_model=d_model, n_heads=n_heads, d_ffn=d_ffn,
                              lr=lr, seed=seed, **budget, **ttt_params)
        if model in ("SAITS", "Transformer"):
            cls = SAITS if model == "SAITS" else Transformer
            return cls(n_steps, n_features, **attention, optimizer=Adam(lr=lr), model_saving_strategy=None,
                       verbose=False, **budget)
        if model == "BRITS":
            return BRITS(n_steps, n_features, rnn_hidden_size=d_model, optimizer=Adam(lr=lr),
                         model_saving_strategy=None, verbose=False, **budget)
        if model == "LOCF":
            return LOCF(first_step_imputation="backward")
        return Lerp() if model == "Lerp" else Mean()


def window_stats(X: np.ndarray, floor: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (plus ``floor``) of each window's observed values, per feature.

    Only observed entries count, so the statistics are available at test time;
    a feature with no observed value in a window gets mean 0 and scale ``floor``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices are handled below
        mean = np.nan_to_num(np.nanmean(X, axis=1, keepdims=True))
        std = np.nan_to_num(np.nanstd(X, axis=1, keepdims=True))
    return mean, std + floor


def fit_and_score(imputer, splits: dict, seed: int = 0, window_norm: bool = True, fit: bool = True,
                  **impute_kwargs) -> dict:
    """Train (deep models: ``train`` for fitting, ``val`` for early stopping), impute ``test``, score it.

    ``window_norm`` standardises every window by its own observed values before
    the imputer sees it and maps the imputation back (instance normalisation,
    as RevIN does): a time-ordered split of a trending series (stock prices)
    otherwise puts the test windows outside the range the networks were trained
    on. It is applied to every model alike; linear interpolation and LOCF are
    unchanged by it. ``fit=False`` scores an imputer that is already trained.
    Returns MAE / MSE / RMSE / MRE on the test entries held out by the
    missingness (``indicating_mask``), in the units of ``splits``, and the fit
    and impute times in seconds.
    """

    def scaled(split, keys=("X",)):
        mean, scale = window_stats(splits[split]["X"]) if window_norm else (0.0, 1.0)
        return {k: (splits[split][k] - mean) / scale for k in keys}, mean, scale

    test = splits["test"]
    started = time.perf_counter()
    with quiet_pypots(), seeded(seed):
        if fit and isinstance(imputer, BaseNNImputer):
            imputer.fit(scaled("train")[0], scaled("val", ("X", "X_ori"))[0])
        fitted = time.perf_counter()
        test_in, mean, scale = scaled("test")
        imputed = imputer.impute(test_in, **impute_kwargs) * scale + mean
    done = time.perf_counter()
    errors = imputation_errors(imputed, test["X_ori"], test["indicating_mask"])
    return {**errors, "fit_s": fitted - started, "impute_s": done - fitted}


def compare(datasets, rates, seeds, models=MODELS, *, length: int = 24, stride: int = 1,
            max_windows: dict | None = None, size: dict | None = None, ttt_params: dict | None = None,
            window_norm: bool = True, device=None, progress: bool = True) -> pd.DataFrame:
    """One row per (data set, missing rate, seed, model): errors on held-out test entries and times.

    ``size`` (``d_model``, ``n_layers``, ``n_heads``, ``d_ffn``, ``epochs``,
    ``patience``, ``batch_size``, ``lr``) is shared by every deep model;
    ``ttt_params`` are extra :class:`TTTImputer` settings.
    """
    from tqdm.auto import tqdm

    runs = [(d, r, s) for d in datasets for r in rates for s in seeds]
    rows = []
    for dataset, rate, seed in tqdm(runs, desc="compare", mininterval=5, disable=not progress):
        splits = imputation_splits(dataset, rate, seed, length, stride, max_windows)
        n_features = splits["train"]["X"].shape[-1]
        for model in models:
            extra = (ttt_params or {}) if model == "TTTImputer" else {}
            imputer = make_imputer(model, length, n_features, device=device, seed=seed, **(size or {}), **extra)
            rows.append({"dataset": dataset, "missing_rate": rate, "seed": seed, "model": LABELS.get(model, model),
                         **fit_and_score(imputer, splits, seed, window_norm)})
    return pd.DataFrame(rows)


def summarize(results: pd.DataFrame, metrics=("mae", "mse", "mre"), by=("dataset", "missing_rate", "model")) -> pd.DataFrame:
    """Mean and standard deviation over seeds: columns ``<metric>_mean``, ``<metric>_std``."""
    grouped = results.groupby(list(by), sort=False)[list(metrics)]
    mean, std = grouped.mean().add_suffix("_mean"), grouped.std(ddof=1).fillna(0.0).add_suffix("_std")
    return pd.concat([mean, std], axis=1)[[f"{m}_{s}" for m in metrics for s in ("mean", "std")]]

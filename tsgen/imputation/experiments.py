"""The imputation chapters' protocols as functions: the TTT imputer beside PyPOTS's baselines, in one code path.

Data: :func:`imputation_splits` makes time-ordered train / validation / test
windows of a TimeGAN data set with point missingness (the scaler sees only
training windows); :func:`split_summary` describes them; :func:`standardised`
scales every window by its own observed values (:func:`window_stats`).

Models: :func:`make_imputer` builds any of :data:`MODELS` at one size and
training budget; :func:`fit_and_score` trains one (validation split for early
stopping) and scores the held-out test entries; :func:`score_imputations`
scores imputations already made.

Experiments (one row per run, numeric columns; summarise over seeds with
``tsgen.book.tables.summarize``):

* :func:`compare`: data sets × missing rates × seeds × models (chapter 3);
* :func:`ablations` over :func:`ablation_variants`, with :func:`adaptation_sweep`
  on the reference model (chapter 3);
* :func:`direction_sensitivity`: what one output step of a forward-only and a
  bidirectional TTT layer depends on (chapter 2);
* :func:`speed_comparison` and :func:`dual_form_comparison`: training-step time
  against SAITS, and the dual form against the per-token loop (chapter 3 and
  ``benchmarks/imputation_speed.py``).
"""

from __future__ import annotations

import time
import warnings
from functools import partial

import numpy as np
import pandas as pd
import torch
from pypots.imputation import BRITS, LOCF, SAITS, Lerp, Mean, Transformer
from pypots.imputation.base import BaseNNImputer
from pypots.optim.adam import Adam

from .._pypots import PYPOTS_LOG
from ..data import (
    MinMaxScaler,
    add_missingness,
    load_timegan,
    make_sines,
    windowed_splits,
)
from ..metrics.imputation import imputation_errors
from ..runtime import derive_seed, quiet, resolve_device, seeded, torch_generator
from ..runtime import progress as progress_bar
from .layers import BidirectionalTTT, TTTLinear, make_ttt_layer
from .speed import (
    forward_seconds,
    imputer_step_seconds,
    per_token_reference,
    training_batch,
)
from .ttt import TTTImputer, TTTImputerConfig

MODELS = ("TTTImputer", "SAITS", "Transformer", "BRITS", "LOCF", "Lerp", "Mean")
LABELS = {"Lerp": "linear interpolation", "Mean": "mean"}
LAYER_NAMES = {"linear": "TTT-Linear", "mlp": "TTT-MLP"}


# ---------------------------------------- data


def _evenly(windows: np.ndarray, limit: int | None) -> np.ndarray:
    """At most ``limit`` windows spread evenly over the split (all of them when ``limit`` is None)."""
    if limit is None or len(windows) <= limit:
        return windows
    return windows[
        np.unique(np.linspace(0, len(windows) - 1, int(limit)).round().astype(int))
    ]


def imputation_splits(
    name: str,
    rate: float,
    seed: int = 0,
    length: int = 24,
    stride: int = 1,
    max_windows: dict | None = None,
    fractions=(0.7, 0.1, 0.2),
) -> dict[str, dict]:
    """``{"train", "val", "test"}`` PyPOTS dicts of a TimeGAN data set with ``rate`` point missingness.

    The series is split in time order before windowing (no test time step is
    seen in training), min-max scaled with the training split's range, and
    ``max_windows`` (e.g. ``{"train": 512, "test": 256}``) keeps an even subset
    of a split's windows (a limit above a split's size warns, naming both, and
    keeps them all). Each split gets its own missingness draw from ``seed``.
    """
    series = load_timegan(name).to_numpy(dtype=float)
    windows = windowed_splits(series, length, stride, fractions)
    scaler = MinMaxScaler().fit(windows["train"])
    limits = max_windows or {}
    unknown = set(limits) - set(windows)
    if unknown:
        raise ValueError(
            "max_windows names unknown split(s) "
            f"{sorted(unknown)}; splits are {sorted(windows)}"
        )
    for split, w in windows.items():
        if limits.get(split) is not None and limits[split] > len(w):
            warnings.warn(
                f"max_windows[{split!r}]={limits[split]} asks for more windows than "
                f"the {split} split of {name} has ({len(w)} of length {length}, "
                f"stride {stride}): using all {len(w)}",
                stacklevel=2,
            )
    return {
        split: add_missingness(
            scaler.transform(_evenly(w, limits.get(split))),
            "point",
            rate,
            seed=1000 * seed + i,
        )
        for i, (split, w) in enumerate(windows.items())
    }


def split_summary(
    datasets,
    rate: float,
    seed: int = 0,
    length: int = 24,
    max_windows: dict | None = None,
) -> pd.DataFrame:
    """One row per data set and split: windows, steps, features, share of entries missing and held out."""
    rows = []
    for name in datasets:
        for split, data in imputation_splits(
            name, rate, seed, length, max_windows=max_windows
        ).items():
            n, steps, features = data["X"].shape
            rows.append(
                {
                    "dataset": name,
                    "split": split,
                    "windows": n,
                    "steps": steps,
                    "features": features,
                    "missing": float(np.isnan(data["X"]).mean()),
                    "held_out": float(data["indicating_mask"].mean()),
                }
            )
    return pd.DataFrame(rows)


def window_stats(X: np.ndarray, floor: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (plus ``floor``) of each window's observed values, per feature.

    Only observed entries count, so the statistics are available at test time;
    a feature with no observed value in a window gets mean 0 and scale ``floor``.
    """
    empty = [
        (RuntimeWarning, "Mean of empty slice"),
        (RuntimeWarning, "Degrees of freedom <= 0"),
    ]
    with quiet(warnings_=empty):  # all-NaN slices are handled below
        mean = np.nan_to_num(np.nanmean(X, axis=1, keepdims=True))
        std = np.nan_to_num(np.nanstd(X, axis=1, keepdims=True))
    return mean, std + floor


def standardised(data: dict, keys=("X", "X_ori")) -> dict:
    """``data`` with ``keys`` standardised by each window's observed values (:func:`window_stats` of ``X``).

    Instance normalisation, as RevIN does; the other entries (masks) are kept.
    """
    mean, scale = window_stats(data["X"])
    return {**data, **{k: (data[k] - mean) / scale for k in keys if k in data}}


# ---------------------------------------- models


def make_imputer(
    model: str,
    n_steps: int,
    n_features: int,
    *,
    d_model: int = 64,
    n_layers: int = 2,
    n_heads: int = 4,
    d_ffn: int = 128,
    epochs: int = 100,
    patience: int | None = 10,
    batch_size: int = 32,
    lr: float = 1e-3,
    device: str = "cpu",
    seed: int = 0,
    **ttt_params,
):
    """One imputer of :data:`MODELS` at a shared size; ``ttt_params`` are :class:`TTTImputerConfig` fields."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {MODELS}")
    if ttt_params and model != "TTTImputer":
        raise ValueError(
            f"{sorted(ttt_params)} are TTTImputer "
            f"parameters; {model} does not take them"
        )
    device = resolve_device(device)
    if model == "TTTImputer":
        config = TTTImputerConfig(
            n_steps,
            n_features,
            n_layers=n_layers,
            d_model=d_model,
            n_heads=n_heads,
            d_ffn=d_ffn,
            epochs=epochs,
            patience=patience,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            **ttt_params,
        )
        return TTTImputer(config, device=device)
    budget = dict(
        epochs=epochs, patience=patience, batch_size=batch_size, device=device
    )
    attention = dict(
        n_layers=n_layers,
        d_model=d_model,
        n_heads=n_heads,
        d_k=d_model // n_heads,
        d_v=d_model // n_heads,
        d_ffn=d_ffn,
    )
    # PyPOTS initialises from the global generator
    with quiet(loggers=[PYPOTS_LOG]), seeded(seed, device):
        if model in ("SAITS", "Transformer"):
            cls = SAITS if model == "SAITS" else Transformer
            return cls(
                n_steps,
                n_features,
                **attention,
                optimizer=Adam(lr=lr),
                model_saving_strategy=None,
                verbose=False,
                **budget,
            )
        if model == "BRITS":
            return BRITS(
                n_steps,
                n_features,
                rnn_hidden_size=d_model,
                optimizer=Adam(lr=lr),
                model_saving_strategy=None,
                verbose=False,
                **budget,
            )
        if model == "LOCF":
            return LOCF(first_step_imputation="backward")
        return Lerp() if model == "Lerp" else Mean()


def fit_and_score(
    imputer,
    splits: dict,
    seed: int = 0,
    window_norm: bool = True,
    fit: bool = True,
    **impute_kwargs,
) -> dict:
    """Train (deep models: ``train`` for fitting, ``val`` for early stopping), impute ``test``, score it.

    ``window_norm`` standardises every window by its own observed values before
    the imputer sees it and maps the imputation back (instance normalisation,
    as RevIN does): a time-ordered split of a trending series (stock prices)
    otherwise puts the test windows outside the range the networks were trained
    on. It is applied to every model alike; linear interpolation and LOCF are
    unchanged by it. ``fit=False`` scores an imputer that is already trained
    (``splits`` then needs only ``test``). Returns MAE / MSE / RMSE / MRE on the
    test entries held out by the missingness (``indicating_mask``), in the units
    of ``splits``, and the fit and impute times in seconds.
    """

    def scaled(split):
        return standardised(splits[split]) if window_norm else splits[split]

    test = splits["test"]
    device = getattr(imputer, "device", None)
    started = time.perf_counter()
    # PyPOTS's baselines draw from the global generators:
    # seeded, so runs repeat and the caller's state is kept
    with (
        quiet(loggers=[PYPOTS_LOG]),
        seeded(seed, None if isinstance(device, list) else device),
    ):
        if fit and isinstance(imputer, BaseNNImputer):
            val = scaled("val")
            imputer.fit(
                {"X": scaled("train")["X"]}, {"X": val["X"], "X_ori": val["X_ori"]}
            )
        fitted = time.perf_counter()
        mean, scale = window_stats(test["X"]) if window_norm else (0.0, 1.0)
        imputed = (
            imputer.impute({"X": (test["X"] - mean) / scale}, **impute_kwargs) * scale
            + mean
        )
    done = time.perf_counter()
    errors = imputation_errors(imputed, test["X_ori"], test["indicating_mask"])
    return {**errors, "fit_s": fitted - started, "impute_s": done - fitted}


def score_imputations(imputations: dict, data: dict) -> pd.DataFrame:
    """One row per named imputation of ``data["X"]``: its errors on ``data``'s held-out entries."""
    return pd.DataFrame(
        [
            {
                "model": name,
                **imputation_errors(imputed, data["X_ori"], data["indicating_mask"]),
            }
            for name, imputed in imputations.items()
        ]
    )


# ---------------------------------------- chapter 3: comparison and ablations


def compare(
    datasets,
    rates,
    seeds,
    models=MODELS,
    *,
    length: int = 24,
    stride: int = 1,
    max_windows: dict | None = None,
    size: dict | None = None,
    ttt_params: dict | None = None,
    window_norm: bool = True,
    device: str = "cpu",
    progress: bool = False,
) -> pd.DataFrame:
    """One row per (data set, missing rate, seed, model): errors on held-out test entries and times.

    ``size`` (``d_model``, ``n_layers``, ``n_heads``, ``d_ffn``, ``epochs``,
    ``patience``, ``batch_size``, ``lr``) is shared by every deep model;
    ``ttt_params`` are extra :class:`TTTImputerConfig` fields.
    """
    runs = [(d, r, s) for d in datasets for r in rates for s in seeds]
    rows = []
    for dataset, rate, seed in progress_bar(runs, enabled=progress, desc="compare"):
        splits = imputation_splits(dataset, rate, seed, length, stride, max_windows)
        n_features = splits["train"]["X"].shape[-1]
        for model in models:
            extra = (ttt_params or {}) if model == "TTTImputer" else {}
            imputer = make_imputer(
                model,
                length,
                n_features,
                device=device,
                seed=seed,
                **(size or {}),
                **extra,
            )
            rows.append(
                {
                    "dataset": dataset,
                    "missing_rate": rate,
                    "seed": seed,
                    "model": LABELS.get(model, model),
                    **fit_and_score(imputer, splits, seed, window_norm),
                }
            )
    return pd.DataFrame(rows)


def ablation_variants(
    layer_type: str = "linear",
    bidirectional: bool = True,
    mini_batch_sizes=(),
    loss_weights=(),
) -> dict[str, dict]:
    """``{name: TTTImputerConfig changes}``: the reference, then one setting changed at a time.

    The other layer type, each inner mini-batch size of ``mini_batch_sizes``,
    the other direction setting, and each ``(ORT_weight, MIT_weight)`` pair of
    ``loss_weights``.
    """
    other = "mlp" if layer_type == "linear" else "linear"
    variants = {"reference": {}, LAYER_NAMES[other]: {"layer_type": other}}
    variants.update(
        {f"inner mini-batch {b}": {"mini_batch_size": b} for b in mini_batch_sizes}
    )
    variants["unidirectional" if bidirectional else "bidirectional"] = {
        "bidirectional": not bidirectional
    }
    variants.update(
        {
            f"ORT {ort:g} / MIT {mit:g}": {"ORT_weight": ort, "MIT_weight": mit}
            for ort, mit in loss_weights
        }
    )
    return variants


def adaptation_sweep(
    imputer: TTTImputer,
    splits: dict,
    steps,
    *,
    lr: float = 1e-3,
    parameters: str = "all",
    seed: int = 0,
    window_norm: bool = True,
) -> pd.DataFrame:
    """One row per number of test-time adaptation steps: errors of a trained imputer on ``splits["test"]``.

    The same trained weights every time (each batch adapts on its own and the
    weights are restored), with the imputer's configured engine.
    """
    rows = []
    for n in steps:
        adaptation = {"num_steps": n, "lr": lr, "parameters": parameters}
        scores = fit_and_score(
            imputer, splits, seed, window_norm, fit=False, adaptation=adaptation
        )
        rows.append({"steps": n, **{k: v for k, v in scores.items() if k != "fit_s"}})
    return pd.DataFrame(rows)


def ablations(
    dataset: str,
    rate: float,
    seeds,
    variants: dict[str, dict],
    *,
    adaptation_steps=(),
    adaptation_lr: float = 1e-3,
    adaptation_parameters: str = "all",
    length: int = 24,
    max_windows: dict | None = None,
    size: dict | None = None,
    ttt_params: dict | None = None,
    device: str = "cpu",
    progress: bool = False,
) -> pd.DataFrame:
    """One row per (variant, seed): ``TTTImputer`` with each variant's changes to ``ttt_params``.

    The ``"reference"`` variant (no change) is also imputed with each number of
    ``adaptation_steps`` of test-time adaptation (variants
    ``"adaptation, <n> steps"``; same weights, no retraining).
    """
    rows = []
    for seed in progress_bar(list(seeds), enabled=progress, desc="ablations"):
        splits = imputation_splits(dataset, rate, seed, length, max_windows=max_windows)
        n_features = splits["train"]["X"].shape[-1]
        for name, change in variants.items():
            imputer = make_imputer(
                "TTTImputer",
                length,
                n_features,
                device=device,
                seed=seed,
                **(size or {}),
                **{**(ttt_params or {}), **change},
            )
            rows.append(
                {"variant": name, "seed": seed, **fit_and_score(imputer, splits, seed)}
            )
            if not change:
                sweep = adaptation_sweep(
                    imputer,
                    splits,
                    adaptation_steps,
                    lr=adaptation_lr,
                    parameters=adaptation_parameters,
                    seed=seed,
                )
                for row in sweep.to_dict("records"):
                    steps = row.pop("steps")
                    rows.append(
                        {"variant": f"adaptation, {steps} steps", "seed": seed, **row}
                    )
    return pd.DataFrame(rows)


# ---------------------------------------- chapter 2: bidirectionality


def direction_sensitivity(
    d_model: int,
    n_heads: int,
    mini_batch_size: int,
    length: int,
    step: int,
    seed: int = 0,
) -> pd.DataFrame:
    """How much output ``step`` depends on each input step, for a forward-only and a bidirectional TTT-Linear.

    One row per (layer, input step): the norm of the gradient of output step
    ``step`` with respect to that input step, for untrained layers on one
    random window; the forward-only layer's is 0 after ``step``.
    """
    if not 0 <= step < length:
        raise ValueError(f"step must be in [0, {length}); got {step}")
    with seeded(seed):
        layers = {
            "forward only": TTTLinear(d_model, n_heads, mini_batch_size),
            "bidirectional": BidirectionalTTT(
                TTTLinear(d_model, n_heads, mini_batch_size),
                TTTLinear(d_model, n_heads, mini_batch_size),
            ),
        }
    window = torch.randn(
        1, length, d_model, generator=torch_generator(derive_seed(seed, 1))
    )
    rows = []
    for name, layer in layers.items():
        x = window.clone().requires_grad_(True)
        layer(x)[0, step].sum().backward()
        rows += [
            {"layer": name, "input_step": t, "gradient_norm": float(g)}
            for t, g in enumerate(x.grad[0].norm(dim=-1))
        ]
    return pd.DataFrame(rows)


# ---------------------------------------- speed


def speed_comparison(
    length: int = 48,
    n_features: int = 6,
    batch: int = 32,
    d_model: int = 64,
    n_layers: int = 2,
    n_heads: int = 4,
    mini_batch_size: int = 8,
    repeats: int = 5,
    device: str = "cpu",
    seed: int = 0,
) -> pd.DataFrame:
    """Forward + backward time of one training batch: SAITS and ``TTTImputer`` variants at one size.

    Each model with its own ORT + MIT loss on the same batch of sines. Columns
    ``model``, ``ms`` (median over ``repeats``), ``ratio_to_SAITS``.
    """
    batch_data = training_batch(
        make_sines(batch, length=length, n_features=n_features, seed=seed), 0.2, seed
    )
    size = dict(
        d_model=d_model,
        n_layers=n_layers,
        n_heads=n_heads,
        d_ffn=2 * d_model,
        device=device,
        seed=seed,
    )
    ttt = dict(mini_batch_size=mini_batch_size)
    models = {
        "SAITS": ("SAITS", {}),
        "TTTImputer (TTT-Linear, bidirectional)": (
            "TTTImputer",
            {**ttt, "layer_type": "linear"},
        ),
        "TTTImputer (TTT-MLP, bidirectional)": (
            "TTTImputer",
            {**ttt, "layer_type": "mlp"},
        ),
        "TTTImputer (TTT-Linear, forward only)": (
            "TTTImputer",
            {**ttt, "bidirectional": False},
        ),
    }
    rows = []
    with seeded(seed, device):  # dropout and MIT draws inside the timed steps
        for name, (model, extra) in models.items():
            imputer = make_imputer(model, length, n_features, **size, **extra)
            rows.append(
                {
                    "model": name,
                    "ms": 1000
                    * imputer_step_seconds(imputer, batch_data, repeats=repeats),
                }
            )
    frame = pd.DataFrame(rows)
    frame["ratio_to_SAITS"] = (
        frame["ms"] / frame.loc[frame["model"] == "SAITS", "ms"].iloc[0]
    )
    return frame


def dual_form_comparison(
    batch: int = 32,
    length: int = 48,
    d_model: int = 64,
    n_heads: int = 4,
    mini_batch_size: int = 8,
    repeats: int = 5,
    seed: int = 0,
) -> pd.DataFrame:
    """One TTT layer's forward pass on the CPU: the mini-batch dual form against the per-token loop.

    One row per layer type (TTT-Linear, TTT-MLP): ``dual_ms``, ``loop_ms``
    (medians), ``loop_over_dual`` and the largest difference between their
    outputs (the two compute the same updates).
    """
    x = torch.randn(batch, length, d_model, generator=torch_generator(seed))
    rows = []
    for layer_type in ("linear", "mlp"):
        with seeded(seed):
            layer = make_ttt_layer(layer_type, d_model, n_heads, mini_batch_size, 1.0)
        with torch.no_grad():
            gap = (layer(x) - per_token_reference(layer, x)).abs().max().item()
        dual = forward_seconds(partial(layer, x), repeats)
        loop = forward_seconds(
            partial(per_token_reference, layer, x), max(1, repeats // 2)
        )
        rows.append(
            {
                "layer": LAYER_NAMES[layer_type],
                "dual_ms": 1000 * dual,
                "loop_ms": 1000 * loop,
                "loop_over_dual": loop / dual,
                "max_difference": gap,
            }
        )
    return pd.DataFrame(rows)

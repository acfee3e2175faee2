"""The imputation chapters' protocols as functions: the TTT imputer beside PyPOTS's baselines, in one code path.

Data: :func:`imputation_splits` makes time-ordered train / validation / test
windows of a TimeGAN data set or of the real CGM records (:func:`cgm_windows`,
their own gaps kept) with one missingness pattern on top (the scaler sees only
training windows); :func:`split_summary` describes them; :func:`standardised`
scales every window by its own observed values (:func:`window_stats`).

Models: :func:`make_imputer` builds any of :data:`MODELS` at one size and
training budget; :func:`fit_and_score` trains one (validation split for early
stopping) and scores the held-out test entries; :func:`score_imputations`
scores imputations already made.

Experiments (one row per run, numeric columns; summarise over seeds with
``tsgen.book.tables.summarize``):

* :func:`pattern_comparison`: data sets × missing patterns and rates × window
  lengths × seeds × models, and :func:`pattern_verdict`, where ``TTTImputer``
  beats SAITS and linear interpolation (chapter 3);
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
from functools import lru_cache, partial

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
    sliding_windows,
    split_by_time,
    windowed_splits,
)
from ..data.cgm import STEP_MIN, load_cgm, regularize
from ..metrics.imputation import imputation_errors
from ..runtime import derive_seed, quiet, resolve_device, seeded, torch_generator
from ..runtime import progress as progress_bar
from .layers import BidirectionalTTT, TTTLinear, make_ttt_layer
from .speed import (
    forward_seconds,
    interleaved_step_seconds,
    per_token_reference,
    training_batch,
)
from .ttt import TTTImputer, TTTImputerConfig

MODELS = ("TTTImputer", "SAITS", "Transformer", "BRITS", "LOCF", "Lerp", "Mean")
LABELS = {"Lerp": "linear interpolation", "Mean": "mean"}
# the real CGM records of Hall et al. 2018 (tsgen.data.cgm), beside TimeGAN's names
CGM_DATASET = "cgm"
# TSI-Bench's names for tsgen.data's patterns
PATTERN_LABELS = {"point": "point", "sequence": "subsequence", "block": "block"}
# the pattern grid's models: BRITS, the slowest, is left out
GRID_MODELS = tuple(m for m in MODELS if m != "BRITS")
LAYER_NAMES = {"linear": "TTT-Linear", "mlp": "TTT-MLP"}


# ---------------------------------------- data


def _evenly(windows: np.ndarray, limit: int | None) -> np.ndarray:
    """At most ``limit`` windows spread evenly over the split (all of them when ``limit`` is None)."""
    if limit is None or len(windows) <= limit:
        return windows
    return windows[
        np.unique(np.linspace(0, len(windows) - 1, int(limit)).round().astype(int))
    ]


def _observed_pieces(part: np.ndarray, longest_gap: int) -> list[np.ndarray]:
    """``part`` ``[time, 1]`` cut at runs of more than ``longest_gap`` missing steps, trimmed to observed ends."""
    seen = np.flatnonzero(~np.isnan(part[:, 0]))
    if not seen.size:
        return []
    new = np.r_[True, np.diff(seen) - 1 > longest_gap]
    firsts = seen[new]
    lasts = np.r_[seen[np.flatnonzero(new)[1:] - 1], seen[-1]]
    return [part[a : b + 1] for a, b in zip(firsts, lasts, strict=True)]


def cgm_windows(
    length: int,
    stride: int = 1,
    fractions=(0.7, 0.1, 0.2),
    max_gap_min: int = 60,
    name: str = "hall",
) -> dict[str, np.ndarray]:
    """Train / validation / test windows ``[n, length, 1]`` of real CGM glucose (mmol/L), with their real gaps.

    Each patient's record (:func:`tsgen.data.cgm.load_cgm`, ``"hall"``: 19
    people, Dexcom, 5-minute grid) is split in time order by ``fractions``, so
    no test time step is seen in training; each part is cut where the sensor
    was silent for more than ``max_gap_min`` minutes (a gap that long is a
    removed sensor, not missingness to impute), and windowed. The shorter gaps
    stay as NaN: the real missingness (a window with no reading at all is
    dropped).
    """
    if int(max_gap_min) != max_gap_min or max_gap_min < STEP_MIN:
        raise ValueError(
            f"max_gap_min must be an integer >= {STEP_MIN} (one reading); "
            f"got {max_gap_min!r}"
        )
    frame, _ = load_cgm(name)
    grid = regularize(frame)
    longest_gap = int(max_gap_min) // STEP_MIN - 1
    parts: dict[str, list] = {}
    for _, patient in grid.groupby("p_num", sort=True):
        series = patient["bg_mM"].to_numpy(dtype=float)[:, None]
        for split, part in split_by_time(series, fractions).items():
            parts.setdefault(split, [])
            parts[split] += [
                sliding_windows(piece, length, stride)
                for piece in _observed_pieces(part, longest_gap)
                if len(piece) >= length
            ]
    empty = [split for split, windows in parts.items() if not windows]
    if empty:
        raise ValueError(
            f"no CGM window of length {length} in the {empty} split(s): "
            "use shorter windows or a longer max_gap_min"
        )
    out = {}
    for split, windows in parts.items():
        windows = np.concatenate(windows)
        # a window shorter than a kept gap can fall inside it: nothing to impute from
        out[split] = windows[(~np.isnan(windows)).any(axis=(1, 2))]
    return out


@lru_cache(maxsize=8)
def _scaled_windows(
    name: str,
    length: int,
    stride: int,
    fractions: tuple,
    max_gap_min: int,
    limits: tuple,
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """The scaled window subsets of :func:`imputation_splits` (read-only, cached) and each split's full size.

    A grid of patterns draws many masks over the same windows: windowing a
    long series (energy: 28 features) and reading the CGM records once each.
    """
    if name == CGM_DATASET:
        windows = cgm_windows(length, stride, fractions, max_gap_min)
    else:
        series = load_timegan(name).to_numpy(dtype=float)
        windows = windowed_splits(series, length, stride, fractions)
    scaler = MinMaxScaler().fit(windows["train"])
    limits = dict(limits)
    unknown = set(limits) - set(windows)
    if unknown:
        raise ValueError(
            "max_windows names unknown split(s) "
            f"{sorted(unknown)}; splits are {sorted(windows)}"
        )
    out = {}
    for split, w in windows.items():
        out[split] = scaler.transform(_evenly(w, limits.get(split)))
        out[split].flags.writeable = False
    return out, {split: len(w) for split, w in windows.items()}


def imputation_splits(
    name: str,
    rate: float,
    seed: int = 0,
    length: int = 24,
    stride: int = 1,
    max_windows: dict | None = None,
    fractions=(0.7, 0.1, 0.2),
    *,
    pattern: str = "point",
    seq_len: int = 4,
    block_len: int = 4,
    block_width: int = 2,
    max_gap_min: int = 60,
) -> dict[str, dict]:
    """``{"train", "val", "test"}`` PyPOTS dicts of a data set with ``rate`` of ``pattern`` missingness.

    ``name`` is a TimeGAN data set (``"stock"``, ``"energy"``) or
    :data:`CGM_DATASET` (``"cgm"``: real glucose records with their own gaps,
    :func:`cgm_windows`; ``rate`` of the *observed* readings are hidden on top
    and only those are scored). ``pattern`` is one of
    :data:`tsgen.data.PATTERNS`, with ``seq_len``, ``block_len`` and
    ``block_width`` (capped at the number of features) as in
    :func:`tsgen.data.add_missingness`.

    The series is split in time order before windowing (no test time step is
    seen in training), min-max scaled with the training split's range, and
    ``max_windows`` (e.g. ``{"train": 512, "test": 256}``) keeps an even subset
    of a split's windows (a limit above a split's size warns, naming both, and
    keeps them all). Each split gets its own missingness draw from ``seed``;
    a window the draw leaves with no observed value (high rates on short or
    univariate windows) is set aside: nothing in it can be imputed from.
    """
    limits = dict(max_windows or {})
    windows, available = _scaled_windows(
        name,
        int(length),
        int(stride),
        tuple(float(f) for f in fractions),
        int(max_gap_min),
        tuple(sorted(limits.items())),
    )
    for split, n in available.items():
        if limits.get(split) is not None and limits[split] > n:
            warnings.warn(
                f"max_windows[{split!r}]={limits[split]} asks for more windows than "
                f"the {split} split of {name} has ({n} of length {length}, "
                f"stride {stride}): using all {n}",
                stacklevel=2,
            )
    n_features = windows["train"].shape[-1]
    options = dict(
        seq_len=seq_len, block_len=block_len, block_width=min(block_width, n_features)
    )
    out = {}
    for i, (split, w) in enumerate(windows.items()):
        data = add_missingness(
            w,
            pattern,
            rate,
            seed=1000 * seed + i,
            allow_empty=True,
            **options,
        )
        kept = data["missing_mask"].sum(axis=(1, 2)) > 0
        out[split] = {key: value[kept] for key, value in data.items()}
    return out


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


def _check_patterns(patterns) -> list[tuple[str, float]]:
    pairs = []
    for item in patterns:
        if (
            not isinstance(item, (list, tuple))
            or len(item) != 2
            or item[0] not in PATTERN_LABELS
        ):
            raise ValueError(
                "patterns must be (pattern, rate) pairs with pattern one of "
                f"{sorted(PATTERN_LABELS)}; got {item!r}"
            )
        pairs.append((item[0], float(item[1])))
    if not pairs:
        raise ValueError("patterns is empty: give at least one (pattern, rate) pair")
    return pairs


def pattern_comparison(
    datasets,
    patterns,
    lengths,
    seeds,
    models=GRID_MODELS,
    *,
    run_fraction: float = 0.25,
    block_width: int = 2,
    stride: int = 1,
    max_windows: dict | None = None,
    size: dict | None = None,
    ttt_params: dict | None = None,
    window_norm: bool = True,
    max_gap_min: int = 60,
    device: str = "cpu",
    progress: bool = False,
) -> pd.DataFrame:
    """One row per (data set, pattern, rate, window length, seed, model): errors on held-out test entries.

    TSI-Bench's grid of missingness patterns: ``patterns`` are ``(pattern,
    rate)`` pairs of ``"point"`` (values missing at random), ``"sequence"``
    (runs of ``run_fraction`` × the window length in one feature: TSI-Bench's
    *subsequence* missing) and ``"block"`` (such runs over ``block_width``
    adjacent features at once), each applied to every data set (TimeGAN names
    or ``"cgm"``, see :func:`imputation_splits`) at every window length of
    ``lengths``. Every deep model gets the same ``size`` (``d_model``,
    ``n_layers``, ``n_heads``, ``d_ffn``, ``epochs``, ``patience``,
    ``batch_size``, ``lr``; ``ttt_params`` are extra :class:`TTTImputerConfig`
    fields) and is stopped early on the validation split only; the test split is scored once.
    The ``pattern`` column holds TSI-Bench's name (:data:`PATTERN_LABELS`), and
    ``test_windows`` the windows scored (a draw can leave a window empty; it
    is set aside). On a data set with one feature (``"cgm"``) a block is a
    subsequence, so ``"block"`` is skipped there. Summarise over seeds with
    ``tsgen.book.tables.summarize`` and compare with :func:`pattern_verdict`.
    """
    pairs = _check_patterns(patterns)
    if not 0 < run_fraction <= 1:
        raise ValueError(f"run_fraction must be in (0, 1]; got {run_fraction!r}")
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {MODELS}")
    runs = [
        (d, p, r, n, s)
        for d in datasets
        for p, r in pairs
        for n in lengths
        for s in seeds
    ]
    rows = []
    for dataset, pattern, rate, length, seed in progress_bar(
        runs, enabled=progress, desc="patterns"
    ):
        run_len = max(1, round(run_fraction * length))
        splits = imputation_splits(
            dataset,
            rate,
            seed,
            length,
            stride,
            max_windows,
            pattern=pattern,
            seq_len=run_len,
            block_len=run_len,
            block_width=block_width,
            max_gap_min=max_gap_min,
        )
        n_features = splits["train"]["X"].shape[-1]
        if pattern == "block" and n_features == 1:
            continue  # one feature: a block is a subsequence, already in the grid
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
                    "pattern": PATTERN_LABELS[pattern],
                    "rate": rate,
                    "window": length,
                    "seed": seed,
                    "model": LABELS.get(model, model),
                    "test_windows": len(splits["test"]["X"]),
                    **fit_and_score(imputer, splits, seed, window_norm),
                }
            )
    return pd.DataFrame(rows)


def pattern_verdict(
    runs: pd.DataFrame,
    metric: str = "mae",
    model: str = "TTTImputer",
    rivals=("SAITS", "linear interpolation"),
) -> pd.DataFrame:
    """Per setting of :func:`pattern_comparison`: ``model`` against each of ``rivals`` and the best other model.

    One row per (data set, pattern, rate, window): the mean ``metric`` over
    seeds of ``model``, of each rival, and of the best of the remaining models
    (``best other`` names it); ``vs <rival> %`` = 100 × (``model`` / rival − 1),
    negative where ``model`` is better; ``clear vs <rival>`` is True where the
    gap between the means is larger than the two seed-to-seed stds together
    (the sign of a smaller gap could flip with other seeds).
    """
    setting = ["dataset", "pattern", "rate", "window"]
    missing = [c for c in [*setting, "model", metric] if c not in runs.columns]
    if missing:
        raise ValueError(f"runs lacks column(s) {missing}; pass pattern_comparison's")
    names = set(runs["model"])
    absent = [m for m in (model, *rivals) if m not in names]
    if absent:
        raise ValueError(
            f"runs has no rows of {absent}; its models are {sorted(names)}"
        )
    stats = runs.groupby([*setting, "model"], sort=False)[metric].agg(["mean", "std"])
    mean = stats["mean"].unstack("model")
    std = stats["std"].fillna(0.0).unstack("model")
    others = [m for m in mean.columns if m not in (model, *rivals)]
    out = pd.DataFrame(index=mean.index)
    out[model] = mean[model]
    for rival in rivals:
        out[rival] = mean[rival]
    if others:
        out["best other"] = mean[others].idxmin(axis=1)
        out["best other " + metric] = mean[others].min(axis=1)
    for rival in rivals:
        out[f"vs {rival} %"] = 100 * (mean[model] / mean[rival] - 1)
        out[f"clear vs {rival}"] = (mean[model] - mean[rival]).abs() > (
            std[model] + std[rival]
        )
    return out


def ablation_variants(
    layer_type: str = "linear",
    bidirectional: bool = True,
    mini_batch_sizes=(),
    loss_weights=(),
    inner_lr_scaling: str = "constant",
    training_loss: str = "mae",
) -> dict[str, dict]:
    """``{name: TTTImputerConfig changes}``: the reference, then one setting changed at a time.

    The other layer type, each inner mini-batch size of ``mini_batch_sizes``,
    the other direction setting, the other inner learning-rate scaling (the
    TTT paper's 1/t or a constant), the other training loss (the seed's MSE or
    SAITS's MAE), and each ``(ORT_weight, MIT_weight)`` pair of
    ``loss_weights``. The arguments describe the reference.
    """
    other = "mlp" if layer_type == "linear" else "linear"
    variants = {"reference": {}, LAYER_NAMES[other]: {"layer_type": other}}
    variants.update(
        {f"inner mini-batch {b}": {"mini_batch_size": b} for b in mini_batch_sizes}
    )
    variants["unidirectional" if bidirectional else "bidirectional"] = {
        "bidirectional": not bidirectional
    }
    if inner_lr_scaling == "constant":
        variants["inner lr 1/t (TTT paper)"] = {"inner_lr_scaling": "inverse_position"}
    else:
        variants["inner lr constant"] = {"inner_lr_scaling": "constant"}
    if training_loss == "mae":
        variants["MSE loss (the seed's)"] = {"training_loss": "mse"}
    else:
        variants["MAE loss (SAITS's)"] = {"training_loss": "mae"}
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

    Each model with its own ORT + MIT loss on the same batch of sines, the
    models timed in turns (:func:`~tsgen.imputation.speed.interleaved_step_seconds`)
    so that the ratios hold under a changing machine load. Columns ``model``,
    ``ms`` (median over ``repeats``), ``ratio_to_SAITS``.
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
    imputers = {
        name: make_imputer(model, length, n_features, **size, **extra)
        for name, (model, extra) in models.items()
    }
    with seeded(seed, device):  # dropout and MIT draws inside the timed steps
        seconds = interleaved_step_seconds(imputers, batch_data, repeats=repeats)
    frame = pd.DataFrame(
        {"model": list(seconds), "ms": [1000 * s for s in seconds.values()]}
    )
    frame["ratio_to_SAITS"] = frame["ms"] / (1000 * seconds["SAITS"])
    return frame


def dual_form_comparison(
    batch: int = 32,
    length: int = 48,
    d_model: int = 64,
    n_heads: int = 4,
    mini_batch_size: int = 8,
    repeats: int = 5,
    seed: int = 0,
    inner_lr_scaling: str = "constant",
) -> pd.DataFrame:
    """One TTT layer's forward pass on the CPU: the mini-batch dual form against the per-token loop.

    One row per layer type (TTT-Linear, TTT-MLP): ``dual_ms``, ``loop_ms``
    (medians, the two timed in turns), ``loop_over_dual`` and the largest
    difference between their outputs (the two compute the same updates).
    """
    x = torch.randn(batch, length, d_model, generator=torch_generator(seed))
    rows = []
    for layer_type in ("linear", "mlp"):
        with seeded(seed):
            layer = make_ttt_layer(
                layer_type, d_model, n_heads, mini_batch_size, 1.0, inner_lr_scaling
            )
        with torch.no_grad():
            gap = (layer(x) - per_token_reference(layer, x)).abs().max().item()
        times = {"dual": [], "loop": []}
        for i in range(1 + repeats):  # the first round warms up
            for name, fn in (
                ("dual", partial(layer, x)),
                ("loop", partial(per_token_reference, layer, x)),
            ):
                seconds = forward_seconds(fn, repeats=1, warmup=0)
                if i:
                    times[name].append(seconds)
        dual, loop = (float(np.median(times[name])) for name in ("dual", "loop"))
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

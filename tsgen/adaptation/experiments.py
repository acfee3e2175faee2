"""Chapter 4's protocol as functions: train forecasters
with each engine, shift the test data, adapt.

The chapter runs, in order::

    models = train_forecasters(config, ["it3", "masked"], seeds=[0, 1, 2], n_train=2000)
    # one row per seed x shift x model
    results = shift_experiment(models, n_test=500, batch_size=100)
    grid = adaptation_grid(
        models, steps=[1, 5], lrs=[1e-4, 1e-3], n_windows=500, batch_size=100
    )

``train_forecasters`` returns the trained models, the others a DataFrame with
one row per repetition and condition; means, tables and plots are the chapter's.
Shifts are keyword arguments of :func:`~tsgen.adaptation.data.shifted_sines`,
named: :data:`SHIFTS` is the chapter's (none, frequency, level).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

import numpy as np
import pandas as pd

from ..data import make_sines
from .config import TTTForecasterConfig
from .data import shifted_sines
from .model import TTTForecaster
from .registry import get_engine

PLAIN = "plain"  # the forecaster trained without an engine
SHIFTS = {"none": {}, "frequency": {"freq_range": (0.1, 0.2)}, "level": {"level": -0.3}}
# Seed offsets of the test and the validation draws, far from the training seeds:
# the k-th shift of repetition s is drawn with seed offset + 10 s + k.
TEST_DRAWS, VALIDATION_DRAWS = 10_000, 20_000
MAX_SHIFTS = 10


def train_forecasters(
    config: TTTForecasterConfig,
    engines: Iterable[str],
    *,
    seeds: Iterable[int],
    n_train: int,
    engine_options: Mapping[str, dict] | None = None,
    device: str = "cpu",
    progress: bool = False,
) -> dict[tuple[str, int], TTTForecaster]:
    """A plain forecaster and one per engine, for each seed: ``{(model name, seed): trained TTTForecaster}``.

    Each model is ``config`` with its ``engine`` (``None`` for ``"plain"``), its
    ``engine_options`` (``engine_options[name]``, default none) and ``seed``
    replaced. The models of seed ``s`` share their training data,
    ``make_sines(n_train, ..., seed=s)`` (TimeGAN's sines), and their seed.
    """
    engine_options = dict(engine_options or {})
    for name in engine_options:
        # a misspelt engine name fails here; options of engines not trained are unused
        get_engine(name)
    models = {}
    for seed in seeds:
        train = make_sines(
            n_train,
            config.context_length + config.horizon,
            config.n_features,
            seed=seed,
        )
        for name in [PLAIN, *engines]:
            engine = None if name == PLAIN else name
            model_config = replace(
                config,
                engine=engine,
                engine_options=engine_options.get(name, {}),
                seed=seed,
            )
            models[name, seed] = TTTForecaster(model_config, device=device).fit(
                train, progress=progress
            )
    return models


def shift_sets(
    n_windows: int,
    length: int,
    n_features: int,
    *,
    seed: int,
    shifts: Mapping[str, dict] = SHIFTS,
    draws: int = TEST_DRAWS,
) -> dict[str, np.ndarray]:
    """The test sets of repetition ``seed`` (validation sets with ``draws=VALIDATION_DRAWS``).

    ``{shift name: windows [n_windows, length, n_features]}``; the k-th shift is
    drawn with seed ``draws + 10 * seed + k``.
    """
    if len(shifts) > MAX_SHIFTS:
        raise ValueError(
            f"at most {MAX_SHIFTS} shifts (the draws of two "
            f"repetitions are 10 seeds apart); got {len(shifts)}"
        )
    first = draws + 10 * seed
    return {
        name: shifted_sines(n_windows, length, n_features, **kwargs, seed=first + k)
        for k, (name, kwargs) in enumerate(shifts.items())
    }


def _draws(models: Mapping, draws: int, n_windows: int, shifts: Mapping[str, dict]):
    """``(seed, {shift: windows})`` for each seed of ``models``."""
    config = next(iter(models.values())).config
    for seed in dict.fromkeys(seed for _, seed in models):
        yield (
            seed,
            shift_sets(
                n_windows,
                config.context_length + config.horizon,
                config.n_features,
                seed=seed,
                shifts=shifts,
                draws=draws,
            ),
        )


def _names(models: Mapping) -> list[str]:
    return list(dict.fromkeys(name for name, _ in models))


def shift_experiment(
    models: Mapping[tuple[str, int], TTTForecaster],
    *,
    n_test: int,
    batch_size: int,
    shifts: Mapping[str, dict] = SHIFTS,
    draws: int = TEST_DRAWS,
) -> pd.DataFrame:
    """Test error of every model on every shift, without and with adaptation.

    One row per seed x shift x model: ``mse`` and ``mae`` without adaptation,
    ``mse_adapted`` and ``mae_adapted`` with the model's configured adaptation
    (NaN for ``"plain"``: nothing to adapt) and ``change_pct``, the relative
    change of the MSE in percent (negative = the adaptation helped). Each batch
    of ``batch_size`` test windows adapts as one group. The test sets are
    :func:`shift_sets` of each seed.
    """
    rows = []
    for seed, sets in _draws(models, draws, n_test, shifts):
        for shift, windows in sets.items():
            for name in _names(models):
                model = models[name, seed]
                plain = model.evaluate(windows, adapt=False, batch_size=batch_size)
                adapted = (
                    {"mse": np.nan, "mae": np.nan}
                    if model.engine is None
                    else model.evaluate(windows, batch_size=batch_size)
                )
                rows.append(
                    {
                        "seed": seed,
                        "shift": shift,
                        "model": name,
                        **plain,
                        "mse_adapted": adapted["mse"],
                        "mae_adapted": adapted["mae"],
                        "change_pct": 100 * (adapted["mse"] / plain["mse"] - 1),
                    }
                )
    return pd.DataFrame(rows)


def adaptation_grid(
    models: Mapping[tuple[str, int], TTTForecaster],
    *,
    steps: Iterable[int],
    lrs: Iterable[float],
    n_windows: int,
    batch_size: int,
    shifts: Mapping[str, dict] = SHIFTS,
    draws: int = VALIDATION_DRAWS,
) -> pd.DataFrame:
    """How the gain from adaptation depends on the number of steps and the learning rate.

    One row per seed x shift x engine x steps x lr (the plain models have
    nothing to adapt): ``mse`` without adaptation, ``mse_adapted`` with the
    model's adaptation at these ``num_steps`` and ``lr``, ``change_pct``. The
    windows are validation draws (``draws + 10 s``), not the test sets of
    :func:`shift_experiment`, so a setting chosen here is not tuned on the test windows.
    """
    steps, lrs = list(steps), list(lrs)
    rows = []
    for seed, sets in _draws(models, draws, n_windows, shifts):
        for shift, windows in sets.items():
            for name in _names(models):
                model = models[name, seed]
                if model.engine is None:
                    continue
                mse = model.evaluate(windows, adapt=False, batch_size=batch_size)["mse"]
                for num_steps in steps:
                    for lr in lrs:
                        adapt = {"num_steps": num_steps, "lr": lr}
                        adapted = model.evaluate(
                            windows, adapt=adapt, batch_size=batch_size
                        )["mse"]
                        rows.append(
                            {
                                "seed": seed,
                                "shift": shift,
                                "model": name,
                                "steps": num_steps,
                                "lr": lr,
                                "mse": mse,
                                "mse_adapted": adapted,
                                "change_pct": 100 * (adapted / mse - 1),
                            }
                        )
    return pd.DataFrame(rows)


def example_forecasts(
    models: Mapping[tuple[str, int], TTTForecaster],
    windows,
    *,
    seed: int,
    batch_size: int,
    window: int = 0,
    channel: int = 0,
) -> pd.DataFrame:
    """One window's forecast by each engine's model of ``seed``, before and after adaptation.

    The first ``batch_size`` of ``windows`` adapt together (as in
    :func:`shift_experiment`); the rows are the forecast steps of ``window`` in
    ``channel``: ``model``, ``step`` (time index in the window), ``truth``,
    ``no_adaptation``, ``adapted``.
    """
    windows = np.asarray(windows)[:batch_size]
    rows = []
    for name in _names(models):
        model = models[name, seed]
        if model.engine is None:
            continue
        length = model.config.context_length
        before = model.predict(windows[:, :length], adapt=False, batch_size=batch_size)
        after = model.predict(windows[:, :length], batch_size=batch_size)
        for i in range(model.config.horizon):
            rows.append(
                {
                    "model": name,
                    "step": length + i,
                    "truth": windows[window, length + i, channel],
                    "no_adaptation": before[window, i, channel],
                    "adapted": after[window, i, channel],
                }
            )
    return pd.DataFrame(rows)

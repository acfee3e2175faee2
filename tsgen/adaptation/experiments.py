"""Chapter 4's protocol as functions: train forecasters
with each engine, shift the test data, adapt.

The chapter runs, in order::

    models = train_forecasters(config, ["it3", "masked"], seeds=[0, 1, 2], n_train=2000)
    # one row per seed x shift x model
    results = shift_experiment(models, n_test=500, batch_size=100)
    grid = adaptation_grid(
        models, steps=[1, 5], lrs=[1e-4, 1e-3], n_windows=500, batch_size=100
    )
    # the rule: steps and lr per engine, from the validation grid alone
    choice = choose_adaptation(grid)
    ruled = shift_experiment(
        models, n_test=500, batch_size=100, adapt=chosen_settings(choice)
    )
    guarded = shift_experiment(
        models, n_test=500, batch_size=100, adapt={"safeguard": True}
    )
    goal = adaptation_goal(results, {"rule": ruled, "safeguard": guarded})
    goal_summary(goal)  # met or not, per way and shift

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


def _overrides(adapt: Mapping | None, names: list[str]) -> dict[str, dict]:
    """``{model name: adaptation fields}`` from one dict for all models or a dict per model."""
    if adapt is None:
        return {}
    if not isinstance(adapt, Mapping):
        raise ValueError(
            "adapt must be a dict of adaptation fields or "
            f"{{model name: fields}}; got {type(adapt).__name__}"
        )
    per_model = [key in names for key in adapt]
    if any(per_model) and not all(per_model):
        raise ValueError(
            f"adapt mixes model names {names} with other keys: {sorted(adapt)}"
        )
    if adapt and all(per_model):
        return {name: dict(fields) for name, fields in adapt.items()}
    return {name: dict(adapt) for name in names if name != PLAIN}


def shift_experiment(
    models: Mapping[tuple[str, int], TTTForecaster],
    *,
    n_test: int,
    batch_size: int,
    shifts: Mapping[str, dict] = SHIFTS,
    draws: int = TEST_DRAWS,
    adapt: Mapping | None = None,
) -> pd.DataFrame:
    """Test error of every model on every shift, without and with adaptation.

    One row per seed x shift x model: ``mse`` and ``mae`` without adaptation,
    ``mse_adapted`` and ``mae_adapted`` with the model's configured adaptation
    (NaN for ``"plain"``: nothing to adapt) and ``change_pct``, the relative
    change of the MSE in percent (negative = the adaptation helped). Each batch
    of ``batch_size`` test windows is one call of the engine (one group with
    ``scope="batch"``). The test sets are :func:`shift_sets` of each seed.

    ``adapt`` changes the adaptation: a dict of
    :class:`~tsgen.adaptation.base.OptimizationParameters` fields for every
    model (``{"safeguard": True}``), or ``{model name: fields}`` for some
    models (the others keep their config's), e.g. :func:`chosen_settings`.
    """
    overrides = _overrides(adapt, _names(models))
    rows = []
    for seed, sets in _draws(models, draws, n_test, shifts):
        for shift, windows in sets.items():
            for name in _names(models):
                model = models[name, seed]
                plain = model.evaluate(windows, adapt=False, batch_size=batch_size)
                adapted = (
                    {"mse": np.nan, "mae": np.nan}
                    if model.engine is None
                    else model.evaluate(
                        windows, adapt=overrides.get(name, True), batch_size=batch_size
                    )
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
    adapt: dict | None = None,
) -> pd.DataFrame:
    """How the gain from adaptation depends on the number of steps and the learning rate.

    One row per seed x shift x engine x steps x lr (the plain models have
    nothing to adapt): ``mse`` without adaptation, ``mse_adapted`` with the
    model's adaptation at these ``num_steps`` and ``lr`` (and the fields of
    ``adapt``, e.g. ``{"safeguard": True}``), ``change_pct``. The windows are
    validation draws (``draws + 10 s``), not the test sets of
    :func:`shift_experiment`, so a setting chosen here is not tuned on the test
    windows.
    """
    steps, lrs = list(steps), list(lrs)
    extra = dict(adapt or {})
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
                        setting = {**extra, "num_steps": num_steps, "lr": lr}
                        adapted = model.evaluate(
                            windows, adapt=setting, batch_size=batch_size
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


def choose_adaptation(
    grid: pd.DataFrame, *, in_distribution: str = "none", margin: float = 0.5
) -> pd.DataFrame:
    """The rule: each engine's adaptation steps and lr, chosen on validation draws only.

    ``grid`` is :func:`adaptation_grid`'s table (validation windows: no test
    label is read). For each engine, a cell (steps, lr) is *admissible* when in
    distribution (shift ``in_distribution``) its mean adapted MSE over the seeds
    exceeds the mean unadapted MSE by at most ``margin`` times the seed-to-seed
    std of the unadapted MSE (adaptation must do no harm beyond the noise
    between trained models; ``margin < 1`` leaves room for the test draws to
    differ from the validation draws). Among the admissible cells, and "no
    adaptation" (steps 0, always admissible), the rule takes the one with the
    lowest mean change of the MSE over the shifted conditions (every shift but
    ``in_distribution``; that one alone when the grid has no other); ties go to
    fewer steps, then a smaller lr.

    One row per engine: ``model``, ``steps`` and ``lr`` (NaN with steps 0),
    ``in_distribution_change_pct`` and ``shifted_change_pct`` of the chosen
    cell on the validation draws, ``allowed_change_pct`` (the in-distribution
    bound, as a change of the MSE), ``admissible`` (cells of the grid that pass).
    """
    needed = {"seed", "shift", "model", "steps", "lr", "mse", "mse_adapted"}
    if not isinstance(grid, pd.DataFrame) or needed - set(grid.columns):
        raise ValueError(
            "grid must be adaptation_grid's DataFrame with columns "
            f"{sorted(needed)}; got {getattr(grid, 'columns', type(grid).__name__)!r}"
        )
    if in_distribution not in set(grid["shift"]):
        raise ValueError(
            f"in_distribution={in_distribution!r} is not a shift of the grid "
            f"({sorted(set(grid['shift']))})"
        )
    if not (np.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be a non-negative number; got {margin!r}")
    rows = []
    for name, part in grid.groupby("model", sort=False):
        base = part.drop_duplicates(["seed", "shift"]).groupby("shift")["mse"]
        unadapted = base.mean()
        spread = base.std(ddof=1).fillna(0.0)[in_distribution]
        allowed = 100 * margin * spread / unadapted[in_distribution]
        shifted = [s for s in unadapted.index if s != in_distribution] or [
            in_distribution
        ]
        cells = part.groupby(["steps", "lr", "shift"])["mse_adapted"].mean()
        cells = cells.unstack("shift")
        change = 100 * (cells / unadapted - 1)
        candidates = pd.DataFrame(
            {
                "in_distribution_change_pct": change[in_distribution],
                "shifted_change_pct": change[shifted].mean(axis=1),
            }
        ).reset_index()
        ok = candidates["in_distribution_change_pct"] <= allowed
        none = pd.DataFrame(
            [
                {
                    "steps": 0,
                    "lr": np.nan,
                    "in_distribution_change_pct": 0.0,
                    "shifted_change_pct": 0.0,
                }
            ]
        )
        pool = pd.concat([none, candidates[ok]], ignore_index=True)
        best = pool.sort_values(
            ["shifted_change_pct", "steps", "lr"], kind="stable", na_position="first"
        ).iloc[0]
        rows.append(
            {
                "model": name,
                "steps": int(best["steps"]),
                "lr": float(best["lr"]),
                "in_distribution_change_pct": float(best["in_distribution_change_pct"]),
                "shifted_change_pct": float(best["shifted_change_pct"]),
                "allowed_change_pct": float(allowed),
                "admissible": int(ok.sum()),
            }
        )
    return pd.DataFrame(rows)


def chosen_settings(choice: pd.DataFrame) -> dict[str, dict]:
    """``{engine: {"num_steps", "lr"}}`` of :func:`choose_adaptation`, for ``shift_experiment``.

    An engine the rule leaves unadapted gets ``num_steps = 0``.
    """
    settings = {}
    for row in choice.itertuples(index=False):
        fields = {"num_steps": int(row.steps)}
        if row.steps:
            fields["lr"] = float(row.lr)
        settings[row.model] = fields
    return settings


def adaptation_goal(
    results: pd.DataFrame,
    variants: Mapping[str, pd.DataFrame],
    *,
    in_distribution: str = "none",
) -> pd.DataFrame:
    """Whether each way of adapting does no harm in distribution and keeps the gains under shift.

    ``results`` and each of ``variants`` are :func:`shift_experiment` tables on
    the same test sets (``results`` with the chapter's setting, the variants
    e.g. the rule's choice or the safeguard). One row per shift x engine:
    ``mse`` and ``mse_std`` (mean and seed-to-seed std of the unadapted MSE),
    then per way ``w`` of adapting (``"setting"`` for ``results``, then the
    names of ``variants``): ``w mse`` (mean adapted MSE), ``w change %``
    (relative change of the mean MSE) and ``w within spread`` (the mean adapted
    MSE is within one seed-to-seed std of the unadapted mean).

    The goal of "adaptation that does no harm": every ``w within spread`` is
    true in distribution, and under each shift the best engine's gain of the
    setting is kept (compare ``w change %`` of that row with the setting's).
    """
    tables = {"setting": results, **variants}
    rows = []
    adapted = results[results["model"] != PLAIN]
    for (shift, name), part in adapted.groupby(["shift", "model"], sort=False):
        mse, std = part["mse"].mean(), part["mse"].std(ddof=1)
        row = {"shift": shift, "model": name, "mse": mse, "mse_std": std}
        for way, table in tables.items():
            other = table[(table["shift"] == shift) & (table["model"] == name)]
            if other.empty:
                raise ValueError(f"{way!r} has no row for shift {shift!r}, {name!r}")
            value = other["mse_adapted"].mean()
            row[f"{way} mse"] = value
            row[f"{way} change %"] = 100 * (value / mse - 1)
            row[f"{way} within spread"] = bool(value - mse <= std)
        rows.append(row)
    return pd.DataFrame(rows)


def goal_summary(goal: pd.DataFrame, *, in_distribution: str = "none") -> pd.DataFrame:
    """Whether each way of :func:`adaptation_goal`'s table meets the goal, per shift.

    One row per way (each but ``"setting"``) x shift. In distribution
    (``engine`` "every engine"): met when every engine's adapted MSE is within
    its spread. Under a shift: the engine whose adapted MSE is lowest with the
    setting (``engine``) keeps its gain when the way's adapted MSE of that
    engine exceeds the setting's by at most one seed-to-seed std of its
    unadapted MSE. Columns: ``way``, ``shift``, ``engine``, ``setting change
    %``, ``way change %`` (of that engine; the worst engine in distribution),
    ``met``.
    """
    ways = [c[: -len(" within spread")] for c in goal if c.endswith(" within spread")]
    rows = []
    for way in (w for w in ways if w != "setting"):
        for shift, part in goal.groupby("shift", sort=False):
            if shift == in_distribution:
                worst = part.loc[part[f"{way} change %"].idxmax()]
                engine, met = "every engine", bool(part[f"{way} within spread"].all())
            else:
                worst = part.loc[part["setting mse"].idxmin()]
                engine = worst["model"]
                met = bool(
                    worst[f"{way} mse"] - worst["setting mse"] <= worst["mse_std"]
                )
            rows.append(
                {
                    "way": way,
                    "shift": shift,
                    "engine": engine,
                    "setting change %": float(worst["setting change %"]),
                    "way change %": float(worst[f"{way} change %"]),
                    "met": met,
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

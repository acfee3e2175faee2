"""From whatever the user has to regular, gap-free, scaled per-patient arrays, and back.

Input: a data set name, a dict ``patient_id -> DataFrame`` or one combined
DataFrame in the cohort format of :mod:`tsgen.data.glucose` (``datetime``,
``p_num``, ``bg_mM`` and covariates). The pipeline checks it (clear errors,
never a silent NaN), reports data quality, resamples each patient to the
configured resolution (gaps stay NaN) and scales every channel with one
scaler fitted on the observed training values. Gaps are filled **inside each
context window, from that window's own readings only** (:meth:`Preprocessor.fill`:
linear, forward fill, mean, median, or a TTT imputer,
:class:`tsgen.imputation.TTTImputer`, learned from the training patients), so
a forecast never depends on a reading after its origin; filled values stay
marked unobserved and never count in a loss or a score. It is
our own code rather than tsfm_public's ``TimeSeriesPreprocessor`` +
``get_datasets``, which avoids three of their pitfalls by construction:
patient ids are mapped to integers internally, the channel order is fixed
(targets first, then covariates), and the validation split is explicit.

Scaling is one affine map per channel for all patients, where tsfm_public's
``TimeSeriesPreprocessor`` fits one per patient by default: TTM standardises
every context window on its own (its ``scaling="std"``), so any per-patient
affine map cancels out of its forecasts, and a global one also applies to a
patient never seen in training without looking at that patient's future.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tsgen.data import cgm, glucose
from tsgen.runtime import numpy_rng

from .config import IMPUTATIONS, TTMDataConfig, ttt_imputer_settings

log = logging.getLogger(__name__)

# the nested checkpoint of a fitted TTT imputer, inside a forecaster's checkpoint
IMPUTER_DIR = "imputer"


@dataclass
class PatientSeries:
    """One patient on a regular grid: values (NaN at gaps until filled) and where they were observed."""

    patient: str
    times: pd.DatetimeIndex
    values: np.ndarray  # [T, C] float
    observed: np.ndarray  # [T, C] bool: False where the value was imputed

    def __len__(self) -> int:
        return len(self.times)


def load_data(data, config: TTMDataConfig) -> pd.DataFrame:
    """Turn a data set name, a path, a dict of per-patient frames or a frame into one combined frame.

    A name is a simglucose age group (``"adult"``, ``"child"``, ``"adolescent"``,
    optionally prefixed ``"simglucose:"``; two simulated days, cached) or the
    path of a CSV in the GlucoBench layout (:func:`tsgen.data.glucose.load_cgm_csv`).
    """
    if isinstance(data, (str, Path)):
        name = str(data).removeprefix("simglucose:")
        if name in glucose.GROUPS:
            return glucose.simulate_cohort(name, progress=False)
        if Path(data).is_file():
            return glucose.load_cgm_csv(data)
        raise ValueError(
            f"unknown data set {str(data)!r}: give a "
            f"simglucose group {glucose.GROUPS} or a CSV path"
        )
    if isinstance(data, dict):
        if not data:
            raise ValueError("the dict of patients is empty")
        frames = []
        for pid, frame in data.items():
            if not isinstance(frame, pd.DataFrame):
                raise ValueError(
                    f"patient {pid!r}: expected a DataFrame, got {type(frame).__name__}"
                )
            frames.append(frame.assign(**{config.id_column: str(pid)}))
        return pd.concat(frames, ignore_index=True)
    if isinstance(data, pd.DataFrame):
        return data
    raise ValueError(
        "data must be a data set name, a dict of DataFrames "
        f"or a DataFrame; got {type(data).__name__}"
    )


def check_frame(frame: pd.DataFrame, config: TTMDataConfig) -> None:
    """Raise ValueError for missing columns, infinite values or a patient without any target value."""
    needed = [config.id_column, config.time_column, *config.target_features]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(
            f"input lacks column(s) {missing} (target(s) "
            f"{config.target_features}); it has {list(frame.columns)}"
        )
    absent = [c for c in config.input_features if c not in frame.columns]
    if absent:
        raise ValueError(
            f"input lacks the covariate column(s) {absent}; "
            "drop them from input_features or add them"
        )
    if frame.empty:
        raise ValueError("input has no rows")
    channels = [*config.target_features, *config.input_features]
    for column in channels:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise ValueError(
                f"column {column!r} is not numeric (dtype {frame[column].dtype})"
            )
        n_inf = int(np.isinf(frame[column].to_numpy(dtype=float)).sum())
        if n_inf:
            raise ValueError(
                f"column {column!r} holds {n_inf} infinite "
                "value(s); use NaN for a missing reading"
            )
    for pid, group in frame.groupby(config.id_column, sort=False):
        for column in config.target_features:
            if group[column].isna().all():
                raise ValueError(
                    f"patient {pid!r} has no observed {column!r} "
                    "value (all NaN): drop the patient"
                )


def quality_report(
    frame: pd.DataFrame, columns: list[str], id_column: str = "p_num"
) -> pd.DataFrame:
    """Per patient and column: share of NaN, number of infinite values, and whether the column is constant."""
    rows = []
    for pid, group in frame.groupby(id_column, sort=True):
        for column in columns:
            values = group[column].to_numpy(dtype=float)
            finite = values[np.isfinite(values)]
            rows.append(
                {
                    id_column: pid,
                    "column": column,
                    "rows": len(values),
                    "nan share": float(np.isnan(values).mean()),
                    "inf": int(np.isinf(values).sum()),
                    "zero variance": bool(finite.size == 0 or np.ptp(finite) == 0),
                }
            )
    return pd.DataFrame(rows)


def impute(values: np.ndarray, strategy: str) -> np.ndarray:
    """Fill the NaN of one patient's ``[T, C]`` array column by column with its own statistics."""
    if strategy not in IMPUTATIONS:
        raise ValueError(
            f"unknown imputation_strategy {strategy!r}; "
            f"choose one of {list(IMPUTATIONS)}"
        )
    if strategy == "ttt_imputer":
        raise ValueError(
            "imputation_strategy 'ttt_imputer' is learned from training "
            "data: fit a Preprocessor (it trains the imputer), then transform"
        )
    frame = pd.DataFrame(values)
    if strategy == "mean":
        frame = frame.fillna(frame.mean())
    elif strategy == "median":
        frame = frame.fillna(frame.median())
    elif strategy == "forward_fill":
        frame = frame.ffill().bfill()  # leading gaps take the first reading
    else:
        frame = frame.interpolate(method="linear", limit_direction="both")
    # A covariate never observed for this patient: zero (no insulin or carbs recorded).
    return frame.fillna(0.0).to_numpy(dtype=float)


def window_grid(length: int, window: int) -> np.ndarray:
    """Starts of non-overlapping windows that cover ``[0, length)``, the last one aligned to the end
    (it overlaps its predecessor when ``window`` does not divide ``length``)."""
    if length < window:
        raise ValueError(
            f"a series of {length} steps is shorter than one window of {window} steps"
        )
    starts = np.arange(0, length - window + 1, window)
    return (
        starts if starts[-1] + window == length else np.append(starts, length - window)
    )


def _windows(values: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """``[len(starts), window, C]`` slices of a ``[T, C]`` array."""
    return values[starts[:, None] + np.arange(window)]


def fit_ttt_imputer(
    scaled: list[np.ndarray], config: TTMDataConfig, device: str = "cpu"
):
    """A :class:`~tsgen.imputation.TTTImputer` trained on scaled training series ``[T, C]`` (NaN = gap).

    Training windows (``imputation_window`` steps, stride a quarter window) come
    from the first part of each series; the last ``split_config["valid"]`` of
    each series gives the validation windows, in which ``mit_rate`` of the
    observed entries are hidden and kept as ``X_ori`` for early stopping (the
    imputer never sees anything but the training series). Windows without any
    observed value are left out.
    """
    from tsgen.imputation import TTTImputer, TTTImputerConfig

    window = config.imputation_window
    stride = max(1, window // 4)
    parts = {"train": [], "valid": []}
    for x in scaled:
        cut = int(round(len(x) * (1 - config.split_config["valid"])))
        for split, part in (("train", x[:cut]), ("valid", x[cut:])):
            if len(part) >= window:
                parts[split].append(
                    _windows(part, np.arange(0, len(part) - window + 1, stride), window)
                )
    found = {split: sum(len(w) for w in ws) for split, ws in parts.items()}
    if not all(found.values()):
        raise ValueError(
            "imputation_strategy 'ttt_imputer' needs training and validation "
            f"windows of imputation_window={window} steps; the training series "
            f"give {found} (the last {config.split_config['valid']:g} of each "
            "series validates): use more data or a shorter imputation_window"
        )
    train, valid = (np.concatenate(parts[split]) for split in ("train", "valid"))
    train = train[~np.isnan(train).all(axis=(1, 2))]
    imputer_config = TTTImputerConfig(
        n_steps=window,
        n_features=train.shape[-1],
        **ttt_imputer_settings(config.imputer_params),
    )
    rng = numpy_rng(imputer_config.seed)
    hidden = ~np.isnan(valid) & (rng.random(valid.shape) < imputer_config.mit_rate)
    valid_X = np.where(hidden, np.nan, valid)
    keep = ~np.isnan(valid_X).all(axis=(1, 2))
    if not len(train) or not keep.any():
        raise ValueError(
            "imputation_strategy 'ttt_imputer': the training "
            "or validation windows hold no observed value"
        )
    return TTTImputer(imputer_config, device=device).fit(
        {"X": train}, {"X": valid_X[keep], "X_ori": valid[keep]}
    )


def ttt_fill(
    imputer, scaled: np.ndarray, fallback: np.ndarray, window: int
) -> np.ndarray:
    """Fill the gaps of one scaled ``[T, C]`` series with a TTT imputer.

    The series is cut into non-overlapping windows of ``window`` steps (the
    last aligned to the end; where it overlaps the one before, its values
    win). Observed entries are returned exactly as given. A channel with no
    observed entry in a window gives the imputer nothing to work from: there,
    and in windows with no observed entry at all, ``fallback`` (linear
    interpolation over the whole series, then 0 in original units) is used.
    """
    starts = window_grid(len(scaled), window)
    X, backup = _windows(scaled, starts, window), _windows(fallback, starts, window)
    seen = ~np.isnan(X)
    filled = backup.copy()
    usable = seen.any(axis=(1, 2))
    if usable.any():
        filled[usable] = imputer.impute({"X": X[usable]})
    filled = np.where(seen.any(axis=1, keepdims=True), filled, backup)
    out = np.empty_like(scaled)
    for start, values in zip(starts, filled, strict=True):
        out[start : start + window] = values
    return np.where(np.isnan(scaled), out, scaled)


def to_series(
    frame: pd.DataFrame, config: TTMDataConfig, channels: list[str]
) -> dict[str, PatientSeries]:
    """Each patient on the ``resolution_min`` grid (:func:`tsgen.data.cgm.to_grid`: mean within a step), gaps NaN."""
    out = {}
    for pid, group in frame.groupby(config.id_column, sort=True):
        times = pd.to_datetime(group[config.time_column], errors="coerce")
        if times.isna().any():
            raise ValueError(f"patient {pid!r} has unparseable or missing times")
        grid, raw = cgm.to_grid(
            times, group[channels].to_numpy(dtype=float), config.resolution_min
        )
        out[str(pid)] = PatientSeries(str(pid), grid, raw, ~np.isnan(raw))
    return out


def _interpolate_rows(x: np.ndarray, strategy: str) -> np.ndarray:
    """Fill the NaN of each row of ``x`` ``[n, L]`` from that row alone (all-NaN rows stay NaN)."""
    out = x.copy()
    for k in np.flatnonzero(np.isnan(x).any(axis=1)):
        row = x[k]
        seen = np.flatnonzero(~np.isnan(row))
        if seen.size == 0:
            continue
        if strategy == "linear":  # inside: between readings; edges: the nearest reading
            out[k] = np.interp(np.arange(len(row)), seen, row[seen])
        elif strategy == "forward_fill":  # leading gaps take the first reading
            filled = pd.Series(row).ffill().bfill()
            out[k] = filled.to_numpy()
        else:
            stat = np.mean if strategy == "mean" else np.median
            out[k] = np.where(np.isnan(row), stat(row[seen]), row)
    return out


class Preprocessor:
    """Checks, resamples, scales and imputes; fitted on training data.

    Its state is JSON (:meth:`to_dict`); with ``imputation_strategy="ttt_imputer"``
    the fitted imputer is a checkpoint of its own, written next to that state by
    :meth:`save_imputer` and read back by :meth:`load_imputer`. ``device`` is
    where the TTT imputer trains and imputes.
    """

    def __init__(self, config: TTMDataConfig, device: str = "cpu"):
        self.config = config
        self.device = device
        self.channels: list[str] | None = None  # targets then the covariates kept
        self.center: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        self.patient_index: dict[str, int] = {}
        # a fitted TTTImputer when imputation_strategy is "ttt_imputer"
        self.imputer = None

    @property
    def _stateless_strategy(self) -> str:
        """The per-patient strategy: the configured one, or linear (the TTT imputer's fallback)."""
        strategy = self.config.imputation_strategy
        return "linear" if strategy == "ttt_imputer" else strategy

    @property
    def fitted(self) -> bool:
        return self.center is not None

    @property
    def n_targets(self) -> int:
        return len(self.config.target_features)

    def prepare(self, data) -> tuple[dict[str, PatientSeries], pd.DataFrame]:
        """Check, report and resample ``data`` (gaps stay NaN); the quality report comes back with the series."""
        frame = load_data(data, self.config)
        check_frame(frame, self.config)
        channels = self.channels or [
            *self.config.target_features,
            *self.config.input_features,
        ]
        report = quality_report(frame, channels, self.config.id_column)
        return to_series(frame, self.config, channels), report

    def fit(
        self, series: dict[str, PatientSeries], report: pd.DataFrame
    ) -> Preprocessor:
        """Drop covariates constant over all of ``series``, fit the scaler on the observed values of what
        remains, then train the TTT imputer on the scaled series when the strategy is "ttt_imputer"."""
        constant = report.groupby("column")["zero variance"].all()
        covariates = [
            c for c in self.config.input_features if not constant.get(c, False)
        ]
        dropped = sorted(set(self.config.input_features) - set(covariates))
        if dropped:
            log.warning("dropping zero-variance covariate(s) %s", dropped)
        self.channels = [*self.config.target_features, *covariates]
        keep = [*self.config.target_features, *self.config.input_features]
        idx = [keep.index(c) for c in self.channels]
        stacked = np.concatenate([s.values[:, idx] for s in series.values()])
        # statistics of the observed values (a channel never observed: 0 and 1)
        with np.errstate(all="ignore"):
            if self.config.scaler_type == "standard":
                self.center, self.scale = np.nanmean(stacked, 0), np.nanstd(stacked, 0)
            else:
                low, high = np.nanmin(stacked, 0), np.nanmax(stacked, 0)
                self.center, self.scale = low, high - low
        self.center = np.nan_to_num(self.center, nan=0.0)
        self.scale = np.nan_to_num(self.scale, nan=1.0)
        # a constant target stays finite
        self.scale = np.where(self.scale > 0, self.scale, 1.0)
        self.patient_index = {pid: i for i, pid in enumerate(sorted(series))}
        self.imputer = None
        if self.config.imputation_strategy == "ttt_imputer":
            self._check_window(series)
            self.imputer = fit_ttt_imputer(
                [
                    (s.values[:, idx] - self.center) / self.scale
                    for s in series.values()
                ],
                self.config,
                self.device,
            )
        return self

    def _check_window(self, series: dict[str, PatientSeries]) -> None:
        window = self.config.imputation_window
        short = {pid: len(s) for pid, s in series.items() if len(s) < window}
        if short:
            raise ValueError(
                f"series too short for imputation_strategy 'ttt_imputer': {short} "
                f"steps, but one imputation window is imputation_window={window} "
                "steps; use a shorter window or another strategy"
            )

    def transform(self, data) -> tuple[dict[str, PatientSeries], pd.DataFrame]:
        """``prepare`` with the fitted channels, then scale; returns scaled series (NaN at gaps: they are
        filled per context window by :meth:`fill`) and the quality report."""
        if not self.fitted:
            raise RuntimeError(
                "the preprocessor is not fitted: call "
                "fit() (or predict_zero_shot) first"
            )
        if self.config.imputation_strategy == "ttt_imputer" and self.imputer is None:
            raise RuntimeError(
                "the preprocessor fills gaps with a TTT imputer but holds none: "
                "load_imputer(directory) from the checkpoint it was saved in"
            )
        series, report = self.prepare(data)
        for s in series.values():
            s.values = (s.values - self.center) / self.scale
        return series, report

    def fill(self, x: np.ndarray) -> np.ndarray:
        """Fill the gaps of scaled context windows ``[n, L, C]`` (NaN = missing), each from its own values.

        Nothing after a window's last step is used, so a forecast from it never
        looks ahead. Linear interpolation fills between readings and repeats
        the nearest reading at the window's edges; forward fill carries the
        last reading on (leading gaps take the first); mean and median use the
        window's own readings; the TTT imputer imputes the last
        ``imputation_window`` steps and each block of that many before them
        (linear where a block has no reading). A channel with no reading in a
        window gets 0 in original units (no insulin or carbs recorded).
        """
        x = np.asarray(x, dtype=float)
        if not np.isnan(x).any():
            return x
        strategy = self._stateless_strategy
        out = np.stack(
            [_interpolate_rows(x[..., c], strategy) for c in range(x.shape[-1])], -1
        )
        if self.imputer is not None:
            out = self._ttt_fill(x, out)
        empty = -self.center / self.scale
        return np.where(np.isnan(out), empty, out)

    def _ttt_fill(self, x: np.ndarray, fallback: np.ndarray) -> np.ndarray:
        """Gaps of ``x`` ``[n, L, C]`` imputed by the TTT imputer on blocks aligned to each window's end."""
        window = self.config.imputation_window
        length = x.shape[1]
        if length < window:
            raise ValueError(
                f"context windows of {length} steps are shorter than "
                f"imputation_window={window}: use a shorter imputation_window"
            )
        # blocks end at the window's end; the first one overlaps when window does not divide length
        starts = np.sort(length - window - np.arange(0, length - window + 1, window))
        if starts[0] != 0:
            starts = np.r_[0, starts]
        out = fallback.copy()
        for start in starts:
            block = x[:, start : start + window]
            seen = ~np.isnan(block)
            todo = (~seen).any(axis=(1, 2)) & seen.any(axis=(1, 2))
            if not todo.any():
                continue
            imputed = self.imputer.impute({"X": block[todo]})
            # a channel without a reading in the block keeps the fallback
            keep = seen[todo].any(axis=1, keepdims=True)
            part = out[todo, start : start + window]
            part = np.where(keep & np.isnan(block[todo]), imputed, part)
            out[todo, start : start + window] = part
        return np.where(np.isnan(x), out, x)

    def imputed_frame(self, data, fit: bool = False) -> pd.DataFrame:
        """``data`` on the regular grid with its gaps filled from the whole series, in original units: id,
        time and the channels (``fit=True`` fits on ``data`` first).

        This is smoothing, for scoring the gap fillers on removed readings: a gap
        is filled from readings on both sides of it. Forecasts never see it;
        they fill each context window on its own (:meth:`fill`).
        """
        series, _ = self.series(data, fit)
        for s in series.values():
            fallback = (
                impute(s.values * self.scale + self.center, self._stateless_strategy)
                - self.center
            ) / self.scale
            s.values = (
                fallback
                if self.imputer is None
                else ttt_fill(
                    self.imputer, s.values, fallback, self.config.imputation_window
                )
            )
        return pd.concat(
            [
                pd.DataFrame(
                    s.values * self.scale + self.center, columns=self.channels
                ).assign(
                    **{
                        self.config.id_column: s.patient,
                        self.config.time_column: s.times,
                    }
                )
                for s in series.values()
            ],
            ignore_index=True,
        )[[self.config.id_column, self.config.time_column, *self.channels]]

    def series(
        self, data, fit: bool = False
    ) -> tuple[dict[str, PatientSeries], pd.DataFrame]:
        """Scaled series of ``data`` and its quality report; ``fit=True`` fits on ``data`` first."""
        if fit:
            self.channels = None  # (re)fitting starts from every configured channel
            self.fit(*self.prepare(data))
        return self.transform(data)

    def observed_target(
        self, series: dict[str, PatientSeries]
    ) -> dict[str, np.ndarray]:
        """Each patient's first target in original units, NaN where it was not observed (imputed)."""
        out = {}
        for pid, s in series.items():
            raw = self.unscale_target(s.values[:, : self.n_targets])[:, 0]
            out[pid] = np.where(s.observed[:, 0], raw, np.nan)
        return out

    def unscale_target(self, values: np.ndarray) -> np.ndarray:
        """Map scaled target channels ``[..., n_targets]`` back to original units."""
        k = self.n_targets
        return values * self.scale[:k] + self.center[:k]

    def id_of(self, patient: str) -> int:
        """Integer id of a patient (new patients get the next free integer)."""
        if patient not in self.patient_index:
            self.patient_index[patient] = len(self.patient_index)
        return self.patient_index[patient]

    def to_dict(self) -> dict:
        """The JSON state (a fitted TTT imputer is saved apart: :meth:`save_imputer`)."""
        return {
            "config": self.config.to_dict(),
            "channels": self.channels,
            "center": None if self.center is None else self.center.tolist(),
            "scale": None if self.scale is None else self.scale.tolist(),
            "patient_index": self.patient_index,
        }

    @classmethod
    def from_dict(cls, state: dict, device: str = "cpu") -> Preprocessor:
        """The preprocessor of :meth:`to_dict`, without its TTT imputer (:meth:`load_imputer` reads it)."""
        pre = cls(TTMDataConfig.from_dict(state["config"]), device)
        pre.channels = state["channels"]
        pre.center = (
            None
            if state["center"] is None
            else np.asarray(state["center"], dtype=float)
        )
        pre.scale = (
            None if state["scale"] is None else np.asarray(state["scale"], dtype=float)
        )
        pre.patient_index = dict(state["patient_index"])
        return pre

    def save_imputer(self, directory: str | Path) -> None:
        """Write the fitted TTT imputer (if any) as a checkpoint of its own in ``directory/imputer``."""
        if self.imputer is not None:
            self.imputer.save(Path(directory) / IMPUTER_DIR)

    def load_imputer(self, directory: str | Path) -> None:
        """Read the TTT imputer that :meth:`save_imputer` wrote, when this preprocessor was fitted with one."""
        if self.config.imputation_strategy != "ttt_imputer" or not self.fitted:
            return
        from tsgen.imputation import TTTImputer

        where = Path(directory) / IMPUTER_DIR
        if not where.is_dir():
            raise ValueError(
                f"the preprocessor was fitted with a TTT imputer, but {where} "
                "holds none: load it from the directory it was saved in"
            )
        self.imputer = TTTImputer.load(where, device=self.device)


def check_lengths(series: dict[str, PatientSeries], needed: int, what: str) -> None:
    """Log the series shorter than ``needed`` steps (they give no window); ValueError when all are."""
    short = {pid: len(s) for pid, s in series.items() if len(s) < needed}
    if len(short) == len(series):
        raise ValueError(
            f"series too short for {what}: {short} steps, but {needed} are needed "
            "(context_length + forecast_length); use more data or shorter windows"
        )
    if short:
        log.info(
            "%d series shorter than %d steps give no window for %s",
            len(short),
            needed,
            what,
        )


def _longest_gap_ending(observed: np.ndarray) -> np.ndarray:
    """For each step, the length of the run of unobserved steps ending there (0 where observed)."""
    run = np.zeros(len(observed), int)
    count = 0
    for t, seen in enumerate(observed):
        count = 0 if seen else count + 1
        run[t] = count
    return run


def window_starts(
    length: int,
    context: int,
    forecast: int,
    stride: int = 1,
    first_target: int = 0,
    last_target: int | None = None,
    full_future: bool = True,
    observed: np.ndarray | None = None,
    max_gap: int | None = None,
    need_target: bool = False,
) -> np.ndarray:
    """Start indices of windows whose forecast targets lie in ``[first_target, last_target)``.

    A window starting at ``s`` has context ``[s, s + context)`` and targets
    ``[s + context, s + context + forecast)``; with ``full_future=False`` its
    targets may run past the end of the series (a forecast into the unknown).
    Given ``observed`` (the target's observed mask, ``[length]``), a window
    needs a reading in its context, no run of more than ``max_gap`` missing
    steps in it (None: any), and with ``need_target`` a reading among its
    targets (a training window with nothing to learn from is left out).
    """
    if not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be a positive integer; got {stride!r}")
    last_target = length if last_target is None else last_target
    lo = max(0, first_target - context)
    hi = last_target - context - (forecast if full_future else 1)
    starts = np.arange(lo, hi + 1, stride) if hi >= lo else np.arange(0)
    if observed is None or not len(starts):
        return starts
    observed = np.asarray(observed, bool)
    seen = np.r_[0, np.cumsum(observed)]
    keep = seen[starts + context] - seen[starts] > 0
    if max_gap is not None:
        run = _longest_gap_ending(observed)
        # the longest gap inside a context: runs ending in it, capped at its start
        windows = np.lib.stride_tricks.sliding_window_view(run, context)[starts]
        capped = np.minimum(windows, np.arange(1, context + 1))
        keep &= capped.max(axis=1) <= max_gap
    if need_target:
        ends = np.minimum(starts + context + forecast, length)
        keep &= seen[ends] - seen[starts + context] > 0
    return starts[keep]


class WindowDataset(torch.utils.data.Dataset):
    """TTM's batch format from scaled series: past/future values and observed masks, ``[length, C]`` each.

    The contexts are filled once, when the dataset is built, by ``fill``
    (:meth:`Preprocessor.fill`: each window from its own values); future values
    are 0 where unobserved, and their mask keeps them out of the loss.
    """

    def __init__(
        self,
        series: list[PatientSeries],
        starts: list[np.ndarray],
        context: int,
        forecast: int,
        fill,
    ):
        self.series, self.context, self.forecast = series, context, forecast
        self.index = [(i, int(s)) for i, st in enumerate(starts) for s in st]
        n_channels = series[0].values.shape[1] if series else 1
        past = np.zeros((len(self.index), context, n_channels))
        for k, (i, s) in enumerate(self.index):
            past[k] = series[i].values[s : s + context]
        self.past = (
            fill(past).astype(np.float32) if len(past) else past.astype(np.float32)
        )

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> dict:
        i, s = self.index[k]
        values, observed = self.series[i].values, self.series[i].observed
        c, f = s + self.context, s + self.context + self.forecast
        future = np.zeros((self.forecast, values.shape[1]))
        future_mask = np.zeros_like(future)
        n = min(f, len(values)) - c
        future_mask[:n] = observed[c : c + n]
        future[:n] = np.where(observed[c : c + n], values[c : c + n], 0.0)
        return {
            "past_values": torch.from_numpy(self.past[k]),
            "future_values": torch.tensor(future, dtype=torch.float32),
            "past_observed_mask": torch.tensor(observed[s:c], dtype=torch.float32),
            "future_observed_mask": torch.tensor(future_mask, dtype=torch.float32),
        }


def forecast_frame(
    series: list[PatientSeries],
    starts: list[np.ndarray],
    predictions: np.ndarray,
    truth_raw: dict[str, np.ndarray],
    context: int,
    resolution_min: int,
    target: str = "bg_mM",
) -> pd.DataFrame:
    """The forecasts ``[n_windows, forecast]`` (mmol/L) as a long table with the observed values beside them.

    ``truth_raw`` maps a patient to its target in original units with NaN
    where it was not observed, so imputed values are never scored.
    """
    forecast = predictions.shape[1]
    horizons = np.arange(1, forecast + 1)
    parts = []
    row = 0
    for s, st in zip(series, starts, strict=True):
        if len(st) == 0:
            continue
        n = len(st)
        pred = predictions[row : row + n]
        row += n
        origin_idx = st + context - 1
        target_idx = origin_idx[:, None] + horizons[None, :]
        truth = np.full(target_idx.shape, np.nan)
        inside = target_idx < len(s)
        truth[inside] = truth_raw[s.patient][target_idx[inside]]
        step = pd.Timedelta(minutes=resolution_min)
        origins = s.times[origin_idx]
        parts.append(
            pd.DataFrame(
                {
                    "p_num": s.patient,
                    "origin": np.repeat(origins, forecast),
                    "horizon_min": np.tile(horizons * resolution_min, n),
                    "time": np.repeat(origins, forecast) + np.tile(horizons, n) * step,
                    target: pred.ravel(),
                    "bg_mgdl": pred.ravel() * glucose.MGDL_PER_MMOL,
                    f"{target}_true": truth.ravel(),
                    "bg_mgdl_true": truth.ravel() * glucose.MGDL_PER_MMOL,
                }
            )
        )
    if not parts:
        raise ValueError(
            "no forecast origin: every series is shorter than context_length "
            "or has no usable context window"
        )
    return pd.concat(parts, ignore_index=True)


def time_split(
    frame: pd.DataFrame,
    test_fraction: float,
    context_length: int,
    id_column: str = "p_num",
    time_column: str = "datetime",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split each patient in time: the first part, and the last ``test_fraction`` plus the
    ``context_length`` rows before it (context only: no test target is in the first part)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1); got {test_fraction}")
    train, test = [], []
    for _, group in frame.sort_values([id_column, time_column]).groupby(
        id_column, sort=True
    ):
        cut = int(round(len(group) * (1 - test_fraction)))
        train.append(group.iloc[:cut])
        test.append(group.iloc[max(0, cut - context_length) :])
    return pd.concat(train, ignore_index=True), pd.concat(test, ignore_index=True)

"""Data sets, windows, scaling and missingness patterns.

Everything returns NumPy arrays shaped ``[n_samples, length, features]`` (or a
series ``[time, features]``), with NaN marking a missing value. The glucose
cohort (:mod:`tsgen.data.glucose`) is a long DataFrame, one row per patient
and 5-minute step.
"""

from . import cgm, glucose
from .missing import PATTERNS, add_missingness, missing_rate, missingness_by_pattern
from .mujoco import hopper_trajectories, mujoco_windows
from .scaling import MinMaxScaler
from .sines import make_sines
from .summary import missingness_summary, window_summary
from .timegan import DATASETS as TIMEGAN_DATASETS
from .timegan import (
    data_dir,
    fetch_timegan_csv,
    load_timegan,
    timegan_series,
    timegan_windows,
)
from .windows import sliding_windows, split_by_time, windowed_splits

__all__ = [
    "PATTERNS",
    "TIMEGAN_DATASETS",
    "MinMaxScaler",
    "add_missingness",
    "cgm",
    "glucose",
    "hopper_trajectories",
    "data_dir",
    "fetch_timegan_csv",
    "load_timegan",
    "make_sines",
    "missing_rate",
    "missingness_by_pattern",
    "missingness_summary",
    "mujoco_windows",
    "sliding_windows",
    "split_by_time",
    "timegan_series",
    "timegan_windows",
    "window_summary",
    "windowed_splits",
]

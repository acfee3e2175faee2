"""Continuous glucose monitoring (CGM) data: a simulated virtual cohort and a CSV loader.

Every function returns one combined DataFrame in the *cohort format*, one row
per patient and 5-minute step, oldest first within a patient:

========== ==========================================================
column     meaning
========== ==========================================================
datetime   time of the CGM reading
p_num      patient id (a string, e.g. ``"adult#001"``)
bg_mM      CGM glucose in mmol/L (mg/dL ÷ 18.016)
iob        insulin on board above basal, U (exponential insulin action)
cob        carbohydrates on board, g (linear absorption)
dose_units insulin delivered during the step, U (basal + bolus)
carbs      carbohydrates eaten during the step, g
========== ==========================================================

The cohort is simulated with simglucose (Xie 2018), an implementation of the
UVA/Padova T1D simulator whose 30 virtual patients (10 adolescents, 10 adults,
10 children) ship inside the package: a GuardianRT CGM (5-minute readings with
the Johnson-distributed sensor noise), random daily meal scenarios, an Insulet
pump and simglucose's basal-bolus controller (basal at the steady-state rate,
a bolus of carbs/CR + correction at each meal). Simulating is slow (about a
second per patient-day), so each patient's trace is cached on disk under
``tsgen.data.data_dir() / "glucose"``.
"""

from __future__ import annotations

import collections
import logging
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from ..runtime import atomic_file, quiet
from ..runtime import progress as progress_bar
from .timegan import data_dir

log = logging.getLogger(__name__)

MGDL_PER_MMOL = 18.016
SAMPLE_MIN = 5  # the GuardianRT sensor's sampling period
GROUPS = ("adolescent", "adult", "child")
COLUMNS = ["datetime", "p_num", "bg_mM", "iob", "cob", "dose_units", "carbs"]
CACHE_VERSION = "v1"  # bump when the simulation or the derived columns change

# Insulin action (rapid-acting analogue, exponential model as in Loop/OpenAPS):
# activity peaks at 75 min and ends at 360 min. Carbs absorb linearly over 3 h.
INSULIN_PEAK_MIN = 75.0
INSULIN_DURATION_MIN = 360.0
CARB_ABSORPTION_MIN = 180.0

# What importing simglucose says about its dependency
# gym 0.9.4: nothing about the simulation itself.
SIMGLUCOSE_IMPORT_WARNINGS = [
    (UserWarning, "pkg_resources is deprecated as an API"),
    (DeprecationWarning, "distutils Version classes are deprecated"),
]


def patient_names(group: str | None = None) -> list[str]:
    """The simglucose virtual patients, e.g. ``adult#001``; ``group`` picks one age group."""
    if group is not None and group not in GROUPS:
        raise ValueError(f"unknown patient group {group!r}; choose one of {GROUPS}")
    groups = GROUPS if group is None else (group,)
    return [f"{g}#{i:03d}" for g in groups for i in range(1, 11)]


def insulin_remaining(
    t_min: np.ndarray,
    peak: float = INSULIN_PEAK_MIN,
    duration: float = INSULIN_DURATION_MIN,
) -> np.ndarray:
    """Fraction of an insulin dose still active ``t_min`` minutes after it was given.

    The exponential insulin model (LoopKit; Loop issue #388): activity rises to
    a peak at ``peak`` minutes and decays to zero at ``duration``; the returned
    fraction is 1 at t = 0 and 0 from ``duration`` on.
    """
    t = np.clip(np.asarray(t_min, dtype=float), 0.0, duration)
    tau = peak * (1 - peak / duration) / (1 - 2 * peak / duration)
    a = 2 * tau / duration
    s = 1 / (1 - a + (1 + a) * np.exp(-duration / tau))
    return 1 - s * (1 - a) * (
        (t**2 / (tau * duration * (1 - a)) - t / tau - 1) * np.exp(-t / tau) + 1
    )


def carbs_remaining(
    t_min: np.ndarray, absorption: float = CARB_ABSORPTION_MIN
) -> np.ndarray:
    """Fraction of a meal not yet absorbed ``t_min`` minutes after it: linear over ``absorption`` minutes."""
    return np.clip(1 - np.asarray(t_min, dtype=float) / absorption, 0.0, 1.0)


def on_board(amounts: np.ndarray, remaining: np.ndarray) -> np.ndarray:
    """What is still on board at each step: ``amounts`` (per step) convolved with a remaining-fraction kernel."""
    amounts = np.asarray(amounts, dtype=float)
    return np.convolve(amounts, remaining)[: len(amounts)]


def _kernel(fn, span_min: float) -> np.ndarray:
    return fn(np.arange(0, span_min + SAMPLE_MIN, SAMPLE_MIN))


def _fast_params(params: pd.Series):
    """The patient's parameters as a namedtuple: simglucose's ODE reads them once per
    simulated minute, and pandas attribute access makes that 5x slower (same numbers)."""
    fields = collections.namedtuple(
        "PatientParams", [str(c).replace(" ", "_") for c in params.index]
    )
    return fields(*params.to_numpy())


def simulate_patient(
    name: str, days: float = 2.0, seed: int = 0, start: str = "2024-01-01"
) -> pd.DataFrame:
    """Simulate one virtual patient for ``days`` days from midnight of ``start``; cohort format."""
    with quiet(warnings_=SIMGLUCOSE_IMPORT_WARNINGS):
        from simglucose.actuator.pump import InsulinPump
        from simglucose.controller.basal_bolus_ctrller import BBController
        from simglucose.patient.t1dpatient import T1DPatient
        from simglucose.sensor.cgm import CGMSensor
        from simglucose.simulation.env import Observation, T1DSimEnv
        from simglucose.simulation.scenario_gen import RandomScenario

    if name not in patient_names():
        raise ValueError(
            f"unknown virtual patient {name!r}; see tsgen.data.glucose.patient_names()"
        )
    if days <= 0:
        raise ValueError(f"days must be positive; got {days}")
    # Separate, reproducible streams for meals and sensor
    # noise, independent of the rest of the cohort.
    meal_seed, noise_seed = np.random.SeedSequence(
        [seed, patient_names().index(name)]
    ).generate_state(2)
    t0 = datetime.combine(pd.Timestamp(start).date(), datetime.min.time())
    patient = T1DPatient.withName(name)
    patient._params = _fast_params(patient._params)
    pump = InsulinPump.withName("Insulet")
    env = T1DSimEnv(
        patient,
        CGMSensor.withName("GuardianRT", seed=int(noise_seed)),
        pump,
        RandomScenario(start_time=t0, seed=int(meal_seed)),
    )
    controller = BBController()
    obs, info = (
        Observation(CGM=env.CGM_hist[0]),
        {"sample_time": env.sample_time, "patient_name": name, "meal": 0},
    )
    basal = []
    while env.time < t0 + timedelta(days=days):
        action = controller.policy(obs, 0, False, **info)
        basal.append(pump.basal(action.basal))
        obs, _, _, info = env.step(action)
    hist = env.show_history()
    n = len(hist) - 1  # the last reading has no action after it
    step = env.sample_time
    # U/min averaged over the step -> U per step
    dose = hist["insulin"].to_numpy()[:n] * step
    carbs = hist["CHO"].to_numpy()[:n] * step
    net = dose - np.asarray(basal[:n]) * step
    return pd.DataFrame(
        {
            "datetime": hist.index[:n],
            "p_num": name,
            "bg_mM": hist["CGM"].to_numpy()[:n] / MGDL_PER_MMOL,
            "iob": on_board(net, _kernel(insulin_remaining, INSULIN_DURATION_MIN)),
            "cob": on_board(carbs, _kernel(carbs_remaining, CARB_ABSORPTION_MIN)),
            "dose_units": dose,
            "carbs": carbs,
        }
    )


def _read_cached(path: Path, days: float) -> pd.DataFrame | None:
    """A cached trace, or None (with a warning) when the file is damaged: unreadable, wrong columns,
    missing values or fewer rows than ``days`` of 5-minute readings (a half-written file)."""
    expected = int(round(days * 24 * 60 / SAMPLE_MIN))
    try:
        frame = pd.read_csv(path, parse_dates=["datetime"])
    except (OSError, ValueError, pd.errors.ParserError) as err:
        problem = f"unreadable ({err})"
    else:
        if list(frame.columns) != COLUMNS:
            problem = f"columns {list(frame.columns)}"
        elif len(frame) != expected:
            problem = f"{len(frame)} rows instead of {expected}"
        elif frame[COLUMNS[2:]].isna().any().any():
            problem = "missing values"
        else:
            return frame
    log.warning("%s is damaged (%s): simulating again", path, problem)
    return None


def simulate_cohort(
    patients: list[str] | str = "adult",
    days: float = 2.0,
    seed: int = 0,
    start: str = "2024-01-01",
    cache: bool = True,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Simulate (or load from the cache) a virtual cohort in the cohort format.

    ``patients`` is a list of names (:func:`patient_names`) or an age group
    (``"adolescent"``, ``"adult"``, ``"child"``). Each patient gets its own meal
    and sensor-noise streams derived from ``(seed, patient)``, so a patient's
    trace does not depend on who else is in the cohort, and its cache file is
    shared between cohorts.
    """
    names = patient_names(patients) if isinstance(patients, str) else list(patients)
    if not names:
        raise ValueError("patients is empty")
    folder = Path(cache_dir or data_dir()) / "glucose" / f"sim-{CACHE_VERSION}"
    frames = []
    for name in progress_bar(names, enabled=progress, desc="simulating patients"):
        stem = name.replace("#", "_")
        day = pd.Timestamp(start).date()
        path = folder / f"{stem}_days{days:g}_seed{seed}_{day}.csv"
        frame = _read_cached(path, days) if cache and path.exists() else None
        if frame is None:
            frame = simulate_patient(name, days=days, seed=seed, start=start)
            if cache:
                with atomic_file(path) as partial:
                    frame.to_csv(partial, index=False)
                log.info("simulated %s for %g days -> %s", name, days, path)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)[COLUMNS]


def load_cgm_csv(
    path: str | Path,
    id_col: str | None = None,
    time_col: str | None = None,
    glucose_col: str | None = None,
    units: str = "mg/dL",
    bad_rows: str = "report",
) -> pd.DataFrame:
    """Load a public CGM CSV (GlucoBench layout: ``id``, ``time``, ``gl`` in mg/dL) into the cohort format.

    The rows are read and cleaned by :func:`tsgen.data.cgm.read_cgm` (column
    names detected among common spellings unless given; "Low"/"High" as the
    sensor's limits; bad rows set aside and reported in a warning, or an error
    with ``bad_rows="raise"``; duplicate timestamps merged and reported). Only
    glucose is read: ``iob``, ``cob``, ``dose_units`` and ``carbs`` are absent
    (forecasters then use glucose alone). Rows are sorted by patient and time;
    :func:`tsgen.data.cgm.read_cgm` also returns the table of what was done.
    """
    from .cgm import read_cgm  # cgm imports this module's constants

    frame, issues = read_cgm(
        path,
        id_col=id_col,
        time_col=time_col,
        glucose_col=glucose_col,
        units=units,
        bad_rows=bad_rows,
    )
    for row in issues.itertuples():
        log.info("%s: %d row(s): %s", path, row.rows, row.issue)
    return frame

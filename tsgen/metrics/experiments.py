"""Chapter 9's protocol: do the generation metrics grow as a real set is distorted step by step?

The sanity grid scores a *real* set against comparison sets of the same size:
an independent real sample (the metric's floor), that sample distorted by
:func:`~tsgen.metrics.distort` at increasing amounts, and uniform noise over the
real set's range (the far end). A sound metric stays near its floor for the
real sample, grows with each distortion's amount and is far from it for noise.

* :func:`sanity_sets` draws the real set and the second real sample of each data set;
* :func:`sanity_conditions` names the comparisons, :func:`comparison_sets` builds them;
* :func:`sanity_grid` scores every metric on every comparison: one row per
  data set × metric × condition × repeat seed;
* :func:`sanity_checks`, :func:`repeats_needed` and :func:`run_time` read that table;
* :func:`time_protocol` times one run of each metric at a given budget (the
  published one by default).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from ..data import make_sines, timegan_windows
from ..runtime import numpy_rng
from ..runtime import progress as progress_bar
from . import discriminative, predictive
from .context_fid import ContextFID
from .correlation import correlation_score
from .discriminative import discriminative_score
from .predictive import predictive_score
from .sanity import distort
from .ts2vec import default_iterations

METRICS = ("discriminative", "predictive", "context-FID", "correlation")
# The published protocols (TimeGAN, TS2Vec's
# reference budget, Diffusion-TS's 5 repeats).
PUBLISHED = {
    "disc_iterations": discriminative.ITERATIONS,
    "pred_iterations": predictive.ITERATIONS,
    "ts2vec_iterations": None,
    "repeats": 5,
}
ROUND_OFF = 1e-6  # differences below this are float32 round-off, not a change
SANITY_DATASETS = ("sines", "stock", "energy")

Condition = tuple[str, str, float]  # (label, kind, amount)


def sanity_sets(
    datasets: Iterable[str], n_samples: int, seed: int = 0, length: int = 24
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{dataset: (real, other)}``: two disjoint sets of ``n_samples`` windows each.

    ``sines``: ``2 * n_samples`` draws of :func:`~tsgen.data.make_sines` (five
    channels). ``stock`` / ``energy``: the TimeGAN windows (stride 1, scaled
    over the whole series). Each data set's windows are shuffled with ``seed``
    and split into halves; TimeGAN windows overlap, so the halves share days —
    disjoint windows, not independent histories, as in the generation papers.
    """
    sets = {}
    for name in datasets:
        if name not in SANITY_DATASETS:
            raise ValueError(
                f"unknown data set {name!r}; choose from {SANITY_DATASETS}"
            )
        if name == "sines":
            windows = make_sines(2 * n_samples, length=length, n_features=5, seed=seed)
        else:
            windows = timegan_windows(name, length)[0]
        if len(windows) < 2 * n_samples:
            raise ValueError(
                f"{name} has {len(windows)} windows; "
                f"n_samples={n_samples} needs {2 * n_samples}"
            )
        windows = windows[numpy_rng(seed).permutation(len(windows))]
        sets[name] = windows[:n_samples], windows[n_samples : 2 * n_samples]
    return sets


def sanity_conditions(
    shifts: Sequence[float] = (),
    smooth_steps: Sequence[int] = (),
    freq_changes: Sequence[float] = (),
) -> list[Condition]:
    """The comparisons, as ``(label, kind, amount)``: the real sample, each distortion amount, noise."""
    conditions = [("real sample", "none", 0.0)]
    for kind, amounts in (
        ("shift", shifts),
        ("smooth", smooth_steps),
        ("frequency", freq_changes),
    ):
        conditions += [(f"{kind} {a}", kind, float(a)) for a in amounts]
    return conditions + [("noise", "noise", 1.0)]


def comparison_sets(
    sets: dict[str, tuple[np.ndarray, np.ndarray]],
    conditions: Sequence[Condition],
    seed: int = 0,
) -> dict[str, dict[str, np.ndarray]]:
    """``{dataset: {condition label: comparison set}}`` for the sets of :func:`sanity_sets`.

    ``none`` is the second real sample itself, ``noise`` is uniform noise over
    the real set's range (drawn with ``seed``), anything else is the second
    sample distorted.
    """
    out = {}
    for name, (real, other) in sets.items():
        out[name] = {}
        for label, kind, amount in conditions:
            if kind == "none":
                out[name][label] = other
            elif kind == "noise":
                out[name][label] = numpy_rng(seed).uniform(
                    real.min(), real.max(), other.shape
                )
            else:
                out[name][label] = distort(other, kind, amount)
    return out


def sanity_grid(
    sets: dict[str, tuple[np.ndarray, np.ndarray]],
    conditions: Sequence[Condition],
    *,
    seed: int = 0,
    device: str = "cpu",
    disc_iterations: int = PUBLISHED["disc_iterations"],
    pred_iterations: int = PUBLISHED["pred_iterations"],
    ts2vec_iterations: int | None = None,
    repeats: int = PUBLISHED["repeats"],
    progress: bool = False,
) -> pd.DataFrame:
    """Every metric on every comparison set: one row per data set × condition × metric × repeat.

    Repeat ``r`` of a metric uses seed ``seed + r``. Context-FID's TS2Vec
    encoders are trained once per data set on the real set (one per repeat) and
    reused for every comparison; the other metrics train per comparison.
    Columns: ``dataset``, ``condition``, ``kind``, ``amount``, ``metric``,
    ``seed``, ``value``, ``seconds`` (per run: a metric's wall time over its
    repeats, divided by them; context-FID's includes its encoder training),
    ``iterations`` (training steps per run; NaN for correlation) and
    ``published iterations`` (the published protocol's).
    """
    comparisons = comparison_sets(sets, conditions, seed)
    tasks = [(name, condition) for name in sets for condition in conditions]
    rows, fid = [], {}
    for name, (label, kind, amount) in progress_bar(
        tasks, enabled=progress, desc="sanity grid"
    ):
        real, fake = sets[name][0], comparisons[name][label]
        if name not in fid:
            fid[name] = ContextFID(
                real,
                seed=seed,
                device=device,
                iterations=ts2vec_iterations,
                repeats=repeats,
            )
        ts2vec_budget = default_iterations(real.size)
        results = {
            "discriminative": (
                discriminative_score(
                    real,
                    fake,
                    seed=seed,
                    device=device,
                    iterations=disc_iterations,
                    repeats=repeats,
                ),
                disc_iterations,
                PUBLISHED["disc_iterations"],
            ),
            "predictive": (
                predictive_score(
                    real,
                    fake,
                    seed=seed,
                    device=device,
                    iterations=pred_iterations,
                    repeats=repeats,
                ),
                pred_iterations,
                PUBLISHED["pred_iterations"],
            ),
            "context-FID": (
                fid[name](fake),
                ts2vec_iterations or ts2vec_budget,
                ts2vec_budget,
            ),
            "correlation": (
                correlation_score(real, fake, seed=seed, repeats=repeats),
                np.nan,
                np.nan,
            ),
        }
        for metric, (result, iterations, published) in results.items():
            for r, value in enumerate(result.values):
                rows.append(
                    {
                        "dataset": name,
                        "condition": label,
                        "kind": kind,
                        "amount": amount,
                        "metric": metric,
                        "seed": seed + r,
                        "value": value,
                        "seconds": result.seconds / len(result.values),
                        "iterations": iterations,
                        "published iterations": published,
                    }
                )
    return pd.DataFrame(rows)


def _means(runs: pd.DataFrame) -> pd.DataFrame:
    return (
        runs.groupby(["dataset", "metric", "condition", "kind", "amount"], sort=False)[
            "value"
        ]
        .agg(mean="mean", var=lambda v: v.var(ddof=1) if len(v) > 1 else np.nan)
        .reset_index()
    )


def _distortions(runs: pd.DataFrame) -> list[str]:
    return [k for k in dict.fromkeys(runs["kind"]) if k not in ("none", "noise")]


def sanity_checks(runs: pd.DataFrame, tol: float = ROUND_OFF) -> pd.DataFrame:
    """Per data set and metric, from the means over repeats of :func:`sanity_grid`'s table:

    ``noise above floor`` (noise scores higher than the real sample) and
    ``<kind> monotone`` (the mean grows by more than ``tol`` from the real
    sample through each of the distortion's amounts).
    """
    rows = []
    for (name, metric), group in _means(runs).groupby(
        ["dataset", "metric"], sort=False
    ):
        means = group.set_index("condition")["mean"]
        floor = means["real sample"]
        row = {
            "dataset": name,
            "metric": metric,
            "noise above floor": bool(means["noise"] > floor),
        }
        for kind in _distortions(runs):
            path = [floor, *group[group["kind"] == kind].sort_values("amount")["mean"]]
            row[f"{kind} monotone"] = bool(np.all(np.diff(path) > tol))
        rows.append(row)
    return pd.DataFrame(rows)


def repeats_needed(runs: pd.DataFrame, tol: float = ROUND_OFF) -> pd.DataFrame:
    """Repeats ``k`` needed to separate the real sample from each distortion's strongest amount.

    Two means of ``k`` runs each differ significantly (95 %) when
    ``1.96 * s * sqrt(2 / k) < gap``, so ``k >= 2 (1.96 s / gap)^2`` with ``s^2``
    the mean of the two conditions' variances over repeats; ``inf`` where the
    gap is not above ``tol`` (the metric does not see the distortion). Also
    ``std at real sample``, the spread of single runs. Needs two or more repeats.
    """
    rows = []
    for (name, metric), group in _means(runs).groupby(
        ["dataset", "metric"], sort=False
    ):
        by_label = group.set_index("condition")
        floor = by_label.loc["real sample"]
        row = {
            "dataset": name,
            "metric": metric,
            "std at real sample": np.sqrt(floor["var"]),
        }
        for kind in _distortions(runs):
            strongest = group[group["kind"] == kind].sort_values("amount").iloc[-1]
            gap = strongest["mean"] - floor["mean"]
            k = (
                np.ceil(1.96**2 * (floor["var"] + strongest["var"]) / gap**2)
                if gap > tol
                else np.inf
            )
            row[f"k for {strongest['condition']}"] = k
        rows.append(row)
    return pd.DataFrame(rows)


def run_time(runs: pd.DataFrame) -> pd.DataFrame:
    """Seconds per run of each metric in :func:`sanity_grid`'s table (median), and at the published budget.

    The training metrics scale linearly with their iterations, so the
    published-budget column is an *estimate*: the measured cost per step times
    the published steps. The correlation score trains nothing; its time is kept.
    """
    table = runs.groupby("metric", sort=False).agg(
        **{
            "iterations here": ("iterations", "first"),
            "s per run here": ("seconds", "median"),
            "published iterations": ("published iterations", "first"),
        }
    )
    estimate = (
        table["s per run here"]
        * table["published iterations"]
        / table["iterations here"]
    )
    table["s per run, published (est.)"] = estimate.fillna(table["s per run here"])
    return table.reset_index()


def time_protocol(
    real,
    fake,
    *,
    seed: int = 0,
    device: str = "cpu",
    disc_iterations: int = PUBLISHED["disc_iterations"],
    pred_iterations: int = PUBLISHED["pred_iterations"],
    ts2vec_iterations: int | None = None,
) -> pd.DataFrame:
    """Wall time of one run of each metric at the given budget (the published one by default)."""
    results = {
        "discriminative": discriminative_score(
            real, fake, seed=seed, device=device, iterations=disc_iterations, repeats=1
        ),
        "predictive": predictive_score(
            real, fake, seed=seed, device=device, iterations=pred_iterations, repeats=1
        ),
        "context-FID": ContextFID(
            real, seed=seed, device=device, iterations=ts2vec_iterations, repeats=1
        )(fake),
        "correlation": correlation_score(real, fake, seed=seed, repeats=1),
    }
    return pd.DataFrame(
        [
            {"metric": name, "value": result.mean, "seconds": result.seconds}
            for name, result in results.items()
        ]
    )

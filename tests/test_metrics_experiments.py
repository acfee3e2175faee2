import numpy as np
import pandas as pd
import pytest

from tsgen.metrics import experiments

TINY = dict(disc_iterations=2, pred_iterations=2, ts2vec_iterations=1, repeats=2)


@pytest.fixture(scope="module")
def sets():
    return experiments.sanity_sets(["sines"], 12, seed=0)


def test_conditions_run_from_the_real_sample_to_noise():
    conditions = experiments.sanity_conditions([0.1, 0.2], [1], [0.5])
    assert conditions == [
        ("real sample", "none", 0.0),
        ("shift 0.1", "shift", 0.1),
        ("shift 0.2", "shift", 0.2),
        ("smooth 1", "smooth", 1.0),
        ("frequency 0.5", "frequency", 0.5),
        ("noise", "noise", 1.0),
    ]


def test_sanity_sets_are_disjoint_halves_drawn_from_the_seed(sets):
    real, other = sets["sines"]
    assert real.shape == other.shape == (12, 24, 5)
    assert not any(np.array_equal(r, o) for r in real for o in other)
    again = experiments.sanity_sets(["sines"], 12, seed=0)["sines"]
    assert all(np.array_equal(a, b) for a, b in zip(again, sets["sines"], strict=True))
    with pytest.raises(ValueError, match="unknown data set"):
        experiments.sanity_sets(["walks"], 12)


def test_comparison_sets(sets):
    conditions = experiments.sanity_conditions([0.3], [], [])
    comparisons = experiments.comparison_sets(sets, conditions, seed=0)["sines"]
    real, other = sets["sines"]
    assert comparisons["real sample"] is other
    assert np.allclose(comparisons["shift 0.3"], other + 0.3)
    assert (
        real.min() <= comparisons["noise"].min()
        and comparisons["noise"].max() <= real.max()
    )


def test_sanity_grid_rows_columns_and_determinism(sets):
    conditions = experiments.sanity_conditions([0.2], [], [])
    runs = experiments.sanity_grid(sets, conditions, seed=3, **TINY)
    assert len(runs) == 1 * len(conditions) * len(experiments.METRICS) * TINY["repeats"]
    assert list(runs.columns) == [
        "dataset",
        "condition",
        "kind",
        "amount",
        "metric",
        "seed",
        "value",
        "seconds",
        "iterations",
        "published iterations",
    ]
    assert set(runs["seed"]) == {3, 4} and set(runs["metric"]) == set(
        experiments.METRICS
    )
    assert np.isfinite(runs["value"]).all() and (runs["seconds"] >= 0).all()
    again = experiments.sanity_grid(sets, conditions, seed=3, **TINY)
    assert np.array_equal(again["value"], runs["value"])


def _synthetic_runs() -> pd.DataFrame:
    """A metric that is the amount plus noise of std 0.01, and a blind one (always 0)."""
    rows = []
    conditions = experiments.sanity_conditions([0.1, 0.5], [], [])
    for label, kind, amount in conditions:
        for seed, noise in enumerate((-0.01, 0.01)):
            rows.append(
                {
                    "dataset": "d",
                    "condition": label,
                    "kind": kind,
                    "amount": amount,
                    "metric": "good",
                    "seed": seed,
                    "value": amount + noise,
                    "seconds": 2.0,
                    "iterations": 10,
                    "published iterations": 100,
                }
            )
            rows.append(
                {
                    "dataset": "d",
                    "condition": label,
                    "kind": kind,
                    "amount": amount,
                    "metric": "blind",
                    "seed": seed,
                    "value": 0.0,
                    "seconds": 1.0,
                    "iterations": np.nan,
                    "published iterations": np.nan,
                }
            )
    return pd.DataFrame(rows)


def test_checks_repeats_and_run_time_read_the_table():
    runs = _synthetic_runs()
    checks = experiments.sanity_checks(runs).set_index("metric")
    assert (
        checks.loc["good", "noise above floor"] and checks.loc["good", "shift monotone"]
    )
    assert (
        not checks.loc["blind", "noise above floor"]
        and not checks.loc["blind", "shift monotone"]
    )
    needed = experiments.repeats_needed(runs).set_index("metric")
    # s^2 = 2e-4 per condition, gap 0.5: k = ceil(1.96^2 * 4e-4 / 0.25) = 1
    assert needed.loc["good", "k for shift 0.5"] == 1
    assert needed.loc["good", "std at real sample"] == pytest.approx(np.sqrt(2e-4))
    assert needed.loc["blind", "k for shift 0.5"] == np.inf
    timing = experiments.run_time(runs).set_index("metric")
    assert timing.loc["good", "s per run, published (est.)"] == pytest.approx(20.0)
    assert timing.loc["blind", "s per run, published (est.)"] == pytest.approx(1.0)


def test_time_protocol(sets):
    table = experiments.time_protocol(
        *sets["sines"], disc_iterations=2, pred_iterations=2, ts2vec_iterations=1
    )
    assert list(table["metric"]) == list(experiments.METRICS)
    assert np.isfinite(table[["value", "seconds"]].to_numpy()).all()

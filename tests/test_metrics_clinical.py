import numpy as np
import pandas as pd
import pytest

from tsgen.metrics import clinical


@pytest.mark.parametrize(
    "ref, pred, zone",
    [
        # within 20 % / both below 70
        (100, 100, "A"),
        (100, 119, "A"),
        (100, 81, "A"),
        (50, 65, "A"),
        # off, but benign
        (100, 150, "B"),
        (200, 100, "B"),
        (300, 200, "B"),
        # overcorrection
        (100, 250, "C"),
        (150, 20, "C"),
        # missed hypo/hyper
        (250, 100, "D"),
        (50, 100, "D"),
        (65, 90, "D"),
        # wrong direction
        (60, 200, "E"),
        (200, 50, "E"),
    ],
)
def test_clarke_zones_on_reference_points(ref, pred, zone):
    assert clinical.clarke_zones([ref], [pred])[0] == zone


def test_clarke_shares_sum_to_one():
    rng = np.random.default_rng(0)
    ref = rng.uniform(40, 400, 500)
    shares = clinical.clarke_shares(ref, ref * rng.uniform(0.5, 1.5, 500))
    assert set(shares) == set("ABCDE")
    assert sum(shares.values()) == pytest.approx(1.0)
    assert clinical.clarke_shares(ref, ref)["A"] == 1.0


def test_errors_and_units():
    t, p = np.array([100.0, 200.0]), np.array([110.0, 170.0])
    assert clinical.rmse(t, p) == pytest.approx(np.sqrt((100 + 900) / 2))
    assert clinical.mae(t, p) == pytest.approx(20.0)
    assert clinical.mard(t, p) == pytest.approx(100 * (0.1 + 0.15) / 2)
    table = pd.DataFrame(
        {
            "horizon_min": [30, 30, 60, 60],
            "bg_mgdl": [110, 170, 100, 200],
            "bg_mgdl_true": [100, 200, 100, np.nan],
        }
    )
    scored = clinical.horizon_metrics(table)
    assert scored.loc[30, "MAE mmol/L"] == pytest.approx(20.0 / 18.016)
    assert scored.loc[60, "n"] == 1 and scored.loc[60, "RMSE mg/dL"] == 0.0


def test_time_in_range():
    tir = clinical.time_in_range([50, 100, 150, 200, np.nan])
    assert tir == {"below": 0.25, "in range": 0.5, "above": 0.25}


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="differ in size"):
        clinical.rmse([1, 2], [1])
    with pytest.raises(ValueError, match="NaN or infinite"):
        clinical.clarke_zones([100, np.inf], [100, 100])
    with pytest.raises(ValueError, match="positive"):
        clinical.mard([0, 100], [1, 100])
    with pytest.raises(ValueError, match="lacks column"):
        clinical.horizon_metrics(pd.DataFrame({"x": [1]}))
    with pytest.raises(ValueError, match="no scorable forecast at horizon 90"):
        clinical.horizon_metrics(
            pd.DataFrame(
                {"horizon_min": [30], "bg_mgdl": [1.0], "bg_mgdl_true": [1.0]}
            ),
            (90,),
        )


def test_plot_clarke_draws():
    import matplotlib

    matplotlib.use("Agg")
    ax = clinical.plot_clarke([100, 200], [110, 150])
    assert ax.get_xlim() == (0, 400)


def test_units_and_ranges_are_checked():
    with pytest.raises(ValueError, match="looks like mmol/L"):
        clinical.clarke_zones([5.5, 7.0, 10.0], [5.0, 7.5, 9.0])
    with pytest.raises(ValueError, match="negative glucose"):
        clinical.clarke_zones([-5.0, 100.0], [90.0, 100.0])
    with pytest.raises(ValueError, match="low < high"):
        clinical.time_in_range([100.0, 150.0], low=180, high=70)
    with pytest.raises(ValueError, match="negative glucose"):
        clinical.time_in_range([-1.0, 150.0])
    with pytest.raises(ValueError, match="looks like mmol/L"):
        clinical.time_in_range([5.0, 6.0])


def test_glucobench_errors_are_medians_over_forecasts():
    import pandas as pd

    rows = []
    for origin, offset in enumerate([1.0, 2.0, 10.0]):
        for h in range(1, 13):
            rows.append(
                {
                    "p_num": "a",
                    "origin": origin,
                    "horizon_min": 5 * h,
                    "bg_mgdl": 100 + offset,
                    "bg_mgdl_true": 100.0 if h != 3 else float("nan"),
                }
            )
    errors = clinical.glucobench_errors(pd.DataFrame(rows))
    # per forecast MSE 1, 4, 100: the median is 4, its root 2; MAE median 2
    assert errors["GlucoBench RMSE mg/dL"] == pytest.approx(2.0)
    assert errors["GlucoBench MAE mg/dL"] == pytest.approx(2.0)
    assert errors["forecasts"] == 3


def test_a_negative_forecast_is_zoned_as_zero_not_an_error():
    zones = clinical.clarke_zones([60.0, 250.0, 100.0], [-6.3, -6.3, -6.3])
    assert zones.tolist() == clinical.clarke_zones([60, 250, 100], [0, 0, 0]).tolist()
    assert zones.tolist()[:2] == ["A", "E"]

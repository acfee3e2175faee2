import numpy as np
import pandas as pd
import pytest

from tsgen.data import glucose


def test_patient_names():
    assert len(glucose.patient_names()) == 30
    assert glucose.patient_names("child")[0] == "child#001"
    with pytest.raises(ValueError, match="unknown patient group"):
        glucose.patient_names("elderly")


def test_on_board_curves():
    assert glucose.insulin_remaining(0) == pytest.approx(1.0)
    assert glucose.insulin_remaining(glucose.INSULIN_DURATION_MIN) == pytest.approx(
        0.0, abs=1e-12
    )
    curve = glucose.insulin_remaining(np.arange(0, 361, 5))
    assert (np.diff(curve) <= 1e-12).all()
    assert glucose.carbs_remaining([0, 90, 180, 300]).tolist() == [1.0, 0.5, 0.0, 0.0]
    # One 10 g meal at step 2: all on board at once, half after 90 minutes (18 steps).
    meal = np.zeros(60)
    meal[2] = 10
    cob = glucose.on_board(meal, glucose._kernel(glucose.carbs_remaining, 180))
    assert cob[:2].tolist() == [0, 0] and cob[2] == 10 and cob[20] == pytest.approx(5.0)


def test_simulated_cohort_is_cached_and_reproducible(tmp_path):
    cohort = glucose.simulate_cohort(
        ["adult#001"], days=0.25, seed=1, cache_dir=tmp_path, progress=False
    )
    assert list(cohort.columns) == glucose.COLUMNS
    assert len(cohort) == 72  # six hours of 5-minute readings
    assert (cohort["datetime"].diff().dropna() == pd.Timedelta(minutes=5)).all()
    assert cohort["bg_mM"].between(39 / 18.016, 600 / 18.016).all()
    assert (cohort[["iob", "cob", "dose_units", "carbs"]] >= -1e-9).all().all()
    files = list((tmp_path / "glucose").rglob("*.csv"))
    assert len(files) == 1
    again = glucose.simulate_cohort(
        ["adult#001"], days=0.25, seed=1, cache_dir=tmp_path, progress=False
    )
    pd.testing.assert_frame_equal(cohort, again)
    fresh = glucose.simulate_patient("adult#001", days=0.25, seed=1)
    np.testing.assert_allclose(fresh["bg_mM"], cohort["bg_mM"])


def test_simulation_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown virtual patient"):
        glucose.simulate_patient("adult#099")
    with pytest.raises(ValueError, match="days must be positive"):
        glucose.simulate_patient("adult#001", days=0)


def test_load_cgm_csv(tmp_path):
    path = tmp_path / "cgm.csv"
    pd.DataFrame(
        {
            "id": [2, 1, 1],
            "time": ["2020-01-01 00:05", "2020-01-01 00:05", "2020-01-01 00:00"],
            "gl": [90.08, 180.16, 72.064],
        }
    ).to_csv(path, index=False)
    frame = glucose.load_cgm_csv(path)
    assert frame["p_num"].tolist() == ["1", "1", "2"]
    np.testing.assert_allclose(frame["bg_mM"], [4.0, 10.0, 5.0])
    with pytest.raises(ValueError, match="cannot find a glucose column"):
        pd.DataFrame({"id": [1], "time": ["2020-01-01"], "value": [1]}).to_csv(
            path, index=False
        )
        glucose.load_cgm_csv(path)


def test_load_cgm_csv_reports_bad_rows(tmp_path, caplog):
    path = tmp_path / "cgm.csv"
    pd.DataFrame(
        {
            "id": ["1", "1", "", "01"],
            "time": [
                "2020-01-01 00:00",
                "2020-01-01 00:05",
                "2020-01-01 00:05",
                "2020-01-01",
            ],
            "gl": ["Low", "High", "100", "100"],
        }
    ).to_csv(path, index=False)
    with caplog.at_level("INFO"):
        frame = glucose.load_cgm_csv(path)
    # ids stay text ("1" and "01" differ); the row without an id is reported, not lost silently
    assert sorted(frame.p_num.unique()) == ["01", "1"]
    np.testing.assert_allclose(frame.bg_mM[frame.p_num == "1"] * 18.016, [40, 400])
    assert "missing patient id" in caplog.text and "'Low' reading" in caplog.text
    with pytest.raises(ValueError, match="missing patient id"):
        glucose.load_cgm_csv(path, bad_rows="raise")


def test_a_half_written_cohort_cache_is_simulated_again(tmp_path, caplog):
    cohort = glucose.simulate_cohort(["adult#001"], days=0.25, cache_dir=tmp_path)
    (file,) = list((tmp_path / "glucose").rglob("*.csv"))
    file.write_text("\n".join(file.read_text().splitlines()[:30]) + "\n")
    with caplog.at_level("WARNING"):
        again = glucose.simulate_cohort(["adult#001"], days=0.25, cache_dir=tmp_path)
    assert "29 rows instead of 72" in caplog.text
    pd.testing.assert_frame_equal(cohort, again)
    assert len(pd.read_csv(file)) == 72

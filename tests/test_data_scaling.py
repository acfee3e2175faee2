import json

import numpy as np
import pytest

from tsgen.data import MinMaxScaler


def test_round_trip_and_range(rng):
    x = rng.normal(5, 3, size=(30, 12, 4))
    scaler = MinMaxScaler().fit(x)
    z = scaler.transform(x)
    assert z.min() >= 0 and z.max() <= 1 and np.isclose(z.max(), 1, atol=1e-6)
    assert np.allclose(scaler.inverse_transform(z), x)


def test_nan_is_ignored_and_kept(rng):
    x = rng.normal(size=(100, 3))
    x[::7, 1] = np.nan
    z = MinMaxScaler().fit_transform(x)
    assert (
        np.isnan(z[::7, 1]).all()
        and not np.isnan(np.delete(z, np.s_[::7], axis=0)).any()
    )


def test_json_round_trip(rng):
    x = rng.normal(size=(50, 2))
    scaler = MinMaxScaler().fit(x)
    again = MinMaxScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    assert np.array_equal(again.transform(x), scaler.transform(x))


def test_errors():
    with pytest.raises(RuntimeError, match="not fitted"):
        MinMaxScaler().transform(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="expected 2 features"):
        MinMaxScaler().fit(np.random.rand(5, 2)).transform(np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"feature\(s\) \[1\]"):
        MinMaxScaler().fit(np.array([[1.0, np.nan], [2.0, np.nan]]))
    with pytest.raises(ValueError, match="infinite"):
        MinMaxScaler().fit(np.array([[1.0, np.inf]]))

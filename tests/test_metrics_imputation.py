import numpy as np
import pytest

from tsgen.data import add_missingness, make_sines
from tsgen.metrics import imputation_errors


def test_known_values_over_the_mask():
    truth = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 4, 1)
    imputed = np.array([1.0, 0.0, 3.0, 7.0]).reshape(1, 4, 1)
    mask = np.array([0, 1, 0, 1]).reshape(1, 4, 1)
    errors = imputation_errors(imputed, truth, mask)
    assert errors["mae"] == pytest.approx(2.5)  # (2 + 3) / 2
    assert errors["mse"] == pytest.approx(6.5)  # (4 + 9) / 2
    assert errors["rmse"] == pytest.approx(np.sqrt(6.5))
    assert errors["mre"] == pytest.approx(5 / 6)  # (2 + 3) / (2 + 4)


def test_with_a_pypots_missingness_dict():
    x = make_sines(20, seed=0)
    data = add_missingness(x, "point", 0.3, seed=0)
    imputed = np.nan_to_num(data["X"], nan=0.5)
    errors = imputation_errors(imputed, data["X_ori"], data["indicating_mask"])
    held = data["indicating_mask"] == 1
    assert errors["mae"] == pytest.approx(np.abs(0.5 - x[held]).mean())


def test_errors():
    x = np.ones((2, 3, 1))
    with pytest.raises(ValueError, match="one shape"):
        imputation_errors(x, x, np.ones((2, 3, 2)))
    with pytest.raises(ValueError, match="no value"):
        imputation_errors(x, x, np.zeros_like(x))
    with pytest.raises(ValueError, match="only 0 and 1"):
        imputation_errors(x, x, np.full_like(x, 0.5))
    with pytest.raises(ValueError, match="imputed has NaN"):
        imputation_errors(np.full_like(x, np.nan), x, np.ones_like(x))

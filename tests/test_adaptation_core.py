"""The networks the engines wrap: MLPForecaster and ConvImputer."""

import pytest
import torch

from tsgen.adaptation import ConvImputer, MLPForecaster


def test_forecaster_shapes_and_layers():
    model = MLPForecaster(24, 6, 5, hidden=32)
    assert model(torch.rand(3, 24, 5)).shape == (3, 6, 5)
    assert {"encoder", "norm", "head"} <= dict(model.named_modules()).keys()


def test_forecaster_with_mask_ignores_values_at_missing_entries():
    torch.manual_seed(0)
    model = MLPForecaster(8, 2, 2, use_mask=True)
    x = torch.rand(2, 8, 2)
    mask = torch.ones_like(x)
    mask[:, :3] = 0
    a = model({"X": x, "missing_mask": mask})
    b = model(
        {
            "X": torch.where(mask.bool(), x, torch.full_like(x, 7.0)),
            "missing_mask": mask,
        }
    )
    assert torch.equal(a, b)
    nan_x = torch.where(mask.bool(), x, torch.full_like(x, float("nan")))
    assert torch.equal(a, model(nan_x))


def test_forecaster_errors():
    with pytest.raises(ValueError, match="horizon"):
        MLPForecaster(8, 0, 2)
    model = MLPForecaster(8, 2, 2)
    with pytest.raises(ValueError, match=r"\[batch, 8, 2\]"):
        model(torch.rand(1, 9, 2))
    x = torch.rand(1, 8, 2)
    x[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="use_mask=False"):
        model(x)


def test_imputer_shapes_and_mask_use():
    torch.manual_seed(0)
    model = ConvImputer(3, hidden=8)
    x = torch.rand(2, 10, 3)
    mask = (torch.rand_like(x) > 0.3).float()
    out = model({"X": x, "missing_mask": mask})
    assert out.shape == (2, 10, 3)
    assert not torch.equal(out, model({"X": x, "missing_mask": torch.ones_like(x)}))
    with pytest.raises(ValueError, match=r"\[batch, time, 3\]"):
        model(torch.rand(2, 10, 4))

"""SelfReconstructionEngine: the model imputes hidden observed entries; weights restored."""

import pytest
import torch
from torch import nn

from tsgen.adaptation import SelfReconstructionEngine, get_engine


class Smoother(nn.Module):
    """A tiny dict-input imputer: a learnable mix of neighbouring observed values."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 1, 3, padding=1)

    def forward(self, inputs):
        x, m = inputs["X"], inputs["missing_mask"]
        out = self.conv(
            torch.stack([x[..., 0] * m[..., 0], m[..., 0]], dim=1)
        ).transpose(1, 2)
        return {"reconstruction": out, "imputation": m * x + (1 - m) * out}


def batch(seed=0, n=4):
    g = torch.Generator().manual_seed(seed)
    x = torch.sin(torch.linspace(0, 6, 20)).repeat(n, 1).unsqueeze(
        -1
    ) + 0.05 * torch.randn(n, 20, 1, generator=g)
    mask = (torch.rand(n, 20, 1, generator=g) > 0.3).float()
    return {"X": x * mask, "missing_mask": mask}


def test_registered_and_loss_only_on_hidden_observed_entries():
    assert get_engine("self_reconstruction") is SelfReconstructionEngine
    torch.manual_seed(0)
    engine = SelfReconstructionEngine(Smoother(), mask_ratio=0.5)
    inputs = batch()
    # a model that is exact on observed entries
    # has zero loss; missing entries never count
    truth = _Exact(inputs["X"])
    exact = SelfReconstructionEngine(truth, mask_ratio=0.5)
    exact.train()
    _, loss = exact(inputs)
    assert loss.item() == 0.0 and truth.calls == 2
    engine.train()
    out, loss = engine(inputs)
    assert out.shape == inputs["X"].shape and loss.requires_grad and loss.item() > 0


class _Exact(nn.Module):
    """Returns the true values everywhere (NaN where the data is missing, to prove they are never scored)."""

    def __init__(self, truth):
        super().__init__()
        self.truth, self.calls, self.p = truth, 0, nn.Parameter(torch.zeros(()))

    def forward(self, inputs):
        self.calls += 1
        return self.truth + self.p


def test_adaptation_lowers_the_loss_restores_weights_and_is_order_independent():
    torch.manual_seed(0)
    model = Smoother()
    engine = SelfReconstructionEngine(
        model,
        mask_ratio=0.3,
        optimization_parameters={"num_steps": 20, "lr": 0.05, "optimizer": "adam"},
    )
    engine.eval()
    a, b = batch(1), batch(2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        _, loss0 = engine.adapt(a, {"num_steps": 0})
        out_a, loss_a = engine(a)
        out_b, _ = engine(b)
        out_a2, _ = engine(a)
    assert loss_a < loss0
    assert torch.equal(out_a, out_a2)  # b in between changed nothing
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    with torch.no_grad():
        out_b2, _ = engine(b)
    assert torch.equal(out_b, out_b2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="mask_ratio"):
        SelfReconstructionEngine(Smoother(), mask_ratio=1.0)
    engine = SelfReconstructionEngine(Smoother(), output_key="imputed")
    with pytest.raises(ValueError, match="expected 'imputed'"):
        engine(batch())

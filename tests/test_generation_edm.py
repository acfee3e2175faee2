import math

import pytest
import torch

from tsgen.generation import (
    EDMDenoiser,
    GenerationConfig,
    edm_loss_weight,
    heun_sampler,
    karras_sigmas,
    make_ema,
    make_unet,
    masked_edm_loss,
    masked_loss,
)


def small_config(**kw):
    return GenerationConfig(
        length=24,
        n_features=2,
        delay=3,
        embedding=8,
        unet_channels=(8, 16),
        unet_attention=(False, True),
        **kw,
    )


def test_preconditioning_and_weight_match_the_edm_formulas():
    class Zero(torch.nn.Module):  # F = 0 leaves D = c_skip x
        def forward(self, x, c_noise):
            return type("Out", (), {"sample": torch.zeros_like(x)})()

    d = EDMDenoiser(Zero(), sigma_data=0.5)
    x = torch.ones(2, 1, 4, 4)
    out = d(x, torch.tensor([0.5, 2.0]))
    assert out[0].mean().item() == pytest.approx(0.25 / (0.25 + 0.25))
    assert out[1].mean().item() == pytest.approx(0.25 / (4 + 0.25))
    assert edm_loss_weight(torch.tensor(0.5), 0.5).item() == pytest.approx(0.5 / 0.0625)


def test_karras_sigmas_follow_the_schedule():
    t = karras_sigmas(18, 0.002, 80.0, 7.0)
    assert len(t) == 19 and t[-1] == 0
    assert t[0].item() == pytest.approx(80.0) and t[17].item() == pytest.approx(0.002)
    assert (t[:-1].diff() < 0).all()


def test_masked_loss_has_zero_gradient_at_unobserved_pixels():
    torch.manual_seed(0)
    denoised = torch.randn(3, 2, 8, 8, requires_grad=True)
    clean = torch.randn(3, 2, 8, 8)
    observed = (torch.rand(3, 2, 8, 8) > 0.5).float()
    loss = masked_loss(denoised, clean, torch.tensor([0.1, 1.0, 10.0]), observed, 0.5)
    loss.backward()
    assert denoised.grad[observed == 0].abs().max() == 0
    assert denoised.grad[observed == 1].abs().min() > 0
    # changing the target where nothing is observed changes nothing
    clean2 = torch.where(observed == 1, clean, clean + 100)
    moved = masked_loss(denoised, clean2, torch.tensor([0.1, 1.0, 10.0]), observed, 0.5)
    assert moved.item() == pytest.approx(loss.item())


def test_noise_is_added_only_to_observed_pixels():
    seen = {}

    class Spy(torch.nn.Module):
        def forward(self, x, sigma):
            seen["input"] = x
            return x

    spy = Spy()
    spy.sigma_data = 0.5
    clean = torch.rand(4, 2, 8, 8)
    observed = (torch.rand(4, 2, 8, 8) > 0.5).float()
    masked_edm_loss(spy, clean, observed)
    assert torch.equal(seen["input"][observed == 0], clean[observed == 0])
    assert (seen["input"][observed == 1] != clean[observed == 1]).all()


def test_sampler_shapes_determinism_and_churn():
    torch.manual_seed(0)
    net = EDMDenoiser(make_unet(small_config())).eval()
    a = heun_sampler(
        net, (2, 2, 8, 8), steps=4, generator=torch.Generator().manual_seed(1)
    )
    b = heun_sampler(
        net, (2, 2, 8, 8), steps=4, generator=torch.Generator().manual_seed(1)
    )
    c = heun_sampler(
        net, (2, 2, 8, 8), steps=4, generator=torch.Generator().manual_seed(2)
    )
    churned = heun_sampler(
        net,
        (2, 2, 8, 8),
        steps=4,
        s_churn=10.0,
        generator=torch.Generator().manual_seed(1),
    )
    assert a.shape == (2, 2, 8, 8) and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, churned)


def test_heun_solves_a_known_ode_exactly_enough():
    # data = a single point mu: the ideal denoiser
    # is D(x) = mu, and every path ends at mu
    mu = torch.full((1, 1, 2, 2), 0.3)

    class Ideal(torch.nn.Module):
        def forward(self, x, sigma):
            return mu.expand_as(x)

    out = heun_sampler(
        Ideal(), (5, 1, 2, 2), steps=18, generator=torch.Generator().manual_seed(0)
    )
    assert torch.allclose(out, mu.expand_as(out), atol=1e-5)


def test_ema_tracks_the_weights_with_warmup():
    layer = torch.nn.Linear(2, 2)
    ema = make_ema(layer, decay=0.9999)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    ema.update_parameters(layer)  # the first update copies
    with torch.no_grad():
        layer.weight.fill_(2.0)
    ema.update_parameters(layer)
    d = min(0.9999, 2 / 11)  # after one average, n_averaged = 1
    assert torch.allclose(ema.module.weight, torch.full((2, 2), d * 1 + (1 - d) * 2))
    assert math.isclose(float(ema.n_averaged), 2)


def test_ema_copies_the_weights_for_the_first_copy_steps():
    layer = torch.nn.Linear(2, 2)
    ema = make_ema(layer, decay=0.9, warmup=False, copy_steps=3)
    for value in (1.0, 2.0, 3.0):
        with torch.no_grad():
            layer.weight.fill_(value)
        ema.update_parameters(layer)
        assert torch.equal(ema.module.weight, layer.weight)
    with torch.no_grad():
        layer.weight.fill_(4.0)
    ema.update_parameters(layer)  # the fourth update averages at the plain decay
    assert torch.allclose(ema.module.weight, torch.full((2, 2), 0.9 * 3 + 0.1 * 4))

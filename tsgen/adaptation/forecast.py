"""Tail forecasting: forecast the last steps of the input window from the rest.

A self-supervised task made for forecasters: shift the window right by
``tail_length`` steps (the freed start is padded), so the model's own forecast
of its first ``tail_length`` steps should reproduce the hidden tail. The loss is
the forecasting task itself, on data the model can see at test time, so it needs
no auxiliary head and no features layer. (Backcasting and self-forecasting of
this kind are common in test-time adaptation for forecasting; the contract is
torch-ttt's, Durasov et al.)
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import choice, positive_int
from .base import BaseEngine, replace_inputs, split_inputs
from .registry import register

PADS = ("edge", "missing")


@register("tail_forecast")
class TailForecastEngine(BaseEngine):
    """``forward`` returns ``(model(inputs), loss_ttt)`` for a forecaster ``[B, L, C] -> [B, H, C]``.

    ``loss_ttt`` is the mean squared error between the first ``tail_length``
    forecast steps of the shifted window and the observed entries of the true
    tail. ``pad="edge"`` repeats the first step into the freed start;
    ``pad="missing"`` marks it missing (``missing_mask = 0``; dict inputs only).
    """

    def __init__(
        self,
        model: nn.Module,
        tail_length: int,
        *,
        pad: str = "edge",
        optimization_parameters=None,
        seed: int = 0,
    ):
        super().__init__(model, optimization_parameters, seed)
        self.tail_length, self.pad = tail_length, pad
        positive_int(self, "tail_length")
        choice(self, "pad", PADS)

    @classmethod
    def from_config(
        cls,
        model,
        layer=None,
        example_inputs=None,
        options=None,
        *,
        optimization_parameters=None,
        seed=0,
    ):
        """``tail_length`` defaults to the model's horizon, read from one forward pass on ``example_inputs``."""
        options = dict(options or {})
        if "tail_length" not in options:
            if example_inputs is None:
                raise ValueError(
                    "tail_forecast needs options['tail_length'], or "
                    "example_inputs to read the model's horizon from"
                )
            was_training = model.training
            model.eval()
            with torch.no_grad():
                options["tail_length"] = int(model(example_inputs).shape[1])
            model.train(was_training)
        return cls(
            model, **options, optimization_parameters=optimization_parameters, seed=seed
        )

    def ttt_forward(self, inputs, target=None):
        x, mask = split_inputs(inputs)
        k = self.tail_length
        if x.ndim != 3:
            raise ValueError(
                "TailForecastEngine needs [batch, time, "
                f"channels] inputs; got shape {tuple(x.shape)}"
            )
        if k >= x.shape[1]:
            raise ValueError(
                f"tail_length={k} must be shorter than "
                f"the input window ({x.shape[1]} steps)"
            )
        if self.pad == "missing" and not isinstance(inputs, dict):
            raise ValueError("pad='missing' needs a dict input with a missing_mask")
        outputs = self.model(inputs)
        if outputs.ndim != 3 or outputs.shape[1] < k or outputs.shape[2] != x.shape[2]:
            raise ValueError(
                "the model's forecast has shape "
                f"{tuple(outputs.shape)}; TailForecastEngine needs "
                f"[batch, horizon >= {k}, {x.shape[2]} channels]"
            )
        if self.pad == "edge":
            x_pad, m_pad = x[:, :1].expand(-1, k, -1), mask[:, :1].expand(-1, k, -1)
        else:
            x_pad, m_pad = torch.zeros_like(x[:, :k]), torch.zeros_like(mask[:, :k])
        shifted = replace_inputs(
            inputs,
            torch.cat([x_pad, x[:, :-k]], 1),
            torch.cat([m_pad, mask[:, :-k]], 1),
        )
        tail, tail_mask = x[:, -k:], mask[:, -k:]
        forecast = self.model(shifted)[:, :k]
        loss = ((forecast - tail).pow(2) * tail_mask).sum() / tail_mask.sum().clamp_min(
            1
        )
        return outputs, loss

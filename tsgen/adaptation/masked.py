"""Masked reconstruction: hide observed entries, reconstruct them from the model's features.

The self-supervised task of TTT-MAE (Gandelsman et al., NeurIPS 2022) and of
torch-ttt's masked engine (Durasov et al.), for time series: a fraction of the
*observed* entries is hidden (a missing mask is honoured: missing entries are
never hidden nor scored), the model runs on the masked input, and an auxiliary
head maps the features of a named layer back to the input.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..config import probability
from .base import BaseEngine, find_module, probe, replace_inputs, split_inputs
from .registry import register


@register("masked")
class MaskedReconstructionEngine(BaseEngine):
    """``forward`` returns ``(model(inputs), loss_ttt)``.

    ``loss_ttt`` is the mean squared error of the reconstruction on the hidden
    entries only. Inputs may be a tensor (NaN = missing; the model then sees
    hidden and missing entries as 0) or a dict with ``X`` and ``missing_mask``
    (hidden entries get ``X = 0`` and ``missing_mask = 0``, as PyPOTS models expect).
    The reconstruction head is built here, from ``example_inputs`` or from
    ``features_shape`` and ``input_shape`` (per sample). In adaptation each
    sample's mask comes from its own stream (:meth:`BaseEngine.rand`), a new
    one at every step, so a sample's masks do not depend on its batch.
    """

    hooks_layer = True

    def __init__(
        self,
        model: nn.Module,
        features_layer_name: str,
        example_inputs=None,
        *,
        features_shape=None,
        input_shape=None,
        mask_ratio: float = 0.25,
        head_hidden: int = 64,
        optimization_parameters=None,
        seed: int = 0,
    ):
        super().__init__(model, optimization_parameters, seed)
        find_module(model, features_layer_name)
        self.features_layer_name = features_layer_name
        self.mask_ratio = mask_ratio
        probability(self, "mask_ratio")
        if example_inputs is not None:
            features, _ = probe(
                model, find_module(model, features_layer_name), example_inputs
            )
            features_shape = features.shape[1:]
            input_shape = split_inputs(example_inputs)[0].shape[1:]
        elif features_shape is None or input_shape is None:
            raise ValueError(
                "MaskedReconstructionEngine builds its head eagerly: "
                "pass example_inputs, or both features_shape and "
                "input_shape (per sample, without the batch dimension)"
            )
        self.features_shape = tuple(int(s) for s in features_shape)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(self.features_shape), head_hidden),
            nn.GELU(),
            nn.Linear(head_hidden, math.prod(self.input_shape)),
        )

    def _features(self, inputs) -> torch.Tensor:
        captured = {}

        def hook(_module, _args, output):
            captured["features"] = output

        handle = find_module(
            self.model, self.features_layer_name
        ).register_forward_hook(hook)
        try:
            self.model(inputs)
        finally:
            handle.remove()
        features = captured["features"]
        if tuple(features.shape[1:]) != self.features_shape:
            raise ValueError(
                f"layer {self.features_layer_name!r} gave "
                f"features of shape {tuple(features.shape[1:])}; "
                f"the engine was built for {self.features_shape}"
            )
        return features

    def ttt_forward(self, inputs, target=None):
        x, mask = split_inputs(inputs)
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"inputs have shape {tuple(x.shape[1:])} per sample; "
                f"the engine was built for {self.input_shape}"
            )
        outputs = self.model(inputs)
        hide = (self.rand(x.shape, x.device) < self.mask_ratio) & mask.bool()
        keep = (~hide).to(x.dtype)
        features = self._features(replace_inputs(inputs, x * keep, mask * keep))
        reconstruction = self.head(features).view_as(x)
        loss = ((reconstruction - x).pow(2) * hide).sum() / hide.sum().clamp_min(1)
        return outputs, loss

"""Self-reconstruction: hide observed entries and let the model itself fill them in.

For an imputer the natural self-supervised task is its own task: a fraction of
the *observed* entries is hidden (the missing mask is honoured: missing entries
are never hidden nor scored), the model imputes the masked input, and the loss
is the squared error on the hidden entries. Unlike
:class:`~tsgen.adaptation.masked.MaskedReconstructionEngine` there is no auxiliary head:
the gradient reaches exactly the weights that make the imputation, which is the
masked-imputation task (MIT) of SAITS used at test time.
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import probability
from .base import BaseEngine, replace_inputs, split_inputs
from .registry import register


@register("self_reconstruction")
class SelfReconstructionEngine(BaseEngine):
    """``forward`` returns ``(reconstruction of inputs, loss_ttt)``.

    ``model(inputs)`` must return the reconstruction ``[B, T, C]``, or a dict
    holding it under ``output_key`` (PyPOTS model cores return a dict with
    ``"reconstruction"``). Inputs are a tensor (NaN = missing; hidden entries are
    then seen as 0) or a dict with ``X`` and ``missing_mask`` (hidden entries get
    ``X = 0`` and ``missing_mask = 0``). ``mask_ratio`` is the fraction of
    observed entries hidden. In training a new mask is drawn at every call; in
    adaptation one mask per sample (seeded with ``seed`` and the sample's
    content, whatever its position in the batch) serves every step of a call,
    so the loss before and after the steps is measured on the same entries.
    """

    def __init__(
        self,
        model: nn.Module,
        mask_ratio: float = 0.2,
        output_key: str = "reconstruction",
        optimization_parameters=None,
        seed: int = 0,
    ):
        super().__init__(model, optimization_parameters, seed)
        self.mask_ratio = mask_ratio
        probability(self, "mask_ratio")
        self.output_key = output_key

    def reconstruct(self, inputs) -> torch.Tensor:
        outputs = self.model(inputs)
        if isinstance(outputs, dict):
            if self.output_key not in outputs:
                raise ValueError(
                    f"the model returned keys {sorted(outputs)}; "
                    f"expected {self.output_key!r}"
                )
            outputs = outputs[self.output_key]
        if not isinstance(outputs, torch.Tensor):
            raise ValueError(
                "the model must return a tensor or a dict "
                f"of tensors; got {type(outputs).__name__}"
            )
        return outputs

    def ttt_forward(self, inputs, target=None):
        x, mask = split_inputs(inputs)
        # repeat: in adaptation the same entries are hidden at every step of a call
        hide = (
            self.rand(x.shape, x.device, repeat=True) < self.mask_ratio
        ) & mask.bool()
        keep = (~hide).to(x.dtype)
        reconstruction = self.reconstruct(replace_inputs(inputs, x * keep, mask * keep))
        if reconstruction.shape != x.shape:
            raise ValueError(
                "self_reconstruction needs a model that returns a "
                f"reconstruction of its input {tuple(x.shape)}; this model "
                f"returns {tuple(reconstruction.shape)} (a forecaster? its "
                "output is the future, not the input: use an engine made for "
                "forecasters, such as 'tail_forecast', 'it3' or 'masked')"
            )
        loss = ((reconstruction - x).pow(2) * hide).sum() / hide.sum().clamp_min(1)
        if self.training:
            return self.reconstruct(inputs), loss
        # in eval mode only the loss is differentiated (adaptation)
        with torch.no_grad():
            return self.reconstruct(inputs), loss

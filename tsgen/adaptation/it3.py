"""IT³: idempotent test-time training (Durasov et al., ICML 2025).

The model is made to accept its own prediction as an extra input: an embedding
of a prediction is added to the features of a named layer by a forward hook.
Training teaches ``f(x, y) = y`` for the true target ``y`` beside the usual task
loss on ``f(x, 0)``; at test time the distance between ``f(x, f(x, 0))`` and
``f(x, 0)`` measures how far the input is from what the model knows, and a few
gradient steps reduce it (the second pass runs through a frozen copy of the
weights, as in the paper, so the prediction moves towards a fixed point instead
of both passes collapsing together). torch-ttt (Durasov et al.) ships the same
engine for images; this one works on time-series tensors of any rank.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call

from .base import BaseEngine, batch_size_of, find_module, probe
from .registry import register


def masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the entries where ``target`` is not NaN."""
    valid = ~torch.isnan(target)
    diff = torch.where(valid, pred - torch.nan_to_num(target), torch.zeros_like(pred))
    return diff.pow(2).sum() / valid.sum().clamp_min(1)


@register("it3")
class IT3Engine(BaseEngine):
    """Idempotent TTT: ``forward`` returns ``(f(x, 0), loss_ttt)``.

    ``features_layer_name`` names the layer whose output receives the embedded
    prediction. Its features and the model's prediction may have any rank
    (``[B, D]``, ``[B, T, C]``, ``[B, C, H, W]``) and need not match: the
    embedding maps the flattened prediction to the flattened features of one
    sample, then takes their shape. The embedding head is built here, from
    ``example_inputs`` (one forward pass) or from ``features_shape`` and
    ``prediction_shape`` (per sample, without the batch dimension), so an
    optimizer made from ``engine.parameters()`` right away trains it.

    ``forward(inputs, target)`` in training mode: ``loss_ttt = mse(f(x, target), target)``
    (NaN targets are skipped). Without a target (and at test time):
    ``loss_ttt = mse(f_frozen(x, f(x, 0)), f(x, 0))``.
    """

    hooks_layer = True

    def __init__(
        self,
        model: nn.Module,
        features_layer_name: str,
        example_inputs=None,
        *,
        features_shape=None,
        prediction_shape=None,
        embed_hidden: int = 64,
        optimization_parameters=None,
        seed: int = 0,
    ):
        super().__init__(model, optimization_parameters, seed)
        layer = find_module(model, features_layer_name)
        self.features_layer_name = features_layer_name
        if example_inputs is not None:
            features, outputs = probe(model, layer, example_inputs)
            features_shape, prediction_shape = features.shape[1:], outputs.shape[1:]
        elif features_shape is None or prediction_shape is None:
            raise ValueError(
                "IT3Engine builds its heads eagerly: pass example_inputs, "
                "or both features_shape and prediction_shape (per sample, "
                "without the batch dimension)"
            )
        self.features_shape = tuple(int(s) for s in features_shape)
        self.prediction_shape = tuple(int(s) for s in prediction_shape)
        self.embedder = nn.Sequential(
            nn.Linear(math.prod(self.prediction_shape), embed_hidden),
            nn.GELU(),
            nn.Linear(embed_hidden, math.prod(self.features_shape)),
        )

    def _run(
        self, inputs, injected: torch.Tensor, frozen: bool = False
    ) -> torch.Tensor:
        """The model's output with ``embed(injected)`` added to the features layer's output."""
        layer = find_module(self.model, self.features_layer_name)
        if frozen:  # same weights, no gradient into them: the paper's frozen copy
            embedding = functional_call(
                self.embedder,
                {n: p.detach() for n, p in self.embedder.named_parameters()},
                (injected.flatten(1),),
            )
        else:
            embedding = self.embedder(injected.flatten(1))

        def hook(_module, _args, output):
            if (
                not isinstance(output, torch.Tensor)
                or tuple(output.shape[1:]) != self.features_shape
            ):
                got = (
                    tuple(output.shape[1:])
                    if isinstance(output, torch.Tensor)
                    else type(output).__name__
                )
                raise ValueError(
                    f"layer {self.features_layer_name!r} gave features of shape {got}; "
                    f"the engine was built for {self.features_shape}"
                )
            return output + embedding.view(output.shape[0], *self.features_shape)

        handle = layer.register_forward_hook(hook)
        try:
            if frozen:
                params = {n: p.detach() for n, p in self.model.named_parameters()}
                return functional_call(self.model, params, (inputs,))
            return self.model(inputs)
        finally:
            handle.remove()

    def ttt_forward(self, inputs, target=None):
        batch = batch_size_of(inputs)
        zeros = torch.zeros(
            batch,
            *self.prediction_shape,
            device=next(self.embedder.parameters()).device,
        )
        first = self._run(inputs, zeros)
        if tuple(first.shape[1:]) != self.prediction_shape:
            raise ValueError(
                f"the model predicts shape {tuple(first.shape[1:])}; "
                f"the engine was built for {self.prediction_shape}"
            )
        if target is not None:
            if tuple(target.shape) != tuple(first.shape):
                raise ValueError(
                    f"target has shape {tuple(target.shape)}; "
                    f"the prediction has {tuple(first.shape)}"
                )
            second = self._run(inputs, torch.nan_to_num(target))
            return first, masked_mse(second, target)
        second = self._run(inputs, first, frozen=True)
        return first, masked_mse(second, first)

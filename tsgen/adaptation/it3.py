"""IT³: idempotent test-time training (Durasov et al., ICML 2025), as torch-ttt has it.

The model is made to accept a prediction as an extra input: an embedding of
the prediction is combined with the features of a named layer by a forward hook.
As in torch-ttt's ``IT3Engine`` (registered there as ``"ittt"``, an alias here):

* the **first pass** is the plain model, ``y0 = model(x)``, with nothing injected
  (bit for bit what the model alone returns);
* the **second pass** runs the model again with ``embedder(y)`` combined into the
  features (``combine_fn``, default: addition) and gives ``y1``;
* in training with a target ``y`` the loss is ``distance(f(x, y), y)`` (the task
  loss on ``y0`` is the caller's); without a target (and at test time) it is
  ``distance(f(x, y0), y0)``, the idempotence error, and gradients flow through
  both passes (``second_pass="trainable"``, torch-ttt's way). ``distance_fn``
  defaults to the mean squared error over the non-NaN target entries (torch-ttt:
  plain MSE; the same when nothing is missing).

Departures, each a named option or a documented default:

* ``second_pass="frozen"`` keeps tsgen's earlier idempotence loss, an ablation:
  the second pass runs through detached copies of the model's and the
  embedder's weights, so gradients reach the weights only through ``y0``
  (both where it is embedded and where it is the distance's target). The IT³
  paper anchors its test-time loss on a frozen copy of the trained model; this
  option is a one-step version of that idea, not torch-ttt's engine.
* The default embedder works on tensors of any rank: it maps the flattened
  prediction to the flattened features of one sample (a small MLP) and takes
  their shape. torch-ttt's default is a per-channel MLP (2-D predictions) or a
  1x1 convolution (4-D), added to the features broadcast over their trailing
  dimensions. That broadcast rule is the default ``combine_fn`` here too, so a
  user ``embedder`` that returns ``[B, C]`` for ``[B, C, H, W]`` features works
  as in torch-ttt.
* The default embedder is built at construction, from ``example_inputs`` or
  ``features_shape`` and ``prediction_shape`` (tsgen's engine contract: an
  optimizer made from ``engine.parameters()`` right away trains it); torch-ttt
  builds it at the first forward pass.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call

from .base import BaseEngine, find_module, probe
from .registry import register

SECOND_PASSES = ("trainable", "frozen")


def masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the entries where ``target`` is not NaN."""
    valid = ~torch.isnan(target)
    diff = torch.where(valid, pred - torch.nan_to_num(target), torch.zeros_like(pred))
    return diff.pow(2).sum() / valid.sum().clamp_min(1)


def broadcast_add(features: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
    """``features + embedding``, the embedding padded with trailing singleton dimensions.

    ``embedding`` has the features' shape, or a prefix of it with size-1 (or
    matching) dimensions, e.g. ``[B, C]`` for features ``[B, C, H, W]`` (torch-ttt's rule).
    """
    if embedding.ndim > features.ndim:
        raise ValueError(
            f"the embedder returned shape {tuple(embedding.shape)}, more "
            f"dimensions than the features {tuple(features.shape)}"
        )
    padded = embedding.reshape(
        *embedding.shape, *([1] * (features.ndim - embedding.ndim))
    )
    try:
        fits = torch.broadcast_shapes(padded.shape, features.shape) == features.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"the embedder returned shape {tuple(embedding.shape)}; the default "
            f"combine_fn adds it to features of shape {tuple(features.shape)}, so "
            "it must have their shape or broadcast to it after trailing singleton "
            "dimensions are added (e.g. [B, C] for [B, C, H, W]); pass "
            "combine_fn= for another rule"
        )
    return features + padded


class FlatEmbedder(nn.Sequential):
    """The default embedder: flattened prediction -> MLP -> the features' shape (one sample's)."""

    def __init__(self, prediction_shape, features_shape, hidden: int):
        super().__init__(
            nn.Linear(math.prod(prediction_shape), hidden),
            nn.GELU(),
            nn.Linear(hidden, math.prod(features_shape)),
            nn.Unflatten(1, tuple(features_shape)),
        )

    def forward(self, prediction: torch.Tensor) -> torch.Tensor:
        return super().forward(prediction.flatten(1))


def _checked_callable(value, name: str):
    if value is not None and not callable(value):
        raise ValueError(
            f"{name} must be callable (a function or a module); "
            f"got {type(value).__name__}"
        )
    return value


@register("it3", aliases=("ittt",))
class IT3Engine(BaseEngine):
    """Idempotent TTT: ``forward`` returns ``(model(x), loss_ttt)``.

    ``features_layer_name`` names the layer whose output receives the embedded
    prediction. Its features and the model's prediction may have any rank
    (``[B, D]``, ``[B, T, C]``, ``[B, C, H, W]``) and need not match.

    Options (see the module docstring for torch-ttt's way and the departures):

    * ``embedder``: a callable (a module trains with the engine) mapping a
      prediction ``[B, ...]`` to an embedding ``[B, ...]``. Default: an MLP from
      the flattened prediction to the features' shape, hidden width
      ``embed_hidden``, built from ``example_inputs`` (one forward pass) or from
      ``features_shape`` and ``prediction_shape`` (per sample, without the batch
      dimension). A user embedder needs neither.
    * ``combine_fn(features, embedding) -> features`` of the same shape;
      default :func:`broadcast_add`.
    * ``distance_fn(prediction, target) -> scalar``; default :func:`masked_mse`.
      It gets the target as given (NaN where missing), the embedder gets it
      with NaN replaced by 0.
    * ``second_pass``: ``"trainable"`` (torch-ttt) or ``"frozen"`` (the ablation).

    A wrong shape from any of them is a ``ValueError`` naming the argument,
    checked at construction when ``example_inputs`` is given.
    """

    hooks_layer = True

    def __init__(
        self,
        model: nn.Module,
        features_layer_name: str,
        example_inputs=None,
        *,
        embedder=None,
        combine_fn=None,
        distance_fn=None,
        second_pass: str = "trainable",
        features_shape=None,
        prediction_shape=None,
        embed_hidden: int = 64,
        optimization_parameters=None,
        seed: int = 0,
    ):
        super().__init__(model, optimization_parameters, seed)
        layer = find_module(model, features_layer_name)
        self.features_layer_name = features_layer_name
        if second_pass not in SECOND_PASSES:
            raise ValueError(
                f"second_pass must be one of {SECOND_PASSES}; got {second_pass!r}"
            )
        self.second_pass = second_pass
        self.embedder = _checked_callable(embedder, "embedder")
        self.combine_fn = _checked_callable(combine_fn, "combine_fn")
        self.distance_fn = _checked_callable(distance_fn, "distance_fn")
        probed = None
        if example_inputs is not None:
            probed = probe(model, layer, example_inputs)
            features_shape, prediction_shape = (t.shape[1:] for t in probed)
        elif embedder is None and (features_shape is None or prediction_shape is None):
            raise ValueError(
                "IT3Engine builds its embedder eagerly: pass example_inputs, "
                "or both features_shape and prediction_shape (per sample, "
                "without the batch dimension), or an embedder"
            )
        self.features_shape = _shape(features_shape)
        self.prediction_shape = _shape(prediction_shape)
        if embedder is None:
            # on the model's device, where the check below and adaptation run it
            self.embedder = FlatEmbedder(
                self.prediction_shape, self.features_shape, embed_hidden
            ).to(probed[1].device if probed else _device_of(model))
        if probed is not None:  # wrong shapes of user callables fail now
            features, outputs = probed
            with torch.no_grad():
                self._combine(features, self._embed(outputs, frozen=False))
                self._distance(torch.zeros_like(outputs), outputs)

    # ------------------------------------------------------------ the pieces

    def _embed(self, prediction: torch.Tensor, frozen: bool) -> torch.Tensor:
        if frozen and isinstance(self.embedder, nn.Module):
            detached = {n: p.detach() for n, p in self.embedder.named_parameters()}
            embedding = functional_call(self.embedder, detached, (prediction,))
        else:
            embedding = self.embedder(prediction)
        if (
            not isinstance(embedding, torch.Tensor)
            or embedding.ndim == 0
            or embedding.shape[0] != prediction.shape[0]
        ):
            raise ValueError(
                "embedder must return a tensor with the batch dimension first "
                f"({prediction.shape[0]}); got {_described(embedding)} for a "
                "prediction of shape "
                f"{tuple(prediction.shape)}"
            )
        return embedding

    def _combine(self, features: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        if self.combine_fn is None:
            return broadcast_add(features, embedding)
        combined = self.combine_fn(features, embedding)
        if not isinstance(combined, torch.Tensor) or combined.shape != features.shape:
            raise ValueError(
                "combine_fn must return features of the layer's shape "
                f"{tuple(features.shape)}; got {_described(combined)}"
            )
        return combined

    def _distance(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.distance_fn is None:
            return masked_mse(prediction, target)
        distance = self.distance_fn(prediction, target)
        if not isinstance(distance, torch.Tensor) or distance.numel() != 1:
            raise ValueError(
                f"distance_fn must return a scalar tensor; got {_described(distance)}"
            )
        return distance.reshape(())

    def _second(self, inputs, prediction: torch.Tensor, frozen: bool) -> torch.Tensor:
        """The model's output with ``embedder(prediction)`` combined into the layer's features."""
        embedding = self._embed(prediction, frozen)

        def hook(_module, _args, output):
            if not isinstance(output, torch.Tensor) or (
                self.features_shape is not None
                and tuple(output.shape[1:]) != self.features_shape
            ):
                got = (
                    tuple(output.shape[1:])
                    if isinstance(output, torch.Tensor)
                    else type(output).__name__
                )
                raise ValueError(
                    f"layer {self.features_layer_name!r} gave features of shape "
                    f"{got}; the engine was built for {self.features_shape}"
                )
            return self._combine(output, embedding)

        layer = find_module(self.model, self.features_layer_name)
        handle = layer.register_forward_hook(hook)
        try:
            if frozen:
                params = {n: p.detach() for n, p in self.model.named_parameters()}
                return functional_call(self.model, params, (inputs,))
            return self.model(inputs)
        finally:
            handle.remove()

    # ------------------------------------------------------------ the engine

    def ttt_forward(self, inputs, target=None):
        first = self.model(inputs)  # the plain model: nothing injected
        if not isinstance(first, torch.Tensor):
            raise ValueError(
                f"the model must return a tensor; got {type(first).__name__}"
            )
        if (
            self.prediction_shape is not None
            and tuple(first.shape[1:]) != self.prediction_shape
        ):
            raise ValueError(
                f"the model predicts shape {tuple(first.shape[1:])}; "
                f"the engine was built for {self.prediction_shape}"
            )
        if target is None:
            frozen = self.second_pass == "frozen"
            return first, self._distance(self._second(inputs, first, frozen), first)
        if tuple(target.shape) != tuple(first.shape):
            raise ValueError(
                f"target has shape {tuple(target.shape)}; "
                f"the prediction has {tuple(first.shape)}"
            )
        second = self._second(inputs, torch.nan_to_num(target), frozen=False)
        return first, self._distance(second, target)


def _shape(shape) -> tuple[int, ...] | None:
    return None if shape is None else tuple(int(s) for s in shape)


def _described(value) -> str:
    """A tensor's shape, or the type of anything else, for an error message."""
    if isinstance(value, torch.Tensor):
        return f"shape {tuple(value.shape)}"
    return type(value).__name__


def _device_of(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter or buffer (the CPU for an empty model)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")

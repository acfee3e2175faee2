"""The engine contract: wrap a model, return ``(outputs, loss_ttt)``, adapt at inference.

The design follows torch-ttt (Durasov et al., *torch-ttt: a unified library for
test-time training*, https://github.com/nikitadurasov/torch-ttt), whose engines
differ mainly in their self-supervised loss. torch-ttt itself cannot be used here
(it imports torchvision and its heads are image-specific), so this module
implements the same contract for time series.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import torch
from torch import nn

from ..config import JSONConfig, choice, non_negative, non_negative_int, positive
from ..runtime import check_seed, derive_seed, torch_generator

# Normalisation layers adapted by ``parameters="norm"``
# (BatchNorm and InstanceNorm share _NormBase).
NORM_TYPES = tuple(
    t
    for t in (
        nn.modules.batchnorm._NormBase,
        nn.LayerNorm,
        nn.GroupNorm,
        getattr(nn, "RMSNorm", None),
    )
    if t
)
OPTIMIZERS = ("adam", "sgd")


@dataclass
class OptimizationParameters(JSONConfig):
    """How an engine adapts to one input at inference.

    ``optimizer`` "adam" or "sgd" (with ``momentum``); ``lr``; ``num_steps``
    gradient steps on the engine's self-supervised loss (0 = no adaptation);
    ``parameters`` which model parameters adapt: ``"all"``, ``"norm"`` (the
    affine parameters of normalisation layers only) or the dotted name of a
    submodule of the model (e.g. ``"encoder"``). Auxiliary heads never adapt.
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    num_steps: int = 3
    parameters: str = "all"
    momentum: float = 0.0

    def __post_init__(self):
        if isinstance(self.optimizer, str):
            self.optimizer = self.optimizer.lower()
        choice(self, "optimizer", OPTIMIZERS)
        positive(self, "lr")
        non_negative_int(self, "num_steps")
        non_negative(self, "momentum")
        if not isinstance(self.parameters, str) or not self.parameters:
            raise ValueError(
                "parameters must be 'all', 'norm' or a "
                f"submodule name; got {self.parameters!r}"
            )

    @classmethod
    def from_dict(cls, values: dict, complete: bool = False) -> OptimizationParameters:
        """As :meth:`JSONConfig.from_dict`; torch-ttt's ``optimizer_name`` is read as ``optimizer``."""
        if isinstance(values, dict):
            values = {
                ("optimizer" if key == "optimizer_name" else key): value
                for key, value in values.items()
            }
        return super().from_dict(values, complete=complete)

    @classmethod
    def coerce(cls, value) -> OptimizationParameters:
        """Accept ``None`` (defaults), a dict (torch-ttt style) or an instance."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if isinstance(value, dict):
            return cls.from_dict(value)
        raise ValueError(
            "optimization_parameters must be a dict or "
            f"OptimizationParameters; got {type(value).__name__}"
        )


# ---------------------------------------------------------------- inputs


def split_inputs(inputs) -> tuple[torch.Tensor, torch.Tensor]:
    """``(X, observed mask)`` of a tensor or a PyPOTS-style dict with ``X`` and ``missing_mask``.

    The mask is 1 where a value is observed: ``missing_mask`` when the dict has
    one, else where ``X`` is not NaN. ``X`` comes back with missing entries set to 0.
    """
    if isinstance(inputs, dict):
        if "X" not in inputs:
            raise ValueError(
                f"a dict input needs an 'X' entry; got keys {sorted(inputs)}"
            )
        x = inputs["X"]
        mask = inputs.get("missing_mask")
    else:
        x, mask = inputs, None
    if not isinstance(x, torch.Tensor):
        raise ValueError(
            "inputs must be a tensor or a dict of "
            f"tensors; got X of type {type(x).__name__}"
        )
    if x.ndim < 2:
        raise ValueError(
            "inputs must have a batch dimension (at "
            f"least 2-D); got shape {tuple(x.shape)}"
        )
    if torch.isinf(x).any():
        raise ValueError(
            "inputs hold infinite values; use NaN (or missing_mask) for missing values"
        )
    if mask is None:
        mask = (~torch.isnan(x)).to(x.dtype)
    elif mask.shape != x.shape:
        raise ValueError(
            f"missing_mask has shape {tuple(mask.shape)} "
            f"but X has shape {tuple(x.shape)}"
        )
    mask = mask.to(x.dtype)
    return torch.where(mask.bool(), torch.nan_to_num(x), torch.zeros_like(x)), mask


def replace_inputs(inputs, x: torch.Tensor, mask: torch.Tensor):
    """``inputs`` with ``X`` (and ``missing_mask`` for a dict) replaced; other dict entries are kept.

    A plain tensor input has nowhere to carry the mask: the model sees the hidden
    entries as 0 (what :func:`split_inputs` puts at missing entries).
    """
    if isinstance(inputs, dict):
        return {**inputs, "X": x, "missing_mask": mask}
    return x  # a plain tensor has no mask to carry: hidden entries stay at 0


def batch_size_of(inputs) -> int:
    return (inputs["X"] if isinstance(inputs, dict) else inputs).shape[0]


# ---------------------------------------------------------------- modules and hooks


def find_module(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` (dotted path); ValueError naming a few that exist."""
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        known = [n for n in modules if n][:20]
        raise ValueError(f"the model has no layer {name!r}; its layers include {known}")
    return modules[name]


def probe(
    model: nn.Module, layer: nn.Module, example_inputs
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model`` once on ``example_inputs`` and return ``(features of layer, outputs)``.

    Runs without gradients in eval mode (so BatchNorm statistics do not move), then
    restores the mode; the hook is removed even if the forward pass fails.
    """
    captured = {}

    def hook(_module, _inputs, output):
        captured["features"] = output

    was_training = model.training
    handle = layer.register_forward_hook(hook)
    try:
        model.eval()
        with torch.no_grad():
            outputs = model(example_inputs)
    finally:
        handle.remove()
        model.train(was_training)
    if not isinstance(captured.get("features"), torch.Tensor):
        raise ValueError(
            "the features layer did not return a tensor on the example input"
        )
    if not isinstance(outputs, torch.Tensor):
        raise ValueError(
            f"the model must return a tensor; got {type(outputs).__name__}"
        )
    return captured["features"], outputs


# ---------------------------------------------------------------- the engine


class BaseEngine(nn.Module, metaclass=abc.ABCMeta):
    """Wraps ``model``; subclasses implement :meth:`ttt_forward`.

    ``forward(inputs, target=None)`` returns ``(outputs, loss_ttt)`` in both modes:

    * ``train()``: straight from ``ttt_forward``; add ``alpha * loss_ttt`` to the
      task loss and step an optimizer over ``engine.parameters()`` (model and heads).
    * ``eval()``: first ``num_steps`` optimizer steps on ``loss_ttt`` for this
      input, then the prediction; the stored weights (and their gradients) are
      restored afterwards, so nothing carries over from one call to the next and
      two calls on the same input agree. Works inside ``torch.no_grad()``. The
      returned tensors are detached: adaptation is inference.

    Adaptation is per call: the loss is a mean over the batch, so a batch adapts
    as one domain (e.g. one patient's windows); call once per sample to adapt
    each sample on its own. Random choices of an engine (masks) come from
    :meth:`rand`, never from the global RNG.
    """

    name = ""  # set by @register

    def __init__(self, model: nn.Module, optimization_parameters=None, seed: int = 0):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise ValueError(
                f"model must be a torch.nn.Module; got {type(model).__name__}"
            )
        self.model = model
        self.optimization_parameters = OptimizationParameters.coerce(
            optimization_parameters
        )
        self.seed = check_seed(seed)
        # "train" and "adapt", made at first use
        self._generators: dict[str, torch.Generator] = {}
        self._adapting = False

    # True for engines built as (model, layer, example_inputs, ...): they hook a features layer
    hooks_layer = False

    @classmethod
    def from_config(
        cls,
        model: nn.Module,
        layer: str | None = None,
        example_inputs=None,
        options: dict | None = None,
        *,
        optimization_parameters=None,
        seed: int = 0,
    ) -> BaseEngine:
        """Build this engine around ``model``: one signature for every registered engine.

        ``layer`` names the features layer an engine hooks and ``example_inputs``
        is one batch an engine may size its heads from; engines that need neither
        ignore them. ``options`` are the engine's own keyword arguments (e.g.
        ``{"mask_ratio": 0.25}``). An engine whose class sets ``hooks_layer``
        takes ``(model, layer, example_inputs, **options)``, any other
        ``(model, **options)``; an engine that needs more overrides this method.
        """
        hooked = ()
        if cls.hooks_layer:
            if layer is None:
                raise ValueError(
                    f"engine {cls.name!r} hooks a features layer: pass layer= (e.g. 'encoder')"
                )
            hooked = (layer, example_inputs)
        return cls(
            model,
            *hooked,
            **dict(options or {}),
            optimization_parameters=optimization_parameters,
            seed=seed,
        )

    @abc.abstractmethod
    def ttt_forward(self, inputs, target=None) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's outputs for ``inputs`` and the engine's self-supervised loss (a scalar)."""

    def forward(self, inputs, target=None):
        if self.training:
            return self.ttt_forward(inputs, target)
        return self.adapt(inputs)

    def rand(self, shape, device, *, repeat: bool = False) -> torch.Tensor:
        """Uniform draws in ``[0, 1)`` from the engine's own generators, never from the global RNG.

        In training one generator (seeded from ``seed``) runs on across calls, so
        each step draws a new mask and a run is reproducible. In adaptation the
        draws restart from ``seed`` at every :meth:`adapt` call, so an output
        depends on its input only; ``repeat=True`` restarts them at every step
        too (the same mask for each step of a call).
        """
        device = torch.device(device)
        key = "adapt" if self._adapting else "train"
        generator = self._generators.get(key)
        moved = generator is not None and (
            generator.device.type != device.type
            or device.index not in (None, generator.device.index)
        )
        if generator is None or moved or (repeat and self._adapting):
            seed = self.seed if self._adapting else derive_seed(self.seed, 1)
            generator = self._generators[key] = torch_generator(seed, device)
        return torch.rand(shape, device=device, generator=generator)

    def adapted_parameters(self, which: str) -> list[nn.Parameter]:
        """The model parameters that adapt: ``"all"``, ``"norm"`` or a submodule's."""
        if which == "all":
            params = list(self.model.parameters())
        elif which == "norm":
            params = [
                p
                for m in self.model.modules()
                if isinstance(m, NORM_TYPES)
                for p in m.parameters(recurse=False)
            ]
            if not params:
                raise ValueError(
                    "parameters='norm' but the model has "
                    "no normalisation layer with parameters"
                )
        else:
            params = list(find_module(self.model, which).parameters())
        params = [p for p in params if p.requires_grad]
        if not params:
            raise ValueError(f"parameters={which!r} selects no trainable parameter")
        return params

    def adapt(self, inputs, optimization_parameters=None):
        """Adapt to ``inputs``, predict, restore the stored weights: ``(outputs, loss_ttt)``.

        A diverging adaptation (a non-finite loss at any step, or non-finite
        outputs at the end) raises a ``ValueError`` naming the step and ``lr``
        instead of returning NaN; the weights are restored either way.
        """
        opt = OptimizationParameters.coerce(
            optimization_parameters or self.optimization_parameters
        )
        params = self.adapted_parameters(opt.parameters)
        state = {k: v.detach().clone() for k, v in self.state_dict().items()}
        grads = {p: p.grad for p in self.parameters()}
        was_training = self.training
        self._adapting = True
        self._generators.pop("adapt", None)
        try:
            # adaptation runs with dropout off and frozen BatchNorm statistics
            self.eval()
            if opt.num_steps > 0:
                if opt.optimizer == "adam":
                    optimizer = torch.optim.Adam(params, lr=opt.lr)
                else:
                    optimizer = torch.optim.SGD(
                        params, lr=opt.lr, momentum=opt.momentum
                    )
                with torch.enable_grad():  # callers often predict under no_grad
                    for step in range(opt.num_steps):
                        optimizer.zero_grad(set_to_none=True)
                        _, loss = self.ttt_forward(inputs)
                        if not all_finite(loss):
                            raise ValueError(
                                f"adaptation diverged: the self-supervised loss is "
                                f"{loss.item()} at step {step + 1} of "
                                f"{opt.num_steps} (lr={opt.lr:g}); lower the "
                                "adaptation lr or num_steps"
                            )
                        loss.backward()
                        optimizer.step()
            with torch.no_grad():
                outputs, loss = self.ttt_forward(inputs)
            # a last step can blow the weights up without a non-finite loss before it
            if not (all_finite(outputs) and all_finite(loss)):
                raise ValueError(
                    "adaptation diverged: the outputs are not finite after "
                    f"{opt.num_steps} step(s) at lr={opt.lr:g}; lower the "
                    "adaptation lr or num_steps"
                )
        finally:
            with torch.no_grad():
                for k, v in self.state_dict().items():
                    v.copy_(state[k])
            for p, g in grads.items():
                p.grad = g
            self._adapting = False
            self.train(was_training)
        return outputs.detach(), loss.detach()


def all_finite(value) -> bool:
    """Whether every float tensor in ``value`` (a tensor, or a tuple, list or dict of them) is finite."""
    if isinstance(value, torch.Tensor):
        return not value.is_floating_point() or bool(torch.isfinite(value).all())
    if isinstance(value, dict):
        return all(all_finite(v) for v in value.values())
    if isinstance(value, (tuple, list)):
        return all(all_finite(v) for v in value)
    return True


def train_step(
    engine: BaseEngine,
    optimizer: torch.optim.Optimizer,
    inputs,
    target: torch.Tensor,
    alpha: float = 1.0,
    task_loss=nn.functional.mse_loss,
) -> tuple[float, float]:
    """One step on ``task_loss(outputs, target) + alpha * loss_ttt`` in train mode; returns both losses."""
    engine.train()
    outputs, loss_ttt = engine(inputs, target)
    task = task_loss(outputs, target)
    if not (all_finite(task) and all_finite(loss_ttt)):
        raise ValueError(
            f"training diverged: task loss {task.item()}, engine loss "
            f"{loss_ttt.item()} (non-finite inputs or too high a learning rate?)"
        )
    optimizer.zero_grad(set_to_none=True)
    (task + alpha * loss_ttt).backward()
    optimizer.step()
    return task.item(), loss_ttt.item()

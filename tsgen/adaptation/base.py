"""The engine contract: wrap a model, return ``(outputs, loss_ttt)``, adapt at inference.

The design follows torch-ttt (Durasov et al., *torch-ttt: a unified library for
test-time training*, https://github.com/nikitadurasov/torch-ttt), whose engines
differ mainly in their self-supervised loss. torch-ttt itself cannot be used here
(it imports torchvision and its heads are image-specific), so this module
implements the same contract for time series.
"""

from __future__ import annotations

import abc
import hashlib
from dataclasses import dataclass

import torch
from torch import nn

from ..config import (
    JSONConfig,
    choice,
    non_negative,
    non_negative_int,
    positive,
    probability,
)
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
SCOPES = ("batch", "sample")
# the random streams of one adaptation call: the steps' draws, the held-out
# split of the safeguard and the draws of its check loss are independent
STREAMS = {"adapt": 0, "split": 1, "check": 2}


@dataclass
class OptimizationParameters(JSONConfig):
    """How an engine adapts to one input at inference.

    ``optimizer`` "adam" or "sgd" (with ``momentum``); ``lr``; ``num_steps``
    gradient steps on the engine's self-supervised loss (0 = no adaptation);
    ``parameters`` which model parameters adapt: ``"all"``, ``"norm"`` (the
    affine parameters of normalisation layers only) or the dotted name of a
    submodule of the model (e.g. ``"encoder"``). Auxiliary heads never adapt.

    ``scope``: ``"batch"`` adapts the samples of one call together (the loss is
    a mean over them: one domain, e.g. one patient's windows); ``"sample"``
    adapts each sample on its own, from the stored weights (the plan of TTT,
    Sun et al. 2020: one test input, one adaptation), exactly as calling
    :meth:`BaseEngine.adapt` once per sample would.

    ``safeguard`` (default off) keeps an adaptation step only when the engine's
    self-supervised loss on a held-out part of the input improves: a fraction
    ``holdout`` of the call's samples (at least one, at most all but one; drawn
    from each sample's own random stream, so the split does not depend on their
    order) is kept out of the steps and checked after every step; the weights
    with the lowest held-out loss, the stored ones included, make the
    prediction. A single sample (``scope="sample"``, or a batch of one) cannot
    be split by samples: its check is the same loss with independent random
    draws (other hidden entries for the masked engines), so for an engine
    without randomness (IT³, tail forecasting) it keeps the steps that lower
    the loss itself. A step whose loss is not finite ends the steps (instead
    of the ``ValueError`` of an unguarded adaptation). Each check costs one
    forward pass.
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    num_steps: int = 3
    parameters: str = "all"
    momentum: float = 0.0
    scope: str = "batch"
    safeguard: bool = False
    holdout: float = 0.25

    def __post_init__(self):
        if isinstance(self.optimizer, str):
            self.optimizer = self.optimizer.lower()
        choice(self, "optimizer", OPTIMIZERS)
        positive(self, "lr")
        non_negative_int(self, "num_steps")
        non_negative(self, "momentum")
        choice(self, "scope", SCOPES)
        if not isinstance(self.safeguard, bool):
            raise ValueError(f"safeguard must be True or False; got {self.safeguard!r}")
        probability(self, "holdout")
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


def select(inputs, index):
    """The samples ``index`` (a list of positions) of ``inputs``.

    A dict's tensors whose first dimension is the batch are indexed; its other
    entries are passed through unchanged.
    """
    n = batch_size_of(inputs)
    if not isinstance(inputs, dict):
        return inputs[index]
    return {
        k: v[index] if isinstance(v, torch.Tensor) and v.ndim and len(v) == n else v
        for k, v in inputs.items()
    }


def sample_keys(inputs) -> list[int]:
    """A 64-bit key per sample from its content alone (values, observed mask, shape).

    Two samples with the same content get the same key wherever they sit in
    their batch: the adaptation's random streams are keyed by it.
    """
    x, mask = split_inputs(inputs)
    x = x.detach().to("cpu", torch.float64).numpy()
    observed = mask.detach().to("cpu").bool().numpy()
    keys = []
    for values, seen in zip(x, observed, strict=True):
        digest = hashlib.blake2b(digest_size=8)
        digest.update(repr(values.shape).encode())
        digest.update(values.tobytes())
        digest.update(seen.tobytes())
        keys.append(int.from_bytes(digest.digest(), "little"))
    return keys


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

    Adaptation is per call: with ``scope="batch"`` the loss is a mean over the
    batch, so a batch adapts as one domain (e.g. one patient's windows);
    ``scope="sample"`` adapts each sample on its own. Random choices of an
    engine (masks) come from :meth:`rand`, never from the global RNG; in
    adaptation each sample's draws come from its own stream, keyed by the
    sample's content, so permuting a batch permutes the outputs and a sample's
    masks are the same in any batch.
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
        # in adaptation: the current call's sample keys, stream and generators
        self._keys: list[int] = []
        self._stream = "adapt"
        self._sample_generators: dict[tuple[str, int], torch.Generator] = {}

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
        each step draws a new mask and a run is reproducible.

        In adaptation a draw whose first dimension is the batch is made per
        sample: row ``i`` comes from a stream seeded with ``seed`` and a hash of
        sample ``i``'s content (:func:`sample_keys`), so it does not depend on
        the sample's position nor on the other samples (a permuted batch gets
        permuted masks; a sample gets the same masks alone as in any batch).
        The streams restart at every :meth:`adapt` call and run on across its
        steps; ``repeat=True`` restarts them at every step too (the same mask
        for each step of a call). Draws of another shape (shared by the batch)
        come from one stream seeded with ``seed``, restarted in the same way.
        Per-sample draws are made on the CPU and moved to ``device``, so they
        are the same on every device.
        """
        device = torch.device(device)
        shape = tuple(shape)
        if self._adapting and shape and shape[0] == len(self._keys):
            rows = {}
            for key in self._keys:  # a duplicated sample gets the same row
                if key not in rows:
                    rows[key] = torch.rand(
                        shape[1:], generator=self._sample_generator(key, repeat)
                    )
            return torch.stack([rows[key] for key in self._keys]).to(device)
        key = self._stream if self._adapting else "train"
        generator = self._generators.get(key)
        moved = generator is not None and (
            generator.device.type != device.type
            or device.index not in (None, generator.device.index)
        )
        if generator is None or moved or (repeat and self._adapting):
            if key == "train":
                seed = derive_seed(self.seed, 1)
            elif key == "adapt":
                seed = self.seed
            else:
                seed = derive_seed(self.seed, 10 + STREAMS[key])
            generator = self._generators[key] = torch_generator(seed, device)
        return torch.rand(shape, device=device, generator=generator)

    def _sample_generator(self, key: int, restart: bool) -> torch.Generator:
        """Sample ``key``'s generator in the current stream (a fresh one with ``restart``)."""
        slot = (self._stream, key)
        if restart or slot not in self._sample_generators:
            self._sample_generators[slot] = torch_generator(
                derive_seed(self.seed, key, STREAMS[self._stream])
            )
        return self._sample_generators[slot]

    def _loss_on(self, inputs, keys: list[int], stream: str):
        """``ttt_forward(inputs)`` with the per-sample streams of ``keys`` in ``stream``."""
        self._keys, self._stream = keys, stream
        if stream == "check":  # every check draws the same held-out masks
            self._sample_generators = {
                k: g for k, g in self._sample_generators.items() if k[0] != "check"
            }
            self._generators.pop("check", None)
        return self.ttt_forward(inputs)

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

        ``scope="batch"`` adapts the batch as one group; ``scope="sample"``
        adapts each sample alone (a loop over the samples; ``loss_ttt`` is then
        the mean of their losses). With ``safeguard`` the held-out check of
        :class:`OptimizationParameters` picks the weights that predict.

        A diverging adaptation (a non-finite loss at any step, or non-finite
        outputs at the end) raises a ``ValueError`` naming the step and ``lr``
        instead of returning NaN; the weights are restored either way.
        """
        opt = OptimizationParameters.coerce(
            optimization_parameters or self.optimization_parameters
        )
        params = self.adapted_parameters(opt.parameters)
        n = batch_size_of(inputs)
        if opt.scope == "batch" or n == 1:
            return self._adapt_group(inputs, opt, params)
        results = [
            self._adapt_group(select(inputs, [i]), opt, params) for i in range(n)
        ]
        outputs, losses = zip(*results, strict=True)
        return torch.cat(outputs), torch.stack(losses).mean()

    def _adapt_group(self, inputs, opt: OptimizationParameters, params):
        """:meth:`adapt` of one group of samples (the whole call with ``scope="batch"``)."""
        state = {k: v.detach().clone() for k, v in self.state_dict().items()}
        grads = {p: p.grad for p in self.parameters()}
        was_training = self.training
        keys = sample_keys(inputs)
        # the group runs in the order of its sample keys, so a permuted batch
        # gives bit-identical (permuted) outputs: sums over the batch do not
        # depend on the caller's order
        order = sorted(range(len(keys)), key=keys.__getitem__)
        if order != list(range(len(keys))):
            inputs, keys = select(inputs, order), [keys[i] for i in order]
        self._adapting = True
        self._sample_generators = {}
        for stream in STREAMS:
            self._generators.pop(stream, None)
        try:
            # adaptation runs with dropout off and frozen BatchNorm statistics
            self.eval()
            if opt.num_steps > 0:
                self._steps(inputs, keys, opt, params)
            with torch.no_grad():
                outputs, loss = self._loss_on(inputs, keys, "adapt")
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
            self._keys, self._stream, self._sample_generators = [], "adapt", {}
            self.train(was_training)
        if order != list(range(len(keys))):
            outputs = outputs[torch.as_tensor(order).argsort().to(outputs.device)]
        return outputs.detach(), loss.detach()

    def _holdout(self, keys: list[int], fraction: float) -> tuple[list, list]:
        """Positions of the adaptation part and of the held-out check part.

        The ``round(fraction * n)`` samples (at least one, at most ``n - 1``)
        with the smallest draw of their own ``"split"`` stream are held out, so
        the split follows the samples, not their order. One sample is both.
        """
        n = len(keys)
        if n == 1:
            return [0], [0]
        self._stream = "split"
        draws = [
            float(torch.rand((), generator=self._sample_generator(k, True)))
            for k in keys
        ]
        order = sorted(range(n), key=lambda i: (draws[i], keys[i]))
        n_check = min(max(round(fraction * n), 1), n - 1)
        # each part keeps the group's order (that of the keys)
        return sorted(order[n_check:]), sorted(order[:n_check])

    def _steps(self, inputs, keys, opt: OptimizationParameters, params) -> None:
        """``opt.num_steps`` steps on ``loss_ttt``; with ``safeguard``, the best-checked weights."""
        if opt.optimizer == "adam":
            optimizer = torch.optim.Adam(params, lr=opt.lr)
        else:
            optimizer = torch.optim.SGD(params, lr=opt.lr, momentum=opt.momentum)
        fit, fit_keys = inputs, keys
        if opt.safeguard:
            fit_at, check_at = self._holdout(keys, opt.holdout)
            fit, fit_keys = select(inputs, fit_at), [keys[i] for i in fit_at]
            check, check_keys = select(inputs, check_at), [keys[i] for i in check_at]

            def held_out_loss() -> float:
                with torch.no_grad():
                    value = self._loss_on(check, check_keys, "check")[1]
                return float(value) if all_finite(value) else float("inf")

            best_loss = held_out_loss()
            best = [p.detach().clone() for p in params]
        with torch.enable_grad():  # callers often predict under no_grad
            for step in range(opt.num_steps):
                optimizer.zero_grad(set_to_none=True)
                _, loss = self._loss_on(fit, fit_keys, "adapt")
                if not all_finite(loss) and opt.safeguard:
                    break  # the best-checked weights so far predict
                if not all_finite(loss):
                    raise ValueError(
                        f"adaptation diverged: the self-supervised loss is "
                        f"{loss.item()} at step {step + 1} of "
                        f"{opt.num_steps} (lr={opt.lr:g}); lower the "
                        "adaptation lr or num_steps"
                    )
                loss.backward()
                optimizer.step()
                if opt.safeguard:
                    checked = held_out_loss()
                    if checked < best_loss:
                        best_loss, best = checked, [p.detach().clone() for p in params]
        if opt.safeguard:
            with torch.no_grad():
                for p, value in zip(params, best, strict=True):
                    p.copy_(value)


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

"""Test-time adaptation engines for time-series models (torch-ttt's Engine idea).

Test-time-training methods differ mainly in their self-supervised loss, so an
**engine** wraps a model and supplies that loss. The contract is the one of
torch-ttt (Durasov et al., *torch-ttt*, https://github.com/nikitadurasov/torch-ttt),
which cannot be used here (it imports torchvision, its heads are image-specific):

* ``engine(inputs, target=None) -> (outputs, loss_ttt)`` in both modes.
* ``engine.train()``: a plain forward; train with
  ``task_loss(outputs, y) + alpha * loss_ttt`` and an optimizer made from
  ``engine.parameters()`` (the model and the engine's heads, which exist from
  construction on, so an optimizer made right away trains them);
  :func:`train_step` does one such step.
* ``engine.eval()``: adapt to ``inputs`` with ``optimization_parameters``, then
  predict; the stored weights are restored afterwards (bit-identical), nothing
  carries over between calls, and it works inside ``torch.no_grad()``.
  ``engine.adapt(inputs, optimization_parameters)`` does the same with other
  settings for one call.
* ``inputs``: a tensor ``[batch, time, channels]`` (NaN = missing) or a
  PyPOTS-style dict with ``X`` and ``missing_mask`` (1 = observed; other keys
  are passed through to the model).
* Randomness (masks) comes from the engine's own generators, seeded with its
  ``seed`` (:meth:`BaseEngine.rand`), never from the global RNG.

Adaptation settings (:class:`OptimizationParameters`, or a dict with the same
keys; torch-ttt's ``optimizer_name`` is accepted)::

    {"optimizer": "adam" | "sgd", "lr": 1e-3, "num_steps": 3,
     "parameters": "all" | "norm" | "<submodule name>", "momentum": 0.0,
     "scope": "batch" | "sample", "safeguard": False, "holdout": 0.25}

``scope="batch"`` adapts a call's samples as one group, ``"sample"`` each
sample on its own; ``safeguard=True`` keeps a step only when the
self-supervised loss on a held-out part of the input improves. In adaptation
every random draw of a sample comes from a stream keyed by the sample's
content, so permuting a batch permutes the outputs.

Registered engines (``available_engines()`` lists them, ``get_engine(name)``
returns the class), each with its class and self-supervised loss:

* ``"it3"`` (alias ``"ittt"``, torch-ttt's name), :class:`IT3Engine`:
  idempotence, ``f(x, embed(f(x))) = f(x)`` with the plain model as first pass;
* ``"masked"``, :class:`MaskedReconstructionEngine`: an auxiliary head
  reconstructs hidden observed entries;
* ``"self_reconstruction"``, :class:`SelfReconstructionEngine`: the model itself
  imputes hidden observed entries;
* ``"tail_forecast"``, :class:`TailForecastEngine`: forecast the window's own
  last steps.

``self_reconstruction`` needs a model that reconstructs its input (an imputer:
the TTT imputer of :mod:`tsgen.imputation` adapts with it by default); the
other three suit a forecaster.

**Building an engine by name.** Every engine is built with one signature,
:func:`build_engine` (which calls the class's :meth:`BaseEngine.from_config`)::

    from tsgen.adaptation import ConvImputer, build_engine
    engine = build_engine(
        "masked", ConvImputer(n_features=5), layer="encoder", example_inputs=batch,
        options={"mask_ratio": 0.2},
        optimization_parameters={"num_steps": 5, "lr": 1e-4, "parameters": "norm"},
        seed=0,
    )
    engine.train(); recon, loss_ttt = engine(batch)  # add alpha * loss_ttt to the loss
    engine.eval();  recon, _ = engine(test_batch)     # adapted per batch, then restored

``layer`` names the features layer an engine hooks, ``example_inputs`` is one
batch it sizes its heads from, ``options`` are the engine's own keyword
arguments; an engine ignores what it does not need.

**The estimator.** :class:`TTTForecaster` (config :class:`TTTForecasterConfig`)
follows tsgen's estimator contract and builds any registered engine by name::

    config = TTTForecasterConfig(
        context_length=24, horizon=6, n_features=5, engine="tail_forecast",
        adaptation={"num_steps": 5, "lr": 1e-4}, seed=0,
    )
    model = TTTForecaster(config, device="cpu").fit(windows)  # windows [N, 30, 5]
    forecast = model.predict(contexts)  # [N, 6, 5], each batch adapted as one group
    model.save("runs/tail"); TTTForecaster.load("runs/tail", device="cpu")

**Registering an engine** (in a notebook too): subclass :class:`BaseEngine`,
implement ``ttt_forward(inputs, target=None) -> (outputs, loss_ttt)``, draw any
randomness with ``self.rand``, and decorate the class with ``@register("name")``.
The default :meth:`BaseEngine.from_config` passes ``options`` to the
constructor; override it when the engine hooks a layer or sizes a head from
``example_inputs``. From then on ``TTTForecasterConfig(engine="name")`` and
``build_engine("name", ...)`` build it::

    @register("output_smoothness")
    class OutputSmoothness(BaseEngine):
        def ttt_forward(self, inputs, target=None):
            outputs = self.model(inputs)
            return outputs, outputs.diff(dim=1).pow(2).mean()

Modules: ``base`` (the contract, :class:`OptimizationParameters`), ``registry``,
one module per engine (``it3``, ``masked``, ``self_reconstruction``,
``forecast``), ``core`` (the networks :class:`MLPForecaster`,
:class:`ConvImputer`), ``config`` and ``model`` (the estimator), ``data``
(:func:`shifted_sines`: sines with a known shift) and ``experiments`` (chapter 4's
protocol: :func:`~tsgen.adaptation.experiments.shift_experiment`,
:func:`~tsgen.adaptation.experiments.adaptation_grid` and the rule that picks
steps and lr on validation draws,
:func:`~tsgen.adaptation.experiments.choose_adaptation`).
"""

from . import experiments
from .base import (
    BaseEngine,
    OptimizationParameters,
    replace_inputs,
    split_inputs,
    train_step,
)
from .config import TTTForecasterConfig
from .core import ConvImputer, MLPForecaster
from .data import shifted_sines
from .forecast import TailForecastEngine
from .it3 import IT3Engine
from .masked import MaskedReconstructionEngine
from .model import TTTForecaster
from .registry import available_engines, build_engine, get_engine, register
from .self_reconstruction import SelfReconstructionEngine

__all__ = [
    "BaseEngine",
    "ConvImputer",
    "IT3Engine",
    "MLPForecaster",
    "MaskedReconstructionEngine",
    "OptimizationParameters",
    "SelfReconstructionEngine",
    "TTTForecaster",
    "TTTForecasterConfig",
    "TailForecastEngine",
    "available_engines",
    "build_engine",
    "experiments",
    "get_engine",
    "register",
    "replace_inputs",
    "shifted_sines",
    "split_inputs",
    "train_step",
]

"""Test-time-training engines for time-series models (torch-ttt's Engine idea).

Test-time-training methods differ mainly in their self-supervised loss, so an
**engine** wraps a model and supplies that loss. The contract is the one of
torch-ttt (Durasov et al., *torch-ttt*, https://github.com/nikitadurasov/torch-ttt),
which cannot be used here (it imports torchvision, its heads are image-specific):

* ``engine(inputs, target=None) -> (outputs, loss_ttt)`` in both modes.
* ``engine.train()``: a plain forward; train with
  ``task_loss(outputs, y) + alpha * loss_ttt`` and an optimizer made from
  ``engine.parameters()`` (:func:`train_step` does one such step) (the model and the engine's heads, which exist from
  construction on, so an optimizer made right away trains them).
* ``engine.eval()``: adapt to ``inputs`` with ``optimization_parameters``, then
  predict; the stored weights are restored afterwards (bit-identical), nothing
  carries over between calls, and it works inside ``torch.no_grad()``.
  ``engine.adapt(inputs, optimization_parameters)`` does the same with other
  settings for one call.
* ``inputs``: a tensor ``[batch, time, channels]`` (NaN = missing) or a
  PyPOTS-style dict with ``X`` and ``missing_mask`` (1 = observed; other keys
  are passed through to the model).

Adaptation settings (:class:`OptimizationParameters`, or a dict with the same
keys; torch-ttt's ``optimizer_name`` is accepted)::

    {"optimizer": "adam" | "sgd", "lr": 1e-3, "num_steps": 3,
     "parameters": "all" | "norm" | "<submodule name>", "momentum": 0.0}

Engines (``get_engine(name)`` returns the class; ``available_engines()`` lists them):

=========================  ===================================  ================================================
name                       class                                self-supervised loss
=========================  ===================================  ================================================
``"it3"``                  :class:`IT3Engine`                   idempotence ``f(x, f(x, 0)) = f(x, 0)``
``"masked"``               :class:`MaskedReconstructionEngine`  reconstruct hidden observed entries
``"self_reconstruction"``  :class:`SelfReconstructionEngine`    the model itself imputes hidden observed entries
``"tail_forecast"``        :class:`TailForecastEngine`          forecast the window's own last steps
=========================  ===================================  ================================================

For the imputer (a dict-input model, reconstruction ``[B, T, C]``)::

    from tsgen.adaptation import MaskedReconstructionEngine
    engine = MaskedReconstructionEngine(imputer, "encoder", example_batch, mask_ratio=0.2,
                                        optimization_parameters={"num_steps": 5, "lr": 1e-4, "parameters": "norm"})
    engine.train(); recon, loss_ttt = engine(batch)          # add alpha * loss_ttt to the SAITS loss
    engine.eval();  recon, _ = engine(test_batch)             # adapted per batch, weights restored

For per-patient adaptation of a forecaster (``[B, L, C] -> [B, H, C]``)::

    engine = get_engine("tail_forecast")(forecaster, tail_length=6,
                                         optimization_parameters={"num_steps": 5, "lr": 1e-3})
    engine.eval()
    with torch.no_grad():
        forecast, _ = engine(patient_windows)                # one batch = one patient's windows

New engines: subclass :class:`BaseEngine`, implement ``ttt_forward(inputs, target=None)``
and decorate with ``@register("name")``. :class:`TTTForecaster` is a ready
estimator (fit / predict / evaluate / save / load) over :class:`MLPForecaster`;
:func:`shifted_sines` makes sines with a known shift.
"""

from .base import BaseEngine, OptimizationParameters, replace_inputs, split_inputs, train_step
from .data import shifted_sines
from .estimator import TTTForecaster, TTTForecasterConfig
from .forecast import TailForecastEngine
from .it3 import IT3Engine
from .masked import MaskedReconstructionEngine
from .models import ConvImputer, MLPForecaster
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
    "get_engine",
    "register",
    "replace_inputs",
    "shifted_sines",
    "split_inputs",
    "train_step",
]

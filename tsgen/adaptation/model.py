"""``TTTForecaster``: a window forecaster trained with an engine and adapted at inference.

Config (:class:`~tsgen.adaptation.config.TTTForecasterConfig`) -> network
(:class:`~tsgen.adaptation.core.MLPForecaster`, wrapped by the engine the config
names) -> this estimator, which follows tsgen's estimator contract
(:class:`tsgen.estimator.Estimator`): ``fit`` returns self, ``save`` /
``TTTForecaster.load`` write and read one checkpoint directory.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .. import runtime
from ..config import integer
from ..data.validation import as_float_array
from ..estimator import Estimator, TrainingLog
from .base import BaseEngine, OptimizationParameters
from .config import TTTForecasterConfig
from .core import MLPForecaster
from .registry import build_engine


class TTTForecaster(Estimator):
    """Fit on windows ``[N, context_length + horizon, C]``; predict from contexts ``[N, context_length, C]``.

    ``TTTForecaster(config, device="cpu")`` builds the network from
    ``config.seed`` and wraps it in ``config.engine``, any engine of the registry
    (one a student registered included), built by :func:`build_engine` with the
    layer ``"encoder"``, an example context and ``config.engine_options``. An
    engine that cannot serve a forecaster (``"self_reconstruction"`` needs a model
    that reconstructs its input) is a ValueError here, naming the engine.

    Neither ``fit`` nor ``predict`` touches the caller's random state: batches and
    masks come from generators seeded with ``config.seed``, and each call runs in
    :func:`tsgen.runtime.seeded`, so an engine that draws from the global RNG is
    reproducible too.
    """

    config_class = TTTForecasterConfig

    def __init__(self, config: TTTForecasterConfig, device: str | None = "cpu"):
        super().__init__(config, device)
        c = self.config
        # the initial weights (network and heads) follow from the seed
        with runtime.seeded(c.seed, self.device):
            self.model = MLPForecaster(
                c.context_length, c.horizon, c.n_features, c.hidden
            ).to(self.device)
            self.engine = self._build_engine() if c.engine is not None else None

    def _build_engine(self) -> BaseEngine:
        c = self.config
        example = torch.zeros(1, c.context_length, c.n_features, device=self.device)
        try:
            engine = build_engine(
                c.engine,
                self.model,
                layer="encoder",
                example_inputs=example,
                options=c.engine_options,
                optimization_parameters=c.adaptation,
                seed=c.seed,
            )
        except TypeError as err:
            if "unexpected keyword argument" not in str(err):
                raise
            raise ValueError(
                f"engine {c.engine!r} does not take "
                f"engine_options={c.engine_options}: {err}"
            ) from None
        engine = engine.to(self.device)
        # one forward pass without adaptation steps: an engine
        # that does not fit a forecaster fails now, clearly
        try:
            outputs, _ = engine.adapt(example, {**c.adaptation, "num_steps": 0})
        except ValueError as err:
            raise ValueError(
                f"TTTForecaster cannot use engine {c.engine!r}: {err}"
            ) from None
        if tuple(outputs.shape) != (1, c.horizon, c.n_features):
            raise ValueError(
                f"TTTForecaster cannot use engine {c.engine!r}: it "
                f"returns outputs of shape {tuple(outputs.shape)} for one "
                f"context; a forecast is (1, {c.horizon}, {c.n_features})"
            )
        return engine

    def _module(self) -> nn.Module:
        """What trains and what is saved: the engine (model and heads), or the plain model."""
        return self.engine if self.engine is not None else self.model

    def _tensor(self, arr, name: str, length: int) -> torch.Tensor:
        arr = as_float_array(arr, name, ndim=3)
        if np.isnan(arr).any():
            raise ValueError(
                f"{name} holds NaN; this forecaster needs complete windows"
            )
        if arr.shape[1:] != (length, self.config.n_features):
            raise ValueError(
                f"{name} must be [n, {length}, "
                f"{self.config.n_features}]; got {arr.shape}"
            )
        return torch.as_tensor(arr, dtype=torch.float32, device=self.device)

    def fit(
        self, windows, *, progress: bool = False, logging_dir=None
    ) -> TTTForecaster:
        """Train ``task MSE + alpha * loss_ttt`` with Adam over the engine's parameters (model and heads).

        Runs ``config.epochs`` epochs from the current weights and appends one
        row per epoch to ``history`` (``task_loss``, and ``ttt_loss`` with an
        engine; TensorBoard scalars too when ``logging_dir`` is given).
        """
        c = self.config
        data = self._tensor(windows, "windows", c.context_length + c.horizon)
        x, y = data[:, : c.context_length], data[:, c.context_length :]
        module = self._module()
        optimizer = torch.optim.Adam(module.parameters(), lr=c.lr)
        batch_order = runtime.torch_generator(c.seed)
        epochs = runtime.progress(
            range(c.epochs), enabled=progress, desc=f"fit {c.engine or 'plain'}"
        )
        with (
            runtime.seeded(c.seed, self.device),
            TrainingLog(self.history, logging_dir) as log,
        ):
            module.train()
            for _ in epochs:
                order = torch.randperm(len(x), generator=batch_order).to(self.device)
                task_total, ttt_total = 0.0, 0.0
                for start in range(0, len(x), c.batch_size):
                    idx = order[start : start + c.batch_size]
                    if self.engine is not None:
                        outputs, loss_ttt = self.engine(x[idx], y[idx])
                    else:
                        outputs, loss_ttt = (
                            self.model(x[idx]),
                            torch.zeros((), device=self.device),
                        )
                    task = nn.functional.mse_loss(outputs, y[idx])
                    optimizer.zero_grad(set_to_none=True)
                    (task + c.alpha * loss_ttt).backward()
                    optimizer.step()
                    task_total += task.item() * len(idx)
                    ttt_total += loss_ttt.item() * len(idx)
                if not np.isfinite([task_total, ttt_total]).all():
                    raise ValueError(
                        f"TTTForecaster training diverged in epoch "
                        f"{len(self.history) + 1} (task loss {task_total}, engine "
                        f"loss {ttt_total}); lower lr={c.lr:g} or scale the data"
                    )
                losses = {"task_loss": task_total / len(x)}
                if self.engine is not None:
                    losses["ttt_loss"] = ttt_total / len(x)
                log(len(self.history) + 1, **losses)
            module.eval()
        return self

    def _adaptation(self, adapt) -> OptimizationParameters:
        c = self.config
        if adapt is True:
            return OptimizationParameters.coerce(c.adaptation)
        if adapt is False or adapt is None:
            return OptimizationParameters.coerce({**c.adaptation, "num_steps": 0})
        if isinstance(adapt, dict):  # overrides some fields of the config's adaptation
            return OptimizationParameters.coerce({**c.adaptation, **adapt})
        return OptimizationParameters.coerce(adapt)

    def predict(self, context, adapt=True, batch_size: int | None = None) -> np.ndarray:
        """Forecasts ``[N, horizon, C]``.

        ``adapt``: ``True`` uses the config's adaptation, ``False`` none, a dict
        overrides some of its fields, an :class:`OptimizationParameters` replaces
        it. Each batch of ``batch_size`` contexts (default ``config.batch_size``;
        otherwise a positive integer, 0 is an error) is one call of the engine:
        it adapts as one group with ``scope="batch"``, each context on its own
        with ``scope="sample"`` (the forecasts then do not depend on
        ``batch_size``); ``safeguard`` keeps only the steps that a held-out
        check approves (see :class:`OptimizationParameters`). The stored
        weights never change. A diverging adaptation or a non-finite
        forecast is a ``ValueError``, never NaN in the result.
        """
        if not self.history:
            raise RuntimeError(
                "this TTTForecaster is not trained: call fit(windows) first, "
                "or TTTForecaster.load(path) for a saved one"
            )
        x = self._tensor(context, "context", self.config.context_length)
        opt = self._adaptation(adapt)
        if self.engine is None and opt.num_steps:
            raise ValueError(
                "this forecaster has no engine to adapt with; use adapt=False"
            )
        batch_size = (
            self.config.batch_size
            if batch_size is None
            else integer(batch_size, "batch_size")
        )
        forecasts = []
        with runtime.seeded(self.config.seed, self.device):
            for start in range(0, len(x), batch_size):
                batch = x[start : start + batch_size]
                if self.engine is None:
                    self.model.eval()
                    with torch.no_grad():
                        forecasts.append(self.model(batch))
                else:
                    forecasts.append(self.engine.eval().adapt(batch, opt)[0])
        forecast = torch.cat(forecasts).cpu().numpy()
        if not np.isfinite(forecast).all():
            raise ValueError(
                "TTTForecaster's forecasts are not finite: the trained weights "
                "or the context's scale are out of range"
            )
        return forecast

    def evaluate(self, windows, adapt=True, batch_size: int | None = None) -> dict:
        """MSE and MAE of the forecasts of complete windows ``[N, context_length + horizon, C]``."""
        c = self.config
        data = as_float_array(windows, "windows", ndim=3)
        if data.shape[1] != c.context_length + c.horizon:
            raise ValueError(
                f"windows must have {c.context_length + c.horizon} "
                f"steps; got {data.shape[1]}"
            )
        forecast = self.predict(
            data[:, : c.context_length], adapt=adapt, batch_size=batch_size
        )
        error = forecast - data[:, c.context_length :]
        return {"mse": float(np.mean(error**2)), "mae": float(np.mean(np.abs(error)))}

    # ---- checkpoint hooks (see tsgen.estimator)
    def _tensors(self) -> dict[str, torch.Tensor]:
        return dict(self._module().state_dict())

    def _load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self._module().load_state_dict(tensors)

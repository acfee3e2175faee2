"""``TTTForecaster``: a window forecaster trained with an engine and adapted at inference.

Config (JSON round-trip) -> core module (:class:`~tsgen.adaptation.models.MLPForecaster`
wrapped by an engine) -> estimator with ``fit`` / ``predict`` / ``evaluate`` /
``save`` / ``load``, the shape of every tsgen subpackage.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

with warnings.catch_warnings():  # tqdm.auto warns once when ipywidgets is missing; it then prints plain text
    warnings.simplefilter("ignore")
    from tqdm.auto import tqdm

from ..runtime import resolve_device
from ..config import JSONConfig
from ..data.validation import as_float_array
from .base import BaseEngine, OptimizationParameters, train_step
from .models import MLPForecaster
from .registry import get_engine


@dataclass
class TTTForecasterConfig(JSONConfig):
    """Everything that defines a trained forecaster; ``engine=None`` trains the plain model."""

    context_length: int = 24      # input window
    horizon: int = 6              # forecast steps
    n_features: int = 5
    hidden: int = 64
    engine: str | None = "it3"    # a registered engine name, or None
    alpha: float = 1.0            # weight of loss_ttt beside the task loss
    mask_ratio: float = 0.25      # masked engine: fraction of observed entries hidden
    tail_length: int = 0          # tail_forecast engine: hidden tail (0 = horizon)
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    adaptation: dict = field(default_factory=lambda: OptimizationParameters().to_dict())
    seed: int = 0
    device: str = "cpu"
    progress: bool = True

    def __post_init__(self):
        if self.engine is not None:
            get_engine(self.engine)  # unknown names fail here, listing the known ones
        self.adaptation = OptimizationParameters.coerce(self.adaptation).to_dict()
        if self.alpha < 0:
            raise ValueError(f"alpha must be >= 0; got {self.alpha}")
        for name in ("context_length", "horizon", "n_features", "hidden", "epochs", "batch_size"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")


def build_engine(name: str, model: nn.Module, config: TTTForecasterConfig) -> BaseEngine:
    """The engine ``name`` around ``model``, with heads built from the config's window shape."""
    cls = get_engine(name)
    common = dict(optimization_parameters=config.adaptation, seed=config.seed)
    example = torch.zeros(1, config.context_length, config.n_features, device=next(model.parameters()).device)
    if name == "it3":
        return cls(model, "encoder", example, **common)
    if name == "masked":
        return cls(model, "encoder", example, mask_ratio=config.mask_ratio, **common)
    if name == "tail_forecast":
        return cls(model, config.tail_length or config.horizon, **common)
    raise ValueError(f"TTTForecaster does not know how to build engine {name!r}")


class TTTForecaster:
    """Fit on windows ``[N, context_length + horizon, C]``; predict from contexts ``[N, context_length, C]``."""

    def __init__(self, config: TTTForecasterConfig | None = None, **overrides):
        config = config or TTTForecasterConfig()
        self.config = TTTForecasterConfig.from_dict({**config.to_dict(), **overrides})
        self.device = resolve_device(self.config.device)
        torch.manual_seed(self.config.seed)
        c = self.config
        self.model = MLPForecaster(c.context_length, c.horizon, c.n_features, c.hidden).to(self.device)
        self.engine = build_engine(c.engine, self.model, c).to(self.device) if c.engine else None
        self.history: list[dict] = []

    # -- data checks
    def _tensor(self, arr, name: str, length: int) -> torch.Tensor:
        arr = as_float_array(arr, name, ndim=3)
        if np.isnan(arr).any():
            raise ValueError(f"{name} holds NaN; this forecaster needs complete windows")
        if arr.shape[1:] != (length, self.config.n_features):
            raise ValueError(f"{name} must be [n, {length}, {self.config.n_features}]; got {arr.shape}")
        return torch.as_tensor(arr, dtype=torch.float32, device=self.device)

    def fit(self, windows) -> "TTTForecaster":
        """Train ``task MSE + alpha * loss_ttt`` with Adam over the engine's parameters (model and heads)."""
        c = self.config
        data = self._tensor(windows, "windows", c.context_length + c.horizon)
        x, y = data[:, : c.context_length], data[:, c.context_length:]
        module = self.engine if self.engine is not None else self.model
        optimizer = torch.optim.Adam(module.parameters(), lr=c.lr)
        generator = torch.Generator().manual_seed(c.seed)
        module.train()
        for epoch in tqdm(range(c.epochs), desc=f"fit {c.engine or 'plain'}", mininterval=5, disable=not c.progress):
            order = torch.randperm(len(x), generator=generator).to(self.device)
            totals = {"task": 0.0, "ttt": 0.0}
            for start in range(0, len(x), c.batch_size):
                idx = order[start: start + c.batch_size]
                if self.engine is not None:
                    task, loss_ttt = train_step(self.engine, optimizer, x[idx], y[idx], c.alpha)
                else:
                    loss = nn.functional.mse_loss(self.model(x[idx]), y[idx])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    task, loss_ttt = loss.item(), 0.0
                totals["task"] += task * len(idx)
                totals["ttt"] += loss_ttt * len(idx)
            self.history.append({"epoch": epoch + 1, **{k: v / len(x) for k, v in totals.items()}})
        module.eval()
        return self

    def predict(self, context, adapt=True, batch_size: int | None = None) -> np.ndarray:
        """Forecasts ``[N, horizon, C]``.

        ``adapt``: ``True`` uses the config's adaptation, ``False`` none, a dict
        overrides some of its fields, an :class:`OptimizationParameters` replaces it. Each batch of
        ``batch_size`` contexts adapts as one group; the stored weights never change.
        """
        c = self.config
        x = self._tensor(context, "context", c.context_length)
        if adapt is True:
            opt = OptimizationParameters.coerce(c.adaptation)
        elif adapt is False or adapt is None:
            opt = OptimizationParameters.coerce({**c.adaptation, "num_steps": 0})
        elif isinstance(adapt, dict):  # overrides some fields of the config's adaptation
            opt = OptimizationParameters.coerce({**c.adaptation, **adapt})
        else:
            opt = OptimizationParameters.coerce(adapt)
        batch_size = batch_size or c.batch_size
        outs = []
        for start in range(0, len(x), batch_size):
            xb = x[start: start + batch_size]
            if self.engine is None:
                if opt.num_steps:
                    raise ValueError("this forecaster has no engine to adapt with; use adapt=False")
                self.model.eval()
                with torch.no_grad():
                    outs.append(self.model(xb))
            else:
                self.engine.eval()
                outs.append(self.engine.adapt(xb, opt)[0])
        return torch.cat(outs).cpu().numpy()

    def evaluate(self, windows, adapt=True, batch_size: int | None = None) -> dict:
        """MSE and MAE of the forecasts of complete windows ``[N, context + horizon, C]``."""
        c = self.config
        data = as_float_array(windows, "windows", ndim=3)
        if data.shape[1] != c.context_length + c.horizon:
            raise ValueError(f"windows must have {c.context_length + c.horizon} steps; got {data.shape[1]}")
        pred = self.predict(data[:, : c.context_length], adapt=adapt, batch_size=batch_size)
        err = pred - data[:, c.context_length:]
        return {"mse": float(np.mean(err**2)), "mae": float(np.mean(np.abs(err)))}

    def _module(self) -> nn.Module:
        return self.engine if self.engine is not None else self.model

    def save(self, path) -> Path:
        """A directory with ``config.json``, ``weights.safetensors`` (model and heads) and ``history.json``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(self.config.to_json())
        (path / "history.json").write_text(json.dumps(self.history))
        save_file({k: v.detach().contiguous().cpu() for k, v in self._module().state_dict().items()},
                  str(path / "weights.safetensors"))
        return path

    @classmethod
    def load(cls, path, device: str | None = None) -> "TTTForecaster":
        path = Path(path)
        if not (path / "config.json").is_file():
            raise ValueError(f"{path} is not a saved TTTForecaster (no config.json)")
        config = TTTForecasterConfig.from_json((path / "config.json").read_text())
        est = cls(config, **({"device": device} if device else {}))
        est._module().load_state_dict(load_file(str(path / "weights.safetensors"), device=str(est.device)))
        est.history = json.loads((path / "history.json").read_text())
        return est

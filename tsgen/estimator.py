"""The one contract every trainable thing in tsgen follows, and its checkpoint format.

An estimator is built from a config (a :class:`~tsgen.config.JSONConfig`
dataclass) and a device; ``fit(...)`` returns ``self``; ``save(path)`` writes a
directory and the classmethod ``load(path, device=...)`` rebuilds an estimator
that predicts exactly what the saved one did::

    path/
      config.json           the config, as JSONConfig.to_json writes it
      weights.safetensors   every tensor (network weights, optimizer moments, ...)
      state.json            {"format": 1, "kind": "<class name>", "tsgen": "<version>",
                             "history": [{"epoch": 1, ...}, ...], ...whatever else the estimator keeps}

Loading one kind's checkpoint as another is an error that names both. Saving is
atomic: the files are written to a new directory next to ``path`` and moved
into place in one rename, so a crash or a full disk leaves the previous
checkpoint as it was, and an existing checkpoint is only replaced with
``overwrite=True``.

Training history: each estimator appends one row per epoch to ``history``
(kept in ``state.json``) through :class:`TrainingLog`, which also writes
TensorBoard scalars when given a ``logging_dir``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import ClassVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

import tsgen

from .config import JSONConfig
from .runtime import resolve_device

FORMAT_VERSION = 1
CONFIG, WEIGHTS, STATE = "config.json", "weights.safetensors", "state.json"


class TrainingLog:
    """Per-epoch scalars: appended to ``history`` and, with a ``logging_dir``, written as TensorBoard scalars.

    Use as a context manager around a training loop (the TensorBoard file is
    closed on exit)::

        with TrainingLog(self.history, logging_dir) as log:
            for epoch in ...:
                log(epoch + 1, train_loss=..., val_loss=...)
    """

    def __init__(self, history: list[dict], logging_dir: str | Path | None = None):
        self.history = history
        self.writer = None
        if logging_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(logging_dir))

    def __call__(self, epoch: int, **scalars: float) -> None:
        row = {"epoch": int(epoch), **{k: float(v) for k, v in scalars.items()}}
        self.history.append(row)
        if self.writer is not None:
            for name, value in scalars.items():
                self.writer.add_scalar(name, float(value), int(epoch))

    def __enter__(self) -> TrainingLog:
        return self

    def __exit__(self, *exc) -> None:
        if self.writer is not None:
            self.writer.close()


class _LoadDescriptor:
    """``Estimator.load`` is a class method; called on an instance it explains itself instead of doing nothing.

    The seed's TTM code wrote ``m = TTMForecaster(cfg); m.load(path)``: a plain
    classmethod would return a new estimator and leave ``m`` untrained, silently.
    """

    def __init__(self, func):
        self.func = func
        self.__doc__ = func.__doc__

    def __get__(self, instance, owner):
        if instance is not None:

            def refuse(*args, **kwargs):
                raise TypeError(
                    f"{owner.__name__}.load is a class method that returns a new "
                    f"estimator: write `model = {owner.__name__}.load(path)` "
                    "(calling it on an instance would leave the instance unchanged)"
                )

            return refuse
        return self.func.__get__(owner, type(owner))


def checkpoint_load(func):
    """Decorator for an estimator's ``load`` classmethod (see :class:`_LoadDescriptor`)."""
    return _LoadDescriptor(func)


class Estimator:
    """Base class of tsgen's estimators: config + device, ``fit`` returns self, atomic ``save``, classmethod ``load``.

    Subclasses set ``config_class`` and implement ``fit`` and the checkpoint hooks:

    * ``_tensors() -> dict[str, Tensor]``: everything that goes into ``weights.safetensors``;
    * ``_load_tensors(tensors)``: put them back (strictly: a missing or extra key is an error);
    * ``_state() -> dict`` / ``_restore(state)``: JSON-ready extras for ``state.json``
      (a scaler, an epoch counter); ``history`` is handled here;
    * ``_build(config, state, device)`` (classmethod, optional): construct the
      estimator before its tensors are loaded, when the config alone is not enough;
    * ``_save_extra(directory)`` / ``_load_extra(directory)`` (optional): files beyond
      the three standard ones, such as a nested checkpoint.
    """

    config_class: ClassVar[type[JSONConfig]]

    def __init__(self, config, device: str | None = "cpu"):
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs a "
                f"{self.config_class.__name__}; got {type(config).__name__}"
            )
        self.config = config
        self.device = resolve_device(device)
        self.history: list[dict] = []

    @property
    def kind(self) -> str:
        return type(self).__name__

    def fit(self, *args, **kwargs) -> Estimator:
        raise NotImplementedError

    # ---- checkpoint hooks
    def _tensors(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        raise NotImplementedError

    def _state(self) -> dict:
        return {}

    def _restore(self, state: dict) -> None:
        pass

    @classmethod
    def _build(cls, config, state: dict, device: str) -> Estimator:
        return cls(config, device=device)

    # ---- save / load
    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the checkpoint directory ``path`` atomically; refuse to replace one unless ``overwrite``."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(
                f"{path} already exists; pass overwrite=True to replace it"
            )
        if path.exists() and not path.is_dir():
            raise ValueError(f"{path} exists and is not a directory")
        tensors = {
            k: v.detach().to("cpu").contiguous() for k, v in self._tensors().items()
        }
        state = {
            "format": FORMAT_VERSION,
            "kind": self.kind,
            "tsgen": tsgen.__version__,
            "history": self.history,
            **self._state(),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            self.config.to_json(staging / CONFIG)
            (staging / STATE).write_text(
                json.dumps(state, indent=1, allow_nan=False) + "\n"
            )
            save_file(tensors, str(staging / WEIGHTS))
            self._save_extra(staging)
            for file in staging.iterdir():
                if file.is_file():
                    file.chmod(0o644)
                    with open(file, "rb") as handle:
                        os.fsync(handle.fileno())
            staging.chmod(0o755)
            # swap: the old checkpoint stays whole until the new one is in place
            if path.exists():
                retired = Path(
                    tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent)
                )
                os.rename(path, retired / path.name)
                os.rename(staging, path)
                shutil.rmtree(retired, ignore_errors=True)
            else:
                os.rename(staging, path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return path

    def _save_extra(self, directory: Path) -> None:
        """Files beyond the three standard ones (e.g. a nested checkpoint); none by default."""

    def _load_extra(self, directory: Path) -> None:
        """Read what :meth:`_save_extra` wrote; called after :meth:`_restore`."""

    @checkpoint_load
    def load(cls, path: str | Path, device: str | None = "cpu"):
        """The estimator saved at ``path`` by :meth:`save`, on ``device``."""
        path = Path(path)
        for name in (CONFIG, WEIGHTS, STATE):
            if not (path / name).is_file():
                raise ValueError(f"{path} is not a tsgen checkpoint: {name} is missing")
        state = read_json(path / STATE)
        kind = state.get("kind")
        if kind != cls.__name__:
            raise ValueError(
                f"{path} holds a {kind} checkpoint, not a "
                f"{cls.__name__}; load it with {kind}.load"
            )
        if state.get("format") != FORMAT_VERSION:
            raise ValueError(
                f"{path}: checkpoint format {state.get('format')!r}; "
                f"this tsgen reads {FORMAT_VERSION}"
            )
        config = cls.config_class.read(path / CONFIG)
        device = resolve_device(device)
        estimator = cls._build(config, state, device)
        try:
            tensors = load_file(str(path / WEIGHTS), device=device)
        except (SafetensorError, OSError) as err:
            raise ValueError(f"{path / WEIGHTS} cannot be read: {err}") from None
        try:
            estimator._load_tensors(tensors)
        except (RuntimeError, KeyError) as err:
            raise ValueError(
                f"{path / WEIGHTS} does not match the config in {path / CONFIG}: {err}"
            ) from None
        estimator._restore(state)
        estimator._load_extra(path)
        estimator.history = list(state.get("history", []))
        return estimator


def read_json(path: Path) -> dict:
    """A JSON object from ``path``; errors name the file."""
    try:
        value = json.loads(Path(path).read_text())
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err}") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} must hold a JSON object; got {type(value).__name__}")
    return value


def load_modules(
    tensors: dict[str, torch.Tensor], modules: dict[str, torch.nn.Module]
) -> None:
    """Load ``{"<module name>.<key>": tensor}`` into each named module, strictly (missing or extra keys fail)."""
    extra = [k for k in tensors if k.split(".", 1)[0] not in modules]
    if extra:
        raise KeyError(f"unexpected tensors {extra[:5]}")
    for name, module in modules.items():
        prefix = f"{name}."
        module.load_state_dict(
            {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        )


def module_tensors(modules: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """``{"<module name>.<key>": tensor}`` of every named module's state dict."""
    return {
        f"{name}.{k}": v
        for name, module in modules.items()
        for k, v in module.state_dict().items()
    }

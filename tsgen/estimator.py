"""The one contract every trainable thing in tsgen follows, and its checkpoint format.

An estimator is built from a config (a :class:`~tsgen.config.JSONConfig`
dataclass) and a device; ``fit(...)`` returns ``self``; ``save(path)`` writes a
directory and the classmethod ``load(path, device=...)`` rebuilds an estimator
that predicts exactly what the saved one did::

    path/
      config.json           the config, as JSONConfig.to_json writes it (every field)
      weights.safetensors   every tensor (network weights, optimizer moments, ...)
      state.json            {"format": 2, "kind": "<class name>", "tsgen": "<version>",
                             "history": [{"epoch": 1, ...}, ...],
                             "checksums": {"config.json": "<sha256>", ...},
                             ...whatever else the estimator keeps}

Saving is a transaction: the files are written to a new directory beside
``path`` and flushed to disk, then that directory is swapped in (one atomic
exchange of the two directories on Linux), so a process killed at any moment,
a read-only directory or a full disk leaves the previous checkpoint whole and
loadable; an existing checkpoint is only replaced with ``overwrite=True``.
Loading checks the SHA-256 of every file (safetensors has no checksum of its
own: a damaged payload byte would otherwise load and predict NaN), reads a
config only when it holds every field, and names the file and the problem on
any failure; loading one kind's checkpoint as another is an error that names
both. A killed save can leave a hidden ``.<name>.*`` directory beside ``path``;
it is never read and can be deleted.

Training history: each estimator appends one row per epoch to ``history``
(kept in ``state.json``) through :class:`TrainingLog`, which also writes
TensorBoard scalars when given a ``logging_dir``.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import ClassVar

import safetensors.torch
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

import tsgen

from .config import JSONConfig
from .runtime import resolve_device

FORMAT_VERSION = 2  # 2: state.json records the SHA-256 of every other file
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
        """Write the checkpoint directory ``path`` as one transaction; refuse to replace one unless ``overwrite``.

        The files go to a new directory beside ``path``, each flushed to disk
        (mode 0644), with the SHA-256 of every file but ``state.json`` recorded
        in ``state.json``; the new directory is then swapped in. ``overwrite``
        replaces only a tsgen checkpoint (or an empty directory). On any error
        the previous checkpoint is left as it was and the error names ``path``.
        """
        path = Path(path)
        if path.is_symlink():  # replace the directory it points to, not the link
            path = path.resolve()
        if path.exists() and not path.is_dir():
            raise ValueError(f"{path} exists and is not a directory")
        if path.exists() and not overwrite:
            raise FileExistsError(
                f"{path} already exists; pass overwrite=True to replace it"
            )
        if path.exists() and any(path.iterdir()) and not (path / STATE).is_file():
            raise ValueError(
                f"{path} is a directory but not a tsgen checkpoint (no {STATE}); "
                "refusing to replace it: save to a new path"
            )
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
        # everything that can fail on the values fails before anything is written
        state_text(state)
        config = self.config.to_json().encode()
        weights = safetensors.torch.save(tensors)
        existed = path.exists()
        staging = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
            _write(staging / CONFIG, config)
            _write(staging / WEIGHTS, weights)
            self._save_extra(staging)
            state["checksums"] = {
                str(file.relative_to(staging)): _sha256(file)
                for file in sorted(staging.rglob("*"))
                if file.is_file()
            }
            _write(staging / STATE, state_text(state).encode())
            _settle(staging)
            _swap_in(staging, path)
        except OSError as err:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            kept = "the previous one is unchanged" if existed else "nothing was saved"
            message = (
                f"cannot save the {self.kind} checkpoint to {path}: "
                f"{err.strerror or err}; {kept}"
            )
            raise (
                OSError(err.errno, message) if err.errno else OSError(message)
            ) from err
        except BaseException:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            raise
        return path

    def _save_extra(self, directory: Path) -> None:
        """Files beyond the three standard ones (e.g. a nested checkpoint); none by default."""

    def _load_extra(self, directory: Path) -> None:
        """Read what :meth:`_save_extra` wrote; called after :meth:`_restore`."""

    @checkpoint_load
    def load(cls, path: str | Path, device: str | None = "cpu"):
        """The estimator saved at ``path`` by :meth:`save`, on ``device``.

        Every file is checked against the SHA-256 recorded in ``state.json``
        before it is read, and the config must hold every field; any problem is
        a ``ValueError`` naming the file (``FileNotFoundError`` for no
        checkpoint at all). ``load`` builds a new estimator and changes nothing else.
        """
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(
                f"no checkpoint at {path}: not a directory{_interrupted_hint(path)}"
            )
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
            older = (
                " (format 1 predates checksums: save it again with this tsgen)"
                if state.get("format") == 1
                else ""
            )
            raise ValueError(
                f"{path}: checkpoint format {state.get('format')!r}; "
                f"this tsgen reads {FORMAT_VERSION}{older}"
            )
        verify_checksums(path, state)
        if not isinstance(state.get("history"), list):
            raise ValueError(f"{path / STATE}: 'history' must be a list of epoch rows")
        config = cls.config_class.read(path / CONFIG)
        device = resolve_device(device)
        try:
            tensors = load_file(str(path / WEIGHTS), device=device)
        except (SafetensorError, OSError) as err:
            raise ValueError(f"{path / WEIGHTS} cannot be read: {err}") from None
        try:
            estimator = cls._build(config, state, device)
            estimator._restore(state)
        except KeyError as err:
            raise ValueError(f"{path / STATE} lacks the key {err}") from None
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path / STATE} holds an invalid value: {err}") from None
        try:
            estimator._load_tensors(tensors)
        except (RuntimeError, KeyError) as err:
            raise ValueError(
                f"{path / WEIGHTS} does not match the config in {path / CONFIG}: {err}"
            ) from None
        estimator._load_extra(path)
        estimator.history = list(state["history"])
        return estimator


def state_text(state: dict) -> str:
    """``state.json``'s text; a value JSON cannot hold (NaN, an array) is a ValueError naming it."""
    try:
        return json.dumps(state, indent=1, allow_nan=False) + "\n"
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"the checkpoint state cannot be saved as JSON: {err}"
        ) from None


def read_json(path: Path) -> dict:
    """A JSON object from ``path``; errors name the file."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err}") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text: {err}") from None
    if not text.strip():
        raise ValueError(f"{path} is empty")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} must hold a JSON object; got {type(value).__name__}")
    return value


def verify_checksums(path: Path, state: dict) -> None:
    """Every file that ``state["checksums"]`` lists exists under ``path`` with that SHA-256.

    A ValueError names the missing or damaged file.
    """
    recorded = state.get("checksums")
    if not isinstance(recorded, dict) or not {CONFIG, WEIGHTS} <= set(recorded):
        raise ValueError(
            f"{path / STATE} records no checksums of {CONFIG} and {WEIGHTS}; "
            "it was not written by Estimator.save"
        )
    root = path.resolve()
    for name, digest in recorded.items():
        file = (path / name).resolve()
        if root not in file.parents:
            raise ValueError(f"{path / STATE} lists {name!r}, outside the checkpoint")
        if not file.is_file():
            raise ValueError(
                f"{path / name} is missing (it is listed in {path / STATE})"
            )
        if _sha256(file) != digest:
            raise ValueError(
                f"{path / name} is damaged: its SHA-256 differs from the one "
                f"recorded in {path / STATE} when it was saved (a truncated, "
                "corrupted or edited file)"
            )


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write(file: Path, data: bytes) -> None:
    """Create ``file`` (it must not exist) holding ``data``, flushed to disk, mode 0644."""
    with open(file, "xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    file.chmod(0o644)  # whatever the umask


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _settle(staging: Path) -> None:
    """Modes 0644 / 0755 and fsync for everything under ``staging`` (files a subclass wrote included)."""
    for item in sorted(staging.rglob("*"), reverse=True):  # children before parents
        if item.is_file():
            item.chmod(0o644)
            with open(item, "rb") as handle:
                os.fsync(handle.fileno())
        elif item.is_dir():
            item.chmod(0o755)
            _fsync_dir(item)
    staging.chmod(0o755)
    _fsync_dir(staging)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange):
        code = ctypes.get_errno()
        if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            return False  # a file system without exchange: see _swap_in
        raise OSError(code, os.strerror(code), str(b))
    return True


def _swap_in(staging: Path, path: Path) -> None:
    """Put the complete directory ``staging`` at ``path``, replacing what is there.

    A new path is one rename. An existing one is exchanged with ``staging`` in
    one step, so ``path`` holds the whole old or the whole new checkpoint at
    every instant, and the old one is then deleted. Where the file system
    cannot exchange, the old one is renamed aside first (for an instant
    ``path`` is missing; :meth:`Estimator.load` then names the copy aside) and
    put back if the second rename fails.
    """
    parent = path.parent
    if not path.exists():
        os.rename(staging, path)
    elif _exchange(staging, path):
        # the new checkpoint is in place: a copy of the old one left behind
        # is only a hidden directory to delete, not a failed save
        shutil.rmtree(staging, ignore_errors=True)
    else:
        retired = staging.with_name(staging.name + ".old")
        os.rename(path, retired)
        try:
            os.rename(staging, path)
        except BaseException:
            os.rename(retired, path)
            raise
        shutil.rmtree(retired, ignore_errors=True)
    _fsync_dir(parent)


def _interrupted_hint(path: Path) -> str:
    """Where a save interrupted between its two renames left the previous checkpoint, if it did."""
    aside = sorted(path.parent.glob(f".{path.name}.*.old"))
    aside = [p for p in aside if (p / STATE).is_file()]
    if not aside:
        return ""
    return (
        f"; a save to it was interrupted, and the previous checkpoint is whole "
        f"in {aside[-1]}: rename it to {path.name}"
    )


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

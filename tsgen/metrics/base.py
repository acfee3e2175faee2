"""What the generation metrics share: input checks, seeding, and the repeat-k-times result."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass

import numpy as np

from ..runtime import progress as progress_bar
from ..runtime import resolve_device, seeded


@dataclass(frozen=True)
class MetricResult:
    """One metric over ``k`` repeats: mean, sample standard deviation and the single values.

    It unpacks like a pair, ``mean, std = discriminative_score(real, fake)``.
    ``std`` is the sample standard deviation (ddof=1) of the repeats, 0.0 for a
    single repeat; ``ci95`` is the half-width of the 95 % Student-t interval
    of the mean, the "±" that Diffusion-TS reports.
    """

    name: str
    values: tuple[float, ...]
    seconds: float  # wall time of all repeats together

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else 0.0

    @property
    def ci95(self) -> float:
        from scipy import stats

        k = len(self.values)
        return (
            float(stats.t.ppf(0.975, k - 1) * self.std / math.sqrt(k)) if k > 1 else 0.0
        )

    def __iter__(self):
        return iter((self.mean, self.std))

    def __str__(self) -> str:
        return (
            f"{self.name}: {self.mean:.4f} ± {self.std:.4f} "
            f"(std over {len(self.values)} repeats)"
        )


def check_series(x, name: str) -> np.ndarray:
    """A complete batch of series ``[n, length, features]`` as float32: no NaN, no inf."""
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 3:
        raise ValueError(
            f"{name} must be 3-D [n_samples, length, features]; "
            f"got a {arr.ndim}-D array of shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if np.isnan(arr).any():
        raise ValueError(
            f"{name} holds {int(np.isnan(arr).sum())} NaN value(s): generation "
            "metrics need complete series (impute or drop incomplete windows first)"
        )
    if np.isinf(arr).any():
        raise ValueError(f"{name} holds {int(np.isinf(arr).sum())} infinite value(s)")
    return arr.astype(np.float32)


def check_pair(
    real, fake, min_samples: int = 2, min_length: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Check real and generated batches one by one, then against each other."""
    real, fake = check_series(real, "real"), check_series(fake, "fake")
    if real.shape[2] != fake.shape[2]:
        raise ValueError(
            f"real has {real.shape[2]} features but fake has {fake.shape[2]}"
        )
    if real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"real series have length {real.shape[1]} "
            f"but fake series have length {fake.shape[1]}"
        )
    if real.shape[1] < min_length:
        raise ValueError(
            f"series must have at least {min_length} time steps; got {real.shape[1]}"
        )
    for name, arr in (("real", real), ("fake", fake)):
        if arr.shape[0] < min_samples:
            raise ValueError(
                f"{name} needs at least {min_samples} series; got {arr.shape[0]}"
            )
    return real, fake


def check_count(value, name: str, minimum: int = 1) -> int:
    """A whole number ``>= minimum`` as an int (``2.0`` is 2; ``2.5``, ``True`` and ``"2"`` are errors)."""
    whole = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )
    if not whole or not float(value).is_integer() or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


@contextlib.contextmanager
def single_thread(device: str):
    """One CPU thread inside the block (no effect on GPU work).

    The metric models are tiny and sequential (a GRU with 2 hidden units);
    intra-op threads only add synchronisation, and on a busy 2-core machine
    torch's default threading made them 10 to 70 times slower (measured).
    """
    import torch

    if device != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def repeat(name: str, run_once, repeats: int, seed: int, device: str) -> MetricResult:
    """Call ``run_once(seed, device)`` with seeds ``seed, seed + 1, ...`` and collect a result."""
    repeats = check_count(repeats, "repeats")
    device = resolve_device(device)
    start = time.perf_counter()
    values = []
    for r in range(repeats):
        with seeded(seed + r, device), single_thread(device):
            value = float(run_once(seed + r, device))
        if not math.isfinite(value):
            raise ValueError(f"{name}: repeat {r} gave a non-finite value {value}")
        values.append(value)
    return MetricResult(name, tuple(values), time.perf_counter() - start)


def batch_indices(rng: np.random.Generator, n: int, batch_size: int) -> np.ndarray:
    """A mini-batch as TimeGAN draws it: the first ``batch_size`` of a fresh permutation."""
    return rng.permutation(n)[: min(batch_size, n)]


def steps(n: int, desc: str, progress: bool):
    """``range(n)``, with a tqdm bar (at most one update per 5 s) when ``progress``."""
    return progress_bar(range(n), enabled=progress, desc=desc)

"""Context-FID (Jeha et al., ICLR 2022; Diffusion-TS, Yuan & Qiao 2024).

The Fréchet distance between Gaussians fitted to TS2Vec representations of the
real and the generated series, the encoder being trained on the real series
only. Like FID for images, but the "inception network" is learned per data
set. Lower is better; a set against itself scores 0. Each repeat trains a new
encoder (Diffusion-TS reports mean ± interval over 5 such runs).
"""

from __future__ import annotations

import time

import numpy as np
from scipy import linalg

from .base import MetricResult, check_count, check_pair, check_series, repeat
from .ts2vec import TS2Vec, TS2VecConfig


def frechet_distance(a, b) -> float:
    """Fréchet distance between Gaussians fitted to feature rows ``a`` ``[n, d]`` and ``b`` ``[m, d]``.

    ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``, with the matrix
    square root from :func:`scipy.linalg.sqrtm`; a tiny imaginary part from
    round-off is dropped.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    for name, arr in (("a", a), ("b", b)):
        if arr.ndim != 2 or arr.shape[0] < 2:
            raise ValueError(
                f"{name} must be 2-D [n >= 2, dims]; got shape {arr.shape}"
            )
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} holds NaN or infinite values")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a has {a.shape[1]} dimensions but b has {b.shape[1]}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = (
        np.atleast_2d(np.cov(a, rowvar=False)),
        np.atleast_2d(np.cov(b, rowvar=False)),
    )
    covmean = linalg.sqrtm(cov_a @ cov_b)
    covmean = np.real(covmean)
    distance = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * covmean)
    return max(float(distance), 0.0)  # round-off can push an exact 0 slightly negative


class ContextFID:
    """TS2Vec encoders trained on ``real`` (one per repeat), to score any number of generated sets.

    ``ContextFID(real, ...)(fake)`` equals ``context_fid(real, fake, ...)``; build
    it once to compare several generators against the same real data at the
    cost of one set of encoder trainings.
    """

    def __init__(
        self,
        real,
        seed: int = 0,
        device: str = "cpu",
        iterations: int | None = None,
        repeats: int = 5,
        output_dims: int = 320,
        progress: bool = False,
    ):
        real = check_series(real, "real")
        if real.shape[0] < 2:
            raise ValueError(f"real needs at least 2 series; got {real.shape[0]}")
        self.real = real
        repeats = check_count(repeats, "repeats")
        self.encoders = []
        self.real_codes = []

        def train(s, d):
            config = TS2VecConfig(
                input_dims=real.shape[2],
                output_dims=output_dims,
                iterations=iterations,
                seed=s,
            )
            encoder = TS2Vec(config, device=d).fit(real, progress=progress)
            self.encoders.append(encoder)
            self.real_codes.append(encoder.encode(real))
            return encoder.history[-1]["loss"]

        # the repeat machinery times each training (and checks its loss is finite)
        self.training = repeat(
            "TS2Vec last-epoch training loss", train, repeats, seed, device
        )

    def __call__(self, fake) -> MetricResult:
        _, fake = check_pair(self.real, fake)
        start = time.perf_counter()
        values = tuple(
            frechet_distance(codes, encoder.encode(fake))
            for encoder, codes in zip(self.encoders, self.real_codes, strict=True)
        )
        # the cost of the metric from scratch: the encoder trainings plus this scoring
        return MetricResult(
            "context-FID", values, self.training.seconds + time.perf_counter() - start
        )


def context_fid(
    real,
    fake,
    seed: int = 0,
    device: str = "cpu",
    iterations: int | None = None,
    repeats: int = 5,
    output_dims: int = 320,
    progress: bool = False,
) -> MetricResult:
    """Context-FID of ``fake`` against ``real`` (lower is better), over ``repeats`` encoder trainings.

    ``iterations=None`` is TS2Vec's reference budget (200 or 600 steps, see
    :func:`tsgen.metrics.ts2vec.default_iterations`), which is what the
    published protocol uses.
    """
    check_pair(real, fake)
    return ContextFID(real, seed, device, iterations, repeats, output_dims, progress)(
        fake
    )

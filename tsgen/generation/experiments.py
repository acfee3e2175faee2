"""The protocols of the generation chapters, as functions that return one table each.

* Chapter 6 (the delay embedding): :func:`delay_embedding_table`,
  :func:`round_trip_errors`, :func:`inverse_comparison`, :func:`transform_timings`.
* Chapter 7 (ImagenI2R on the benchmarks): :func:`generation_grid`, one row per
  length x data set x missing rate, built from :func:`benchmark_windows` and
  scored by :func:`generation_scores` under a :class:`MetricProtocol`;
  :func:`projections` for the PCA and t-SNE pictures.
* Chapter 8 (what each part is worth): :func:`generation_ablations`, one row
  per variant of :data:`ABLATIONS` x training seed.

Departure from the paper's released code: there, time steps are removed from
the whole series before it is cut into windows; here they are removed from
each window independently (``add_missingness(windows, "timestep", rate)``),
so every window has the same share of missing steps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
import torch

from .. import runtime
from ..config import JSONConfig, non_negative_int, positive_int
from ..data import add_missingness, make_sines, timegan_windows
from ..metrics import (
    ContextFID,
    correlation_score,
    discriminative_score,
    predictive_score,
)
from .config import DELAY_EMBEDDINGS, GenerationConfig
from .delay import DelayEmbedder, ts_to_img_loop
from .model import ImagenI2R

METRICS = ("discriminative", "predictive", "context_fid", "correlation")
DATASETS = ("sines", "stock", "energy")

# name: (what changes in the config, how the trained model samples). Variants
# with the same config change share one trained model per seed, so the
# sampling variants isolate the sampling choice exactly.
ABLATIONS = {
    "ImagenI2R": ({}, {}),
    "unmasked loss": ({"masked": False}, {}),
    "zero fill": ({"completion": "zero"}, {}),
    "linear interpolation": ({"completion": "linear"}, {}),
    "first-pixel inverse": ({}, {"inverse": "first"}),
    "EMA off": ({}, {"use_ema": False}),
}


# ------------------------------------------------------------------ chapter 6
def delay_embedding_table(
    presets: dict[int, tuple[int, int]] = DELAY_EMBEDDINGS,
) -> pd.DataFrame:
    """One row per window length: the delay embedding's columns, image size and copies of each step."""
    rows = []
    for length, (delay, embedding) in presets.items():
        embedder = DelayEmbedder(length, delay, embedding)
        used = len(embedder.valid_pixels)
        rows.append(
            {
                "length": length,
                "delay": delay,
                "embedding": embedding,
                "columns": embedder.columns,
                "partial_column_steps": min(
                    length - (embedder.columns - 1) * delay, embedding
                ),
                "image_size": embedder.size,
                "used_pixels": used,
                "copies_per_step": used / length,
            }
        )
    return pd.DataFrame(rows)


def round_trip_errors(
    n_random: int = 20, seed: int = 0, presets: dict = DELAY_EMBEDDINGS
) -> pd.DataFrame:
    """``img_to_ts(ts_to_img(x)) - x`` for the presets and ``n_random`` random (length, delay, embedding).

    One row per configuration: the largest error of each inverse and whether
    the vectorised image equals the reference loop's bit for bit.
    """
    rng = runtime.numpy_rng(seed)
    cases = [(length, *presets[length]) for length in presets]
    for _ in range(n_random):
        length = int(rng.integers(2, 200))
        embedding = int(rng.integers(1, length + 1))
        cases.append((length, int(rng.integers(1, embedding + 1)), embedding))
    rows = []
    for length, delay, embedding in cases:
        embedder = DelayEmbedder(length, delay, embedding)
        x = torch.rand(8, length, 3, generator=runtime.torch_generator(seed))
        image = embedder.ts_to_img(x)
        rows.append(
            {
                "length": length,
                "delay": delay,
                "embedding": embedding,
                "same_as_loop": torch.equal(
                    image, ts_to_img_loop(x, length, delay, embedding)
                ),
                **{
                    f"error_{inverse}": (embedder.img_to_ts(image, inverse) - x)
                    .abs()
                    .max()
                    .item()
                    for inverse in ("average", "first")
                },
            }
        )
    return pd.DataFrame(rows)


def inverse_comparison(
    noise_levels=(0.05, 0.1, 0.2), length: int = 24, n_windows: int = 512, seed: int = 0
) -> pd.DataFrame:
    """RMSE of the first-pixel and the averaging inverse on images of sine windows with Gaussian pixel noise.

    One row per noise level; ``expected_ratio`` is ``sqrt(mean(1/k))`` over
    the ``k`` copies of each step, the ratio of the two RMSEs for independent
    pixel errors.
    """
    embedder = DelayEmbedder(length, *DELAY_EMBEDDINGS[length])
    clean = torch.tensor(
        make_sines(n_windows, length=length, n_features=5, seed=seed),
        dtype=torch.float32,
    )
    images = embedder.ts_to_img(clean)
    generator = runtime.torch_generator(seed)
    expected = float(np.sqrt(np.mean(1 / embedder.counts.double().numpy())))
    rows = []
    for level in noise_levels:
        noisy = images + level * torch.randn(images.shape, generator=generator)
        rmse = {
            inverse: (embedder.img_to_ts(noisy, inverse) - clean)
            .pow(2)
            .mean()
            .sqrt()
            .item()
            for inverse in ("first", "average")
        }
        rows.append(
            {
                "pixel_noise": level,
                "rmse_first": rmse["first"],
                "rmse_average": rmse["average"],
                "ratio": rmse["average"] / rmse["first"],
                "expected_ratio": expected,
            }
        )
    return pd.DataFrame(rows)


def _timed(fn) -> tuple[object, float]:
    """``fn()`` and its wall-clock seconds."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def _fit_new(config: GenerationConfig, device, windows, progress: bool) -> ImagenI2R:
    """A new ImagenI2R of ``config`` trained on ``windows`` (timed as one step)."""
    return ImagenI2R(config, device).fit(windows, progress=progress)


def _best_time(fn, repeats: int) -> tuple[float, object]:
    """The shortest of ``repeats`` timings of ``fn()`` (the least disturbed by other work), and its result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        # the previous result is freed here, so each run reuses its memory
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def transform_timings(
    n_windows: int = 256,
    n_features: int = 6,
    repeats: int = 5,
    seed: int = 0,
    presets: dict = DELAY_EMBEDDINGS,
) -> pd.DataFrame:
    """Best-of-``repeats`` time of ``ts_to_img`` (index tensors) and of the reference loop, per preset length."""
    rows = []
    for length, (delay, embedding) in presets.items():
        x = torch.rand(
            n_windows, length, n_features, generator=runtime.torch_generator(seed)
        )
        embedder = DelayEmbedder(length, delay, embedding)
        embedder.ts_to_img(x)  # warm-up: the index tensors reach the device once
        vectorised, image = _best_time(partial(embedder.ts_to_img, x), repeats)
        loop, looped = _best_time(
            partial(ts_to_img_loop, x, length, delay, embedding), repeats
        )
        if not torch.equal(image, looped):
            raise AssertionError(
                f"ts_to_img differs from the reference loop at length {length}"
            )
        rows.append(
            {
                "length": length,
                "vectorised_ms": 1e3 * vectorised,
                "loop_ms": 1e3 * loop,
                "ratio": loop / vectorised,
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------- chapters 7-8
def benchmark_windows(
    name: str, length: int = 24, n_windows: int = 0, seed: int = 0
) -> np.ndarray:
    """Complete windows ``[n, length, features]`` in [0, 1] of a generation benchmark.

    ``sines``: ``make_sines`` with five channels (10,000 windows when
    ``n_windows`` is 0); ``stock`` / ``energy``: the TimeGAN windows (stride 1,
    scaled over the whole series). ``n_windows > 0`` keeps a random subset,
    in time order.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {DATASETS}")
    if name == "sines":
        windows = make_sines(n_windows or 10000, length=length, n_features=5, seed=seed)
    else:
        windows = timegan_windows(name, length)[0]
    if n_windows > len(windows):
        raise ValueError(
            f"{name} has {len(windows)} windows of "
            f"length {length}; asked for {n_windows}"
        )
    keep = runtime.numpy_rng(seed).permutation(len(windows))[
        : n_windows or len(windows)
    ]
    return windows[np.sort(keep)].astype(np.float32)


@dataclass
class MetricProtocol(JSONConfig):
    """How the four generation metrics are run; the defaults are the published protocols."""

    disc_iterations: int = 2000  # discriminative classifier steps
    pred_iterations: int = 5000  # predictive model steps
    # TS2Vec steps for context-FID; 0: TS2Vec's reference budget
    ts2vec_iterations: int = 0
    repeats: int = 5  # runs of each metric (mean and std over them)

    def __post_init__(self):
        positive_int(self, "disc_iterations", "pred_iterations", "repeats")
        non_negative_int(self, "ts2vec_iterations")

    def context_fid(self, real, seed: int = 0, device: str = "cpu") -> ContextFID:
        """Context-FID encoders trained on ``real``, to score several generated sets."""
        return ContextFID(
            real,
            seed=seed,
            device=device,
            iterations=self.ts2vec_iterations or None,
            repeats=self.repeats,
        )


def generation_scores(
    real,
    fake,
    protocol: MetricProtocol | None = None,
    seed: int = 0,
    device: str = "cpu",
    context: ContextFID | None = None,
) -> dict:
    """``{metric: MetricResult}`` for ``fake`` against the complete ``real`` windows.

    ``protocol`` defaults to the published one. Pass a ``context`` built on
    ``real`` (:meth:`MetricProtocol.context_fid`) to reuse its TS2Vec encoders
    across several generated sets.
    """
    protocol = protocol or MetricProtocol()
    context = context or protocol.context_fid(real, seed, device)
    return {
        "discriminative": discriminative_score(
            real,
            fake,
            seed=seed,
            device=device,
            iterations=protocol.disc_iterations,
            repeats=protocol.repeats,
        ),
        "predictive": predictive_score(
            real,
            fake,
            seed=seed,
            device=device,
            iterations=protocol.pred_iterations,
            repeats=protocol.repeats,
        ),
        "context_fid": context(fake),
        "correlation": correlation_score(
            real, fake, seed=seed, repeats=protocol.repeats
        ),
    }


def score_columns(scores: dict) -> dict:
    """Flatten ``{metric: MetricResult}`` to ``{metric: mean, metric_std: std}`` columns."""
    row = {}
    for name, (mean, std) in scores.items():
        row[name], row[f"{name}_std"] = float(mean), float(std)
    return row


def generation_grid(
    datasets=DATASETS,
    missing_rates=(0.3, 0.5, 0.7),
    lengths=(24,),
    *,
    n_windows: int = 0,
    paper: bool = False,
    overrides: dict | None = None,
    protocol: MetricProtocol | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
    samples: dict | None = None,
) -> pd.DataFrame:
    """Train ImagenI2R on every length x data set x missing rate, sample, and score against the complete windows.

    Each condition: ``n_windows`` benchmark windows (:func:`benchmark_windows`),
    whole time steps removed from each window at the rate, a model of
    ``GenerationConfig.build(length, features, paper, seed=seed, **overrides)``
    fitted on them, as many windows sampled as there are real ones (final EMA
    weights: no checkpoint selection, where the released code kept the epoch
    with the best discriminative score on the test windows), and the four
    metrics of ``protocol`` (published by default). The context-FID encoders are
    trained once per length and data set and score every rate.

    Returns one row per condition: ``length``, ``dataset``, ``missing``, each
    metric's mean and ``<metric>_std``, ``fit_seconds`` and ``sample_seconds``.
    When ``samples`` is a dict it receives, for each ``(length, dataset)``,
    ``{"real": windows, "generated": {rate: windows}}`` for plots.
    """
    protocol = protocol or MetricProtocol()
    conditions = [(length, name) for length in lengths for name in datasets]
    rows = []
    for length, name in runtime.progress(
        conditions, enabled=progress, desc="generation grid"
    ):
        real = benchmark_windows(name, length, n_windows, seed)
        context = protocol.context_fid(real, seed, device)
        config = GenerationConfig.build(
            length, real.shape[2], paper, **{"seed": seed, **(overrides or {})}
        )
        generated = {}
        for rate in missing_rates:
            irregular = add_missingness(real, "timestep", rate, seed=seed)
            model, fit_seconds = _timed(
                partial(_fit_new, config, device, irregular, progress)
            )
            generated[rate], sample_seconds = _timed(partial(model.sample, len(real)))
            scores = generation_scores(
                real, generated[rate], protocol, seed, device, context
            )
            rows.append(
                {
                    "length": length,
                    "dataset": name,
                    "missing": rate,
                    **score_columns(scores),
                    "fit_seconds": fit_seconds,
                    "sample_seconds": sample_seconds,
                }
            )
        if samples is not None:
            samples[length, name] = {"real": real, "generated": generated}
    return pd.DataFrame(rows)


def projections(
    real: np.ndarray, generated: np.ndarray, seed: int = 0, max_windows: int = 1000
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The generation literature's picture: 2-D projections of real and generated windows.

    Every window is flattened to one vector; at most ``max_windows`` of each
    set are used (a random subset of the real windows, the first generated
    ones). ``"pca"`` is fitted on the real windows only, ``"t-SNE"`` on both
    together. Returns ``{name: (real points, generated points)}``, each
    ``[n, 2]``.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    shown = min(len(real), len(generated), int(max_windows))
    pick = runtime.numpy_rng(seed).permutation(len(real))[:shown]
    r = np.asarray(real)[pick].reshape(shown, -1)
    f = np.asarray(generated)[:shown].reshape(shown, -1)
    pca = PCA(2, random_state=seed).fit(r)
    tsne = TSNE(
        2, perplexity=min(30, shown // 4), init="pca", random_state=seed
    ).fit_transform(np.vstack([r, f]))
    return {
        "PCA": (pca.transform(r), pca.transform(f)),
        "t-SNE": (tsne[:shown], tsne[shown:]),
    }


def generation_ablations(
    dataset: str = "stock",
    missing_rate: float = 0.5,
    length: int = 24,
    seeds=(0, 1),
    *,
    variants=None,
    n_windows: int = 0,
    paper: bool = False,
    overrides: dict | None = None,
    protocol: MetricProtocol | None = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = False,
) -> pd.DataFrame:
    """Each variant of :data:`ABLATIONS` (all when ``variants`` is None), trained and scored once per training seed.

    The data (``n_windows`` windows of ``dataset``, whole time steps removed at
    ``missing_rate``) is drawn once from ``seed``; each training seed ``s``
    seeds the model (``config.seed = s``), its sampler and the metrics, and
    the context-FID encoders it shares across variants. Variants that differ
    only in sampling share the model of their seed.

    Returns one row per variant x seed (seeds in the order given, variants in
    the order of ``variants`` within a seed): ``variant``, ``seed``, each
    metric's mean and ``<metric>_std`` (over the protocol's repeats),
    ``fit_seconds`` (of the variant's model) and ``sample_seconds``.
    """
    variants = list(ABLATIONS) if variants is None else list(variants)
    unknown = [v for v in variants if v not in ABLATIONS]
    if unknown:
        raise ValueError(
            f"unknown ablation(s) {unknown}; choose from {list(ABLATIONS)}"
        )
    protocol = protocol or MetricProtocol()
    real = benchmark_windows(dataset, length, n_windows, seed)
    irregular = add_missingness(real, "timestep", missing_rate, seed=seed)
    # one trained model per config change: {variant: sampling options}
    models: dict[tuple, dict[str, dict]] = {}
    for name in variants:
        change, options = ABLATIONS[name]
        models.setdefault(tuple(sorted(change.items())), {})[name] = options
    rows = []
    for s in runtime.progress(list(seeds), enabled=progress, desc="ablation seeds"):
        context = protocol.context_fid(real, s, device)
        for change, sampling in models.items():
            settings = {**(overrides or {}), **dict(change), "seed": s}
            config = GenerationConfig.build(length, real.shape[2], paper, **settings)
            model, fit_seconds = _timed(
                partial(_fit_new, config, device, irregular, progress)
            )
            for name, options in sampling.items():
                fake, sample_seconds = _timed(
                    partial(model.sample, len(real), **options)
                )
                scores = generation_scores(real, fake, protocol, s, device, context)
                rows.append(
                    {
                        "variant": name,
                        "seed": s,
                        **score_columns(scores),
                        "fit_seconds": fit_seconds,
                        "sample_seconds": sample_seconds,
                    }
                )
    order = {name: i for i, name in enumerate(variants)}
    rows.sort(key=lambda row: (list(seeds).index(row["seed"]), order[row["variant"]]))
    return pd.DataFrame(rows)

"""Delay embedding: a time series as a square image, and back (ImagenTime, Naiman et al. 2024).

Column ``c`` of the image holds the ``embedding`` time steps that start at
``c * delay``: pixel ``(row r, column c)`` is time step ``c * delay + r``. The
columns continue while a whole column fits; if time steps remain, one last
*partial* column starts one delay later and holds them (its lower rows are
padding). The ``embedding x columns`` array is padded to a square.

With ``delay < embedding`` a time step appears in several pixels. The inverse
averages every pixel that maps to a time step (``inverse="average"``) or reads
the first one (``inverse="first"``, the pixel in the leftmost column). The
average is taken over deviations from the first pixel, so an image made by
:meth:`DelayEmbedder.ts_to_img` gives back its series bit for bit.

How it runs at memory speed: write step ``t = k * delay + j`` at ``[j, k]`` of
a ``[delay, blocks]`` array (the *folded* series, one per window and feature).
Row ``r = a * delay + j`` of the image is then the contiguous slice
``folded[j, a : a + columns]``, so the ``delay`` rows ``a * delay ...`` form
one block ``folded[:, a : a + columns]``: the transform is
``ceil(embedding / delay)`` block copies, and the average the same number of
block additions (in the same order as a sum over the pixels row by row). The
first pixel of every step is in column 0 (steps below ``embedding - delay``)
or in the last ``delay`` rows. Only slicing, ``copy_`` and elementwise
arithmetic: the same code runs on any device, with autograd.

:func:`ts_to_img_loop` (the released code's loop) and :func:`average_by_fold`
(``torch.nn.functional.fold``) are references for the tests and
:func:`transform_speed`.
"""

from __future__ import annotations

import time
from functools import partial

import pandas as pd
import torch
import torch.nn.functional as F

from .. import runtime
from ..config import integer
from .config import DELAY_EMBEDDINGS

INVERSES = ("average", "first")


class DelayEmbedder:
    """Maps windows ``[batch, length, features]`` to images ``[batch, features, size, size]`` and back."""

    def __init__(self, length: int, delay: int, embedding: int):
        """Each argument a positive integer (``24.9`` or ``"24"`` is an error, never truncated)."""
        length = integer(length, "DelayEmbedder length")
        delay = integer(delay, "DelayEmbedder delay")
        embedding = integer(embedding, "DelayEmbedder embedding")
        if embedding > length:
            raise ValueError(f"embedding ({embedding}) cannot exceed length ({length})")
        if delay > embedding:
            raise ValueError(
                f"delay ({delay}) > embedding ({embedding}) would skip time steps"
            )
        self.length, self.delay, self.embedding = length, delay, embedding
        starts = list(range(0, length - embedding + 1, delay))
        if starts[-1] + embedding < length:  # the partial last column
            starts.append(starts[-1] + delay)
        self.columns = len(starts)
        self.size = max(embedding, self.columns)
        # image rows a * delay ... a * delay + delay - 1 come from folded[:, a + c]
        self.row_blocks = [
            (row, min(row + delay, embedding)) for row in range(0, embedding, delay)
        ]
        self.blocks = self.columns - 1 + len(self.row_blocks)
        # the pixel map (for inspection, tests and the copy counts)
        rows = torch.arange(self.size).view(-1, 1)
        start = torch.full((self.size,), length)  # padding columns
        start[: self.columns] = torch.tensor(starts)
        time_step = start.view(1, -1) + rows
        valid = (rows < embedding) & (time_step < length)
        # time step of every pixel (row-major); `length` marks a padding pixel
        self.pixel_time = torch.where(valid, time_step, length).flatten()
        self.valid_pixels = valid.flatten().nonzero().squeeze(1)
        self.counts = torch.bincount(
            self.pixel_time[self.valid_pixels], minlength=length
        )
        # copies per step, folded; the steps past the end (never read) get 1
        self._folded_counts = (
            F.pad(self.counts, (0, self.blocks * delay - length), value=1)
            .view(self.blocks, delay)
            .T.contiguous()
        )
        self._on_device: dict = {}

    @property
    def image_shape(self) -> tuple[int, int]:
        return self.size, self.size

    def _counts(self, like: torch.Tensor) -> torch.Tensor:
        """The folded copy counts in ``like``'s dtype and device, converted once."""
        key = (like.dtype, str(like.device))
        if key not in self._on_device:
            self._on_device[key] = self._folded_counts.to(like.device, like.dtype)
        return self._on_device[key]

    def _check_series(self, x: torch.Tensor) -> None:
        if x.ndim != 3 or x.shape[1] != self.length:
            raise ValueError(
                f"expected series [batch, {self.length}, "
                f"features]; got shape {tuple(x.shape)}"
            )

    def _fold(self, x: torch.Tensor, pad_value: float) -> torch.Tensor:
        """``[batch, length, features]`` -> ``[batch, features, delay, blocks]``, padded."""
        batch, _, features = x.shape
        padded = F.pad(
            x, (0, 0, 0, self.blocks * self.delay - self.length), value=pad_value
        )
        return (
            padded.reshape(batch, self.blocks, self.delay, features)
            .permute(0, 3, 2, 1)
            .contiguous()
        )

    def _unfold(self, folded: torch.Tensor) -> torch.Tensor:
        """``[batch, features, delay, blocks]`` -> ``[batch, length, features]`` (contiguous)."""
        batch, features = folded.shape[:2]
        whole, rest = divmod(self.length, self.delay)
        series = folded.new_empty(batch, self.length, features)
        series[:, : whole * self.delay].view(batch, whole, self.delay, features).copy_(
            folded[..., :whole].permute(0, 3, 2, 1)
        )
        if rest:
            series[:, whole * self.delay :].copy_(
                folded[:, :, :rest, whole].transpose(1, 2)
            )
        return series

    def ts_to_img(self, x: torch.Tensor, pad_value: float = 0.0) -> torch.Tensor:
        """``[batch, length, features]`` -> ``[batch, features, size, size]``; padding pixels get ``pad_value``."""
        self._check_series(x)
        folded = self._fold(x, pad_value)
        columns, embedding = self.columns, self.embedding
        img = x.new_empty(x.shape[0], x.shape[2], self.size, self.size)
        for a, (top, bottom) in enumerate(self.row_blocks):
            img[:, :, top:bottom, :columns].copy_(
                folded[:, :, : bottom - top, a : a + columns]
            )
        if columns < self.size:
            img[:, :, :embedding, columns:].fill_(pad_value)
        if embedding < self.size:
            img[:, :, embedding:].fill_(pad_value)
        return img

    def _first_folded(self, img: torch.Tensor) -> torch.Tensor:
        """The first (leftmost) pixel of every step, folded: ``[batch, features, delay, blocks]``."""
        delay, columns = self.delay, self.columns
        first = img.new_empty(*img.shape[:2], delay, self.blocks)
        # steps below embedding - delay: rows of column 0
        head = self.embedding - delay
        whole, rest = divmod(head, delay)
        first[..., :whole].copy_(
            img[:, :, : whole * delay, 0].unflatten(-1, (whole, delay)).transpose(2, 3)
        )
        if rest:
            first[:, :, :rest, whole].copy_(img[:, :, whole * delay : head, 0])
        # the others: row r of the last delay rows holds steps r + c * delay
        for top in sorted({head, (self.embedding - 1) // delay * delay}):
            a, bottom = top // delay, min((top // delay + 1) * delay, self.embedding)
            j = top - a * delay
            first[:, :, j : j + bottom - top, a : a + columns].copy_(
                img[:, :, top:bottom, :columns]
            )
        return first

    def _first_series(self, img: torch.Tensor) -> torch.Tensor:
        """The first (leftmost) pixel of every step: ``[batch, length, features]``."""
        batch, features = img.shape[:2]
        head = self.embedding - self.delay
        series = img.new_empty(batch, self.length, features)
        series[:, :head].copy_(img[:, :, :head, 0].transpose(1, 2))
        # step head + c * delay + i is pixel (head + i, c)
        whole, rest = divmod(self.length - head, self.delay)
        end = head + whole * self.delay
        series[:, head:end].view(batch, whole, self.delay, features).copy_(
            img[:, :, head : self.embedding, :whole].permute(0, 3, 2, 1)
        )
        if rest:
            series[:, end:].copy_(img[:, :, head : head + rest, whole].transpose(1, 2))
        return series

    def img_to_ts(self, img: torch.Tensor, inverse: str = "average") -> torch.Tensor:
        """``[batch, features, size, size]`` -> ``[batch, length, features]`` (contiguous)."""
        if img.ndim != 4 or tuple(img.shape[2:]) != self.image_shape:
            raise ValueError(
                f"expected images [batch, features, {self.size}, "
                f"{self.size}]; got shape {tuple(img.shape)}"
            )
        if inverse not in INVERSES:
            raise ValueError(f"unknown inverse {inverse!r}; choose one of {INVERSES}")
        if inverse == "first":
            return self._first_series(img)
        first = self._first_folded(img)
        # average the deviations from the first pixel:
        # equal pixels give back exactly that value
        columns = self.columns
        sums = torch.zeros_like(first)
        for a, (top, bottom) in enumerate(self.row_blocks):
            rows = bottom - top
            sums[:, :, :rows, a : a + columns].add_(
                img[:, :, top:bottom, :columns] - first[:, :, :rows, a : a + columns]
            )
        return self._unfold(sums.div_(self._counts(sums)).add_(first))


def ts_to_img_loop(
    x: torch.Tensor, length: int, delay: int, embedding: int, pad_value: float = 0.0
) -> torch.Tensor:
    """The same transform written as a loop over columns and rows: a reference for tests and timing."""
    columns = []
    start = 0
    while True:
        column = torch.full(
            (x.shape[0], embedding, x.shape[2]), pad_value, dtype=x.dtype
        )
        for row in range(embedding):
            if start + row < length:
                column[:, row] = x[:, start + row]
        columns.append(column)
        if start + embedding >= length:
            break
        start += delay
    size = max(embedding, len(columns))
    img = torch.full((x.shape[0], x.shape[2], size, size), pad_value, dtype=x.dtype)
    for c, column in enumerate(columns):
        img[:, :, :embedding, c] = column.transpose(1, 2)
    return img


def average_by_fold(embedder: DelayEmbedder, img: torch.Tensor) -> torch.Tensor:
    """The averaging inverse with ``torch.nn.functional.fold``: a reference for tests and timing.

    The image columns are the sliding blocks of a one-row "image" of the padded
    series, so ``fold`` sums the copies of each step; dividing by the counts
    gives the mean. It sums the pixels themselves, not their deviations from
    the first one, so it agrees with :meth:`DelayEmbedder.img_to_ts` only to
    rounding (the round trip is not bit-exact).
    """
    e = embedder
    batch, features = img.shape[:2]
    blocks = img[:, :, : e.embedding, : e.columns].reshape(
        batch, features * e.embedding, e.columns
    )
    padded_length = (e.columns - 1) * e.delay + e.embedding
    sums = F.fold(
        blocks, (1, padded_length), (1, e.embedding), stride=(1, e.delay)
    ).view(batch, features, padded_length)[..., : e.length]
    return (sums / e.counts.to(img.device, img.dtype)).transpose(1, 2)


def _clock(device: str) -> tuple[str, object]:
    """The clock for a timing, and its name.

    On the CPU with one torch thread, the calling thread's CPU time: every
    kernel runs in that thread, and time spent descheduled by other work on a
    shared machine does not count. Otherwise wall-clock time, waiting first
    for the device's queued work.
    """
    if device.startswith("cuda"):
        return "wall clock", lambda: (
            torch.cuda.synchronize(device),
            time.perf_counter(),
        )[1]
    if torch.get_num_threads() == 1:
        return "thread CPU time", time.thread_time
    return "wall clock", time.perf_counter


def transform_speed(
    batch: int = 128,
    n_features: int = 6,
    presets: dict = DELAY_EMBEDDINGS,
    repeats: int = 5,
    seed: int = 0,
    device: str = "cpu",
    baseline: type | None = None,
) -> pd.DataFrame:
    """Milliseconds of each transform per preset length, and its ratio to a plain image copy.

    For every ``length: (delay, embedding)`` in ``presets`` and a batch of
    random windows: ``image copy`` (``img.clone()``, the memory-speed floor),
    ``ts_to_img``, ``img_to_ts average``, ``img_to_ts first``, the released
    code's loop (:func:`ts_to_img_loop`, on the CPU copy of the batch) and
    ``F.fold average`` (:func:`average_by_fold`); with ``baseline`` (another
    ``DelayEmbedder`` class, e.g. an older version) its three transforms too.
    Each operation runs ``repeats`` times, all operations in turn in each
    round (so a change of load hits them alike), and the fastest run counts.
    Every result is checked against the references first. Returns columns
    ``length``, ``operation``, ``ms``, ``per_copy`` (``ms`` over the copy's);
    ``attrs["clock"]`` names the clock (:func:`_clock`: the thread's CPU time
    on the CPU with one torch thread, else wall clock). The caller sets the
    CPU threads (``torch.set_num_threads``).
    """
    batch = integer(batch, "batch")
    n_features = integer(n_features, "n_features")
    repeats = integer(repeats, "repeats")
    device = runtime.resolve_device(device)
    clock_name, clock = _clock(device)
    rows = []
    for length, (delay, embedding) in presets.items():
        operations = _operations(
            DelayEmbedder(length, delay, embedding),
            batch,
            n_features,
            seed,
            device,
            baseline,
        )
        best = dict.fromkeys(operations, float("inf"))
        for _ in range(repeats):
            for name, operation in operations.items():
                start = clock()
                operation()
                best[name] = min(best[name], clock() - start)
        rows += [
            {
                "length": length,
                "operation": name,
                "ms": 1e3 * seconds,
                "per_copy": seconds / best["image copy"],
            }
            for name, seconds in best.items()
        ]
    timings = pd.DataFrame(rows)
    timings.attrs["clock"] = clock_name
    return timings


def _operations(
    embedder: DelayEmbedder,
    batch: int,
    n_features: int,
    seed: int,
    device: str,
    baseline: type | None,
) -> dict:
    """The timed calls of :func:`transform_speed` for one embedder, each checked (and so warmed up) once."""
    e = embedder
    x = torch.rand(batch, e.length, n_features, generator=runtime.torch_generator(seed))
    img = ts_to_img_loop(x, e.length, e.delay, e.embedding)
    # a generated image: the copies of a step disagree a little
    noisy = img + 0.01 * torch.randn(
        img.shape, generator=runtime.torch_generator(runtime.derive_seed(seed, 1))
    )
    cpu_x, x, img, noisy = x, x.to(device), img.to(device), noisy.to(device)
    operations = {
        "image copy": img.clone,
        "ts_to_img": partial(e.ts_to_img, x),
        "img_to_ts average": partial(e.img_to_ts, noisy),
        "img_to_ts first": partial(e.img_to_ts, noisy, "first"),
        "loop (released code)": partial(
            ts_to_img_loop, cpu_x, e.length, e.delay, e.embedding
        ),
        "F.fold average": partial(average_by_fold, e, noisy),
    }
    average = operations["img_to_ts average"]()
    checks = {
        "ts_to_img": torch.equal(operations["ts_to_img"](), img),
        "round trip": torch.equal(e.img_to_ts(img), x)
        and torch.equal(e.img_to_ts(img, "first"), x),
        "F.fold average": torch.allclose(
            operations["F.fold average"](), average, atol=1e-5
        ),
    }
    if baseline is not None:
        old = baseline(e.length, e.delay, e.embedding)
        operations |= {
            "baseline ts_to_img": partial(old.ts_to_img, x),
            "baseline img_to_ts average": partial(old.img_to_ts, noisy),
            "baseline img_to_ts first": partial(old.img_to_ts, noisy, "first"),
        }
        checks["baseline"] = (
            torch.equal(operations["baseline ts_to_img"](), img)
            and torch.allclose(
                operations["baseline img_to_ts average"](), average, atol=1e-6
            )
            and torch.equal(
                operations["baseline img_to_ts first"](),
                operations["img_to_ts first"](),
            )
        )
    failed = [name for name, passed in checks.items() if not passed]
    if failed:
        raise AssertionError(
            f"delay embedding of length {e.length}: {failed} differ from the reference"
        )
    return operations

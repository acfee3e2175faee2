"""Delay embedding: a time series as a square image, and back (ImagenTime, Naiman et al. 2024).

Column ``c`` of the image holds the ``embedding`` time steps that start at
``c * delay``: pixel ``(row r, column c)`` is time step ``c * delay + r``. The
columns continue while a whole column fits; if time steps remain, one last
*partial* column starts one delay later and holds them (its lower rows are
padding). The ``embedding x columns`` array is padded to a square.

With ``delay < embedding`` a time step appears in several pixels. The inverse
averages every pixel that maps to a time step (``inverse="average"``) or reads
the first one (``inverse="first"``, the pixel in the leftmost column). The
mapping is computed once, as index tensors: both directions are one gather
(plus one ``index_add_`` for the average), with no Python loop at run time.
The average is taken over deviations from the first pixel, so an image made
by :meth:`DelayEmbedder.ts_to_img` gives back its series bit for bit.
"""

from __future__ import annotations

import torch

from ..config import integer

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
        rows = torch.arange(self.size).view(-1, 1)
        # columns past the last one are padding
        start = torch.full((self.size,), length)
        start[: self.columns] = torch.tensor(starts)
        time = start.view(1, -1) + rows
        valid = (rows < embedding) & (time < length)
        # time step of every pixel (row-major); `length` marks a padding pixel
        self.pixel_time = torch.where(valid, time, length).flatten()
        self.valid_pixels = valid.flatten().nonzero().squeeze(1)
        self.valid_times = self.pixel_time[self.valid_pixels]
        self.counts = torch.bincount(self.valid_times, minlength=length)
        # leftmost column first: order pixels by
        # (column, row) and keep the first per time step
        column_major = (
            torch.arange(self.size).view(1, -1) * self.size + rows
        ).flatten()
        first_key = torch.full((length,), self.size * self.size).scatter_reduce(
            0, self.valid_times, column_major[self.valid_pixels], "amin"
        )
        self.first_pixel = (first_key % self.size) * self.size + first_key // self.size
        self._on_device: dict = {}

    def _index(self, name: str, device: torch.device) -> torch.Tensor:
        """An index tensor on ``device``, copied there once."""
        key = (name, str(device))
        if key not in self._on_device:
            self._on_device[key] = getattr(self, name).to(device)
        return self._on_device[key]

    @property
    def image_shape(self) -> tuple[int, int]:
        return self.size, self.size

    def _check_series(self, x: torch.Tensor) -> None:
        if x.ndim != 3 or x.shape[1] != self.length:
            raise ValueError(
                f"expected series [batch, {self.length}, "
                f"features]; got shape {tuple(x.shape)}"
            )

    def ts_to_img(self, x: torch.Tensor, pad_value: float = 0.0) -> torch.Tensor:
        """``[batch, length, features]`` -> ``[batch, features, size, size]``; padding pixels get ``pad_value``."""
        self._check_series(x)
        batch, _, features = x.shape
        pad = torch.full(
            (batch, 1, features), pad_value, dtype=x.dtype, device=x.device
        )
        # gather whole time steps (all features at once), then put the features first
        pixels = torch.index_select(
            torch.cat([x, pad], dim=1), 1, self._index("pixel_time", x.device)
        )
        return (
            pixels.permute(0, 2, 1)
            .contiguous()
            .view(batch, features, self.size, self.size)
        )

    def img_to_ts(self, img: torch.Tensor, inverse: str = "average") -> torch.Tensor:
        """``[batch, features, size, size]`` -> ``[batch, length, features]``."""
        if img.ndim != 4 or tuple(img.shape[2:]) != self.image_shape:
            raise ValueError(
                f"expected images [batch, features, {self.size}, "
                f"{self.size}]; got shape {tuple(img.shape)}"
            )
        if inverse not in INVERSES:
            raise ValueError(f"unknown inverse {inverse!r}; choose one of {INVERSES}")
        flat = img.flatten(2)
        first = flat[..., self._index("first_pixel", img.device)]
        if inverse == "first":
            return first.transpose(1, 2)
        # average the deviations from the first pixel:
        # equal pixels give back exactly that value
        times = self._index("valid_times", img.device)
        deviations = (
            flat[..., self._index("valid_pixels", img.device)] - first[..., times]
        )
        sums = torch.zeros_like(first).index_add_(2, times, deviations)
        series = first + sums / self._index("counts", img.device).to(img.dtype)
        return series.transpose(1, 2)


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

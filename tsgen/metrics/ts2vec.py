"""TS2Vec (Yue et al., AAAI 2022): the encoder behind context-FID.

Written from the paper and the facts of its reference implementation that the
context-FID protocol (Jeha et al. 2022, Diffusion-TS) depends on:

* encoder: a linear input projection to 64 channels, a random *timestamp mask*
  in training (each time step's latent kept with probability 0.5), ten residual
  blocks of two dilated convolutions (kernel 3, dilation 1, 2, 4, ..., GELU
  before each convolution), a last block to 320 output channels, dropout 0.1;
* training pairs: two overlapping random crops of each series, encoded
  separately; the loss compares the representations of the overlapping time
  steps (*contextual consistency*);
* hierarchical contrastive loss: instance-wise (other series of the batch are
  the negatives) plus temporal (other time steps of the series are the
  negatives), averaged over levels obtained by max-pooling time by 2;
* AdamW, learning rate 1e-3, batch 8, 200 iterations when the training data
  hold at most 100,000 values and 600 otherwise; representations come from a
  stochastic-weight-averaged copy of the encoder;
* a *full-series* representation is the max over time of the per-step ones.

Here series come complete (no NaN) and shorter than 3,000 steps, so the
reference code's handling of missing steps and of long series is not needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import (
    JSONConfig,
    integer,
    non_negative_int,
    positive,
    positive_int,
    probability,
)
from ..estimator import Estimator, TrainingLog, load_modules, module_tensors
from ..runtime import numpy_rng, seeded
from .base import check_series, single_thread, steps


@dataclass
class TS2VecConfig(JSONConfig):
    """TS2Vec's encoder and training settings; the defaults are the reference implementation's.

    ``iterations=None`` is the reference budget (:func:`default_iterations` of
    the training data); ``seed`` fixes the initial weights, the crops and the masks.
    """

    input_dims: int
    output_dims: int = 320
    hidden_dims: int = 64
    depth: int = 10
    lr: float = 1e-3
    batch_size: int = 8
    mask_prob: float = 0.5  # probability that a time step's latent is kept in training
    dropout: float = 0.1
    iterations: int | None = None
    seed: int = 0

    def __post_init__(self):
        positive_int(self, "input_dims", "output_dims", "hidden_dims", "batch_size")
        non_negative_int(self, "depth", "seed")
        positive(self, "lr")
        probability(self, "mask_prob", high_open=False)
        probability(self, "dropout", low_open=False)
        if self.iterations is not None:
            positive_int(self, "iterations")


def default_iterations(n_values: int) -> int:
    """The reference implementation's budget: 200 iterations up to 100,000 values, else 600."""
    return 200 if n_values <= 100_000 else 600


class SamePadConv(nn.Module):
    """A dilated convolution (kernel 3) whose output is as long as its input.

    With a dilation at least as long as the series, both outer taps only ever
    see the zero padding, so the convolution is its centre tap alone; computing
    it that way gives the same result without convolving hundreds of zeros
    (the last blocks have dilations up to 1,024 for series of 24 steps).
    """

    def __init__(self, c_in: int, c_out: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, 3, padding=dilation, dilation=dilation)

    def forward(self, x):
        if self.conv.dilation[0] >= x.shape[2]:
            return F.conv1d(x, self.conv.weight[:, :, 1:2], self.conv.bias)
        return self.conv(x)


class ConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, dilation: int, final: bool):
        super().__init__()
        self.conv1 = SamePadConv(c_in, c_out, dilation)
        self.conv2 = SamePadConv(c_out, c_out, dilation)
        self.projector = nn.Conv1d(c_in, c_out, 1) if c_in != c_out or final else None

    def forward(self, x):
        residual = x if self.projector is None else self.projector(x)
        x = self.conv1(F.gelu(x))
        x = self.conv2(F.gelu(x))
        return x + residual


class TS2VecEncoder(nn.Module):
    """``[batch, time, features]`` -> per-step representations ``[batch, time, output_dims]``."""

    def __init__(self, config: TS2VecConfig):
        super().__init__()
        self.config = config
        channels = [config.hidden_dims] * config.depth + [config.output_dims]
        self.input_fc = nn.Linear(config.input_dims, config.hidden_dims)
        c_in = config.hidden_dims
        blocks = []
        for i, c_out in enumerate(channels):
            blocks.append(
                ConvBlock(c_in, c_out, dilation=2**i, final=i == len(channels) - 1)
            )
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: bool = False) -> torch.Tensor:
        h = self.input_fc(x)
        if mask:  # timestamp masking: an augmentation, training only
            keep = torch.rand(h.shape[:2], device=h.device) < self.config.mask_prob
            h = h * keep.unsqueeze(-1)
        h = self.blocks(h.transpose(1, 2))
        return self.dropout(h).transpose(1, 2)


def _contrast(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """InfoNCE over dimension 1 of ``[groups, n, C]`` pairs: z1[:, i] should match z2[:, i].

    Each of the 2n items is scored against the 2n - 1 others of its group.
    """
    n = z1.shape[1]
    if n == 1:
        return z1.new_zeros(())
    z = torch.cat([z1, z2], dim=1)
    sim = z @ z.transpose(1, 2)
    # drop the diagonal (self-similarity): 2n x (2n - 1) logits
    logits = (
        torch.tril(sim, diagonal=-1)[:, :, :-1] + torch.triu(sim, diagonal=1)[:, :, 1:]
    )
    logp = -F.log_softmax(logits, dim=-1)
    i = torch.arange(n, device=z.device)
    # the partner of item i is column n + i - 1
    # (diagonal removed), of item n + i it is column i
    return (logp[:, i, n + i - 1].mean() + logp[:, n + i, i].mean()) / 2


def hierarchical_contrastive_loss(
    z1: torch.Tensor, z2: torch.Tensor, alpha: float = 0.5
) -> torch.Tensor:
    """TS2Vec's loss for two views ``[batch, time, C]`` of the same time steps."""
    loss, levels = z1.new_zeros(()), 0
    while z1.shape[1] > 1:
        # instance-wise, per step
        loss = loss + alpha * _contrast(z1.transpose(0, 1), z2.transpose(0, 1))
        loss = loss + (1 - alpha) * _contrast(z1, z2)  # temporal, per series
        levels += 1
        z1 = F.max_pool1d(z1.transpose(1, 2), kernel_size=2).transpose(1, 2)
        z2 = F.max_pool1d(z2.transpose(1, 2), kernel_size=2).transpose(1, 2)
    if z1.shape[1] == 1:
        loss = loss + alpha * _contrast(z1.transpose(0, 1), z2.transpose(0, 1))
        levels += 1
    return loss / levels


def _crop_views(
    x: torch.Tensor, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Two random crops of each series that overlap in ``crop_len`` steps, at a per-series offset."""
    batch, length = x.shape[:2]
    crop_len = int(rng.integers(2, length + 1))
    left = int(rng.integers(0, length - crop_len + 1))
    right = left + crop_len
    ext_left = int(rng.integers(0, left + 1))
    ext_right = int(rng.integers(right, length + 1))
    offset = torch.as_tensor(
        rng.integers(-ext_left, length - ext_right + 1, size=batch), device=x.device
    )

    def take(start: torch.Tensor, size: int) -> torch.Tensor:
        idx = start[:, None] + torch.arange(size, device=x.device)[None, :]
        return x[torch.arange(batch, device=x.device)[:, None], idx]

    view1 = take(offset + ext_left, right - ext_left)
    view2 = take(offset + left, ext_right - left)
    return view1, view2, crop_len


class TS2Vec(Estimator):
    """Fit a TS2Vec encoder on complete series and encode series to vectors.

    ``history`` holds one row per epoch (a pass over the training series, the
    last incomplete batch dropped as in the reference code; a last, partial
    epoch when the budget ends mid-pass): the mean training ``loss`` and the
    ``iterations`` done so far. A second ``fit`` trains the current weights further.
    """

    config_class = TS2VecConfig

    def __init__(self, config: TS2VecConfig, device: str = "cpu"):
        super().__init__(config, device)
        with seeded(config.seed, self.device):
            self.net = TS2VecEncoder(config).to(self.device)
        # the reference implementation counts the initial weights in the average
        self.averaged = torch.optim.swa_utils.AveragedModel(self.net)
        self.averaged.update_parameters(self.net)
        self.iterations_done = 0  # training steps done, over all calls to fit

    def _check_input(self, x) -> np.ndarray:
        x = check_series(x, "x")
        if x.shape[2] != self.config.input_dims:
            raise ValueError(
                f"x has {x.shape[2]} features; the "
                f"encoder expects {self.config.input_dims}"
            )
        return x

    def fit(self, x, *, progress: bool = False, logging_dir=None) -> TS2Vec:
        """Train on ``x`` ``[n, length, features]`` for ``config.iterations`` steps (None: the reference budget)."""
        x = self._check_input(x)
        if x.shape[1] < 2:
            raise ValueError("TS2Vec needs series of at least 2 time steps")
        iterations = self.config.iterations or default_iterations(x.size)
        rng = numpy_rng(self.config.seed)
        data = torch.as_tensor(x, device=self.device)
        batch = min(self.config.batch_size, len(data))
        optimizer = torch.optim.AdamW(self.net.parameters(), lr=self.config.lr)
        self.net.train()
        order, pos, losses = rng.permutation(len(data)), 0, []
        with (
            seeded(self.config.seed, self.device),
            single_thread(self.device),
            TrainingLog(self.history, logging_dir) as log,
        ):
            for _ in steps(iterations, "TS2Vec", progress):
                # a new epoch, dropping the last incomplete batch
                if pos + batch > len(data):
                    log(
                        len(self.history) + 1,
                        loss=np.mean(losses),
                        iterations=self.iterations_done,
                    )
                    order, pos, losses = rng.permutation(len(data)), 0, []
                view1, view2, crop_len = _crop_views(
                    data[order[pos : pos + batch]], rng
                )
                pos += batch
                out1 = self.net(view1, mask=True)[:, -crop_len:]
                out2 = self.net(view2, mask=True)[:, :crop_len]
                loss = hierarchical_contrastive_loss(out1, out2)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                self.averaged.update_parameters(self.net)
                losses.append(loss.item())
                if not np.isfinite(losses[-1]):
                    raise ValueError(
                        f"TS2Vec training diverged: the loss is {losses[-1]} at "
                        f"iteration {self.iterations_done + 1}; lower "
                        f"lr={self.config.lr:g} or scale x"
                    )
                self.iterations_done += 1
            log(
                len(self.history) + 1,
                loss=np.mean(losses),
                iterations=self.iterations_done,
            )
        return self

    @torch.no_grad()
    def encode(self, x, batch_size: int = 256) -> np.ndarray:
        """Full-series representations ``[n, output_dims]``: the max over time of each step's.

        ``batch_size`` is a positive integer; a non-finite representation
        (series far outside the training scale) is an error, not a NaN.
        """
        if self.iterations_done == 0:
            raise RuntimeError(
                "this TS2Vec encoder is not trained: "
                "call fit(x) first (or TS2Vec.load(path))"
            )
        batch_size = integer(batch_size, "batch_size")
        x = self._check_input(x)
        model = self.averaged.module
        model.eval()
        with single_thread(self.device):
            out = [
                model(c).amax(dim=1).cpu()
                for c in torch.as_tensor(x, device=self.device).split(batch_size)
            ]
        codes = torch.cat(out).numpy().astype(np.float64)
        if not np.isfinite(codes).all():
            raise ValueError(
                "TS2Vec's representations are not finite: x is far outside the "
                "scale the encoder was trained on"
            )
        return codes

    # checkpoint hooks: the training network and its weight average (what encode uses)
    def _modules(self) -> dict[str, nn.Module]:
        return {"net": self.net, "averaged": self.averaged}

    def _tensors(self) -> dict[str, torch.Tensor]:
        return module_tensors(self._modules())

    def _load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        load_modules(tensors, self._modules())

    def _state(self) -> dict:
        return {"iterations_done": self.iterations_done}

    def _restore(self, state: dict) -> None:
        self.iterations_done = int(state["iterations_done"])

"""Predictive score: train on synthetic, test on real (TSTR), one step ahead.

TimeGAN's ``metrics/predictive_metrics.py`` predicts the *last* feature from
the others; the irregular-generation paper (Fadlon et al. 2025, after
ImagenTime/KoVAE) predicts *all* features of the next step from all features
of the current and earlier steps, which also works for a single feature. We
follow that variant with TimeGAN's settings:

* a one-layer GRU with ``max(1, features // 2)`` hidden units, a linear layer
  and a sigmoid per time step (the data are scaled to [0, 1]);
* 5,000 Adam steps (learning rate 1e-3) of batch 128 on the *generated* series,
  L1 loss between the prediction of steps 1..T-1 and the series itself;
* score = mean absolute error of the trained model on *all* real series.

Lower is better; the floor is the error of a model trained on real data.
(The irregular-generation paper's released code ran this for 2 iterations.)
"""

from __future__ import annotations

import torch
from torch import nn

from ..runtime import numpy_rng
from .base import MetricResult, batch_indices, check_count, check_pair, repeat, steps

ITERATIONS = 5000
BATCH_SIZE = 128


class GRUPredictor(nn.Module):
    """A GRU over time with a sigmoid read-out of all features at every step."""

    def __init__(self, n_features: int, hidden: int):
        super().__init__()
        self.gru = nn.GRU(n_features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)
        return torch.sigmoid(self.head(out))


def _score_once(
    real, fake, seed, device, iterations, batch_size, lr, progress
) -> float:
    rng = numpy_rng(seed)
    train = torch.as_tensor(fake, device=device)
    features = real.shape[2]
    model = GRUPredictor(features, max(1, features // 2)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in steps(iterations, "predictive", progress):
        x = train[batch_indices(rng, len(train), batch_size)]
        loss = torch.mean(torch.abs(model(x[:, :-1]) - x[:, 1:]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    test = torch.as_tensor(real, device=device)
    with torch.no_grad():
        errors = [
            torch.mean(torch.abs(model(x[:, :-1]) - x[:, 1:])).item() * len(x)
            for x in test.split(1024)
        ]
    return sum(errors) / len(test)


def predictive_score(
    real,
    fake,
    seed: int = 0,
    device: str = "cpu",
    iterations: int = ITERATIONS,
    batch_size: int = BATCH_SIZE,
    repeats: int = 5,
    lr: float = 1e-3,
    progress: bool = False,
) -> MetricResult:
    """Train-on-synthetic-test-on-real one-step MAE of ``fake`` against ``real`` (lower is better).

    Arrays are ``[n, length, features]`` with ``length >= 2``; each repeat
    trains a new predictor from ``seed + r``. The defaults are the protocol.
    """
    real, fake = check_pair(real, fake, min_samples=1, min_length=2)
    iterations = check_count(iterations, "iterations")
    batch_size = check_count(batch_size, "batch_size")
    return repeat(
        "predictive score",
        lambda s, d: _score_once(
            real, fake, s, d, iterations, batch_size, lr, progress
        ),
        repeats,
        seed,
        device,
    )

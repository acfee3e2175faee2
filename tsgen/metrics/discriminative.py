"""Discriminative score (TimeGAN, Yoon et al. 2019): can a small classifier tell real from generated?

Protocol of the TimeGAN reference code (``metrics/discriminative_metrics.py``):

* each set is split 80 / 20 into train and test, independently;
* a one-layer GRU with ``max(1, features // 2)`` hidden units reads a series,
  its last hidden state goes through a linear layer to one logit;
* 2,000 Adam steps (learning rate 1e-3), each on 128 real and 128 generated
  training series, binary cross-entropy (real = 1);
* score = |0.5 − accuracy| on the held-out real and generated series together.

0 means the classifier does no better than chance; 0.5 means it separates the
sets perfectly. TimeGAN's hidden size is ``int(features / 2)``, which is 0 for a
single feature; ``max(1, ...)`` keeps that case usable.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..runtime import numpy_rng
from .base import MetricResult, batch_indices, check_count, check_pair, repeat, steps

ITERATIONS = 2000
BATCH_SIZE = 128
TRAIN_FRACTION = 0.8


class GRUClassifier(nn.Module):
    """A GRU over time, its last hidden state mapped to one logit."""

    def __init__(self, n_features: int, hidden: int):
        super().__init__()
        self.gru = nn.GRU(n_features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, last = self.gru(x)
        return self.head(last[-1]).squeeze(-1)


def _split(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    perm = rng.permutation(n)
    cut = int(n * TRAIN_FRACTION)
    return perm[:cut], perm[cut:]


def _score_once(
    real, fake, seed, device, iterations, batch_size, lr, progress
) -> float:
    rng = numpy_rng(seed)
    real_train, real_test = _split(len(real), rng)
    fake_train, fake_test = _split(len(fake), rng)
    r_train = torch.as_tensor(real[real_train], device=device)
    f_train = torch.as_tensor(fake[fake_train], device=device)
    features = real.shape[2]
    model = GRUClassifier(features, max(1, features // 2)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    for _ in steps(iterations, "discriminative", progress):
        x_r = r_train[batch_indices(rng, len(r_train), batch_size)]
        x_f = f_train[batch_indices(rng, len(f_train), batch_size)]
        logits = model(torch.cat([x_r, x_f]))
        labels = torch.cat(
            [torch.ones(len(x_r), device=device), torch.zeros(len(x_f), device=device)]
        )
        loss = loss_fn(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        correct_real = (
            (model(torch.as_tensor(real[real_test], device=device)) > 0).sum().item()
        )
        correct_fake = (
            (model(torch.as_tensor(fake[fake_test], device=device)) <= 0).sum().item()
        )
    accuracy = (correct_real + correct_fake) / (len(real_test) + len(fake_test))
    return abs(0.5 - accuracy)


def discriminative_score(
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
    """TimeGAN's discriminative score of ``fake`` against ``real`` (lower is better), over ``repeats`` runs.

    ``real`` and ``fake`` are complete arrays ``[n, length, features]`` (their
    ``n`` may differ); each repeat draws a new split and a new classifier from
    ``seed + r``. The defaults are the published protocol.
    """
    real, fake = check_pair(real, fake, min_samples=5)
    iterations = check_count(iterations, "iterations")
    batch_size = check_count(batch_size, "batch_size")
    return repeat(
        "discriminative score",
        lambda s, d: _score_once(
            real, fake, s, d, iterations, batch_size, lr, progress
        ),
        repeats,
        seed,
        device,
    )

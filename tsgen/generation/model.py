"""``ImagenI2R``: regular time series generated from irregular ones (Fadlon et al., NeurIPS 2025).

Config (:class:`~tsgen.generation.config.GenerationConfig`) -> core modules
(:class:`~tsgen.generation.completion.TSTCompleter`, the U-Net in an
:class:`~tsgen.generation.edm.EDMDenoiser`) -> this estimator with ``fit`` /
``sample`` / ``predict`` / ``save`` / ``load``.

Training has two phases. Phase 1 pre-trains the completer on the observed
entries. Phase 2 trains the diffusion model on delay-embedded images of the
completed windows (observed values kept, missing ones from the completer),
noising and scoring only the observed pixels, and keeps refining the completer
with one reconstruction step per batch.

Padding pixels (the square image's unused corner) count as **observed zeros**:
they are noised and scored like data, so the U-Net learns to leave them at 0
— the same as regular ImagenTime — and sampling, which starts from noise on
every pixel, sees no pixel whose training distribution it never met. The
inverse transform ignores them.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

with warnings.catch_warnings():  # tqdm.auto warns once when ipywidgets is missing; it then prints plain text
    warnings.simplefilter("ignore")
    from tqdm.auto import tqdm

from ..runtime import resolve_device
from ..data.scaling import MinMaxScaler
from ..data.validation import as_float_array
from .completion import TSTCompleter, linear_fill, zero_fill
from .config import GenerationConfig
from .delay import DelayEmbedder
from .edm import EDMDenoiser, heun_sampler, make_ema, make_unet, masked_edm_loss

FORMAT_VERSION = 1
WEIGHTS, STATE = "weights.safetensors", "state.json"


def epoch_seed(seed: int, epoch: int) -> int:
    """Every epoch starts from its own seed, so a run resumed at an epoch boundary repeats exactly."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


class ImagenI2R:
    """TST completion + delay embedding + masked EDM diffusion.

    ``fit`` takes windows ``[n, length, features]`` with NaN for missing values
    (or PyPOTS' dict with ``"X"``); ``sample(n)`` returns ``n`` complete windows
    in the units of the training data.
    """

    def __init__(self, config: GenerationConfig, device: str = "cpu"):
        self.config = config
        self.device = resolve_device(device)
        self.embedder = DelayEmbedder(config.length, config.delay, config.embedding)
        with torch.random.fork_rng(devices=[]):  # seeded initial weights, the caller's RNG left alone
            torch.manual_seed(config.seed)
            self.denoiser = EDMDenoiser(make_unet(config), config.sigma_data).to(self.device)
            self.completer = TSTCompleter.from_config(config).to(self.device) if config.completion == "tst" else None
        self.ema = make_ema(self.denoiser, config.ema_decay, config.ema_warmup)
        self.optimizer = torch.optim.AdamW(self.denoiser.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.completer_optimizer = (
            torch.optim.AdamW(self.completer.parameters(), lr=config.tst_lr, weight_decay=config.weight_decay)
            if self.completer is not None else None
        )
        self.scaler: MinMaxScaler | None = None
        self.epoch = 0  # epochs done, phase 1 and phase 2 together
        self.history: list[dict] = []

    # ----------------------------------------------------------------- data
    @property
    def total_epochs(self) -> int:
        return self.pretrain_epochs + self.config.epochs

    @property
    def pretrain_epochs(self) -> int:
        return self.config.tst_epochs if self.completer is not None else 0

    def _windows(self, X) -> np.ndarray:
        x = as_float_array(X["X"] if isinstance(X, dict) else X, "X", ndim=3)
        expected = (self.config.length, self.config.n_features)
        if x.shape[1:] != expected:
            raise ValueError(f"expected windows [n, {expected[0]}, {expected[1]}] (length, features of the config); "
                             f"got shape {x.shape}")
        return x

    def _complete(self, x: torch.Tensor) -> torch.Tensor:
        """The completed windows in [0, 1] that the diffusion model learns from."""
        if self.config.completion == "zero":
            return zero_fill(x)
        if self.config.completion == "linear":
            return linear_fill(x)
        with torch.no_grad():
            return self.completer.complete(x)

    # ---------------------------------------------------------------- train
    def fit(self, X, epochs: int | None = None, progress: bool = False) -> "ImagenI2R":
        """Train (or resume training) on irregular windows; ``epochs`` caps the epochs run by this call.

        Each epoch reseeds torch's global RNG from ``(config.seed, epoch)`` (shuffling,
        noise, dropout), which is what makes a resumed run identical to an uninterrupted one.
        """
        x = self._windows(X)
        if self.scaler is None:
            self.scaler = MinMaxScaler().fit(x)
        data = torch.as_tensor(self.scaler.transform(x), dtype=torch.float32)
        stop = self.total_epochs if epochs is None else min(self.total_epochs, self.epoch + int(epochs))
        bar = tqdm(range(self.epoch, stop), desc="ImagenI2R", mininterval=5.0, disable=not progress)
        for epoch in bar:
            torch.manual_seed(epoch_seed(self.config.seed, epoch))
            order = torch.randperm(len(data))
            losses = {"tst": [], "diffusion": []}
            for batch in data[order].split(self.config.batch_size):
                batch = batch.to(self.device)
                if epoch >= self.pretrain_epochs:
                    losses["diffusion"].append(self._diffusion_step(batch))
                if self.completer is not None:
                    losses["tst"].append(self._completer_step(batch))
            self.epoch = epoch + 1
            self.history.append({"epoch": self.epoch, **{k: float(np.mean(v)) for k, v in losses.items() if v}})
            bar.set_postfix({k: f"{v:.4f}" for k, v in self.history[-1].items() if k != "epoch"})
        return self

    def _completer_step(self, batch: torch.Tensor) -> float:
        self.completer.train()
        loss = self.completer.loss(batch)
        self.completer_optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.completer.parameters(), self.config.grad_clip)
        self.completer_optimizer.step()
        return loss.item()

    def _diffusion_step(self, batch: torch.Tensor) -> float:
        self.denoiser.train()
        images = self.embedder.ts_to_img(self._complete(batch) * 2 - 1)  # pixels in [-1, 1]
        if self.config.masked:
            observed = self.embedder.ts_to_img((~torch.isnan(batch)).float(), pad_value=1.0)
        else:
            observed = torch.ones_like(images)
        loss = masked_edm_loss(self.denoiser, images, observed, self.config.p_mean, self.config.p_std)
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.denoiser.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.ema.update_parameters(self.denoiser)
        return loss.item()

    # ------------------------------------------------------------- generate
    def _check_fitted(self):
        if self.scaler is None:
            raise RuntimeError("the model is not fitted: call fit() first")

    def sample(self, n: int, seed: int | None = None, inverse: str = "average", use_ema: bool = True,
               batch_size: int = 512, s_churn: float | None = None, steps: int | None = None) -> np.ndarray:
        """``n`` generated windows ``[n, length, features]`` in the units of the training data."""
        self._check_fitted()
        if int(n) < 1:
            raise ValueError(f"n must be a positive number of samples; got {n}")
        network = self.ema.module if use_ema else self.denoiser
        network.eval()
        generator = torch.Generator().manual_seed(self.config.seed if seed is None else int(seed))
        shape = (self.config.n_features, *self.embedder.image_shape)
        out = []
        for size in [batch_size] * (int(n) // batch_size) + [int(n) % batch_size]:
            if size == 0:
                continue
            images = heun_sampler(network, (size, *shape), steps or self.config.sampling_steps,
                                  self.config.sigma_min, self.config.sigma_max, self.config.rho,
                                  self.config.s_churn if s_churn is None else s_churn,
                                  generator=generator, device=self.device)
            out.append(self.embedder.img_to_ts(images, inverse).cpu())
        scaled = ((torch.cat(out) + 1) / 2).clamp(0, 1).numpy()
        return self.scaler.inverse_transform(scaled)

    def predict(self, X) -> np.ndarray:
        """The completion the diffusion model is trained on: observed values kept, missing ones filled."""
        self._check_fitted()
        x = torch.as_tensor(self.scaler.transform(self._windows(X)), dtype=torch.float32, device=self.device)
        if self.completer is not None:
            self.completer.eval()
        return self.scaler.inverse_transform(self._complete(x).cpu().numpy())

    # ----------------------------------------------------------- checkpoint
    def _modules(self) -> dict:
        modules = {"denoiser": self.denoiser, "ema": self.ema}
        if self.completer is not None:
            modules["completer"] = self.completer
        return modules

    def _optimizers(self) -> dict:
        optimizers = {"optimizer": self.optimizer}
        if self.completer_optimizer is not None:
            optimizers["completer_optimizer"] = self.completer_optimizer
        return optimizers

    def save(self, path: str | Path) -> Path:
        """Weights and optimizer moments in ``weights.safetensors``; config, scaler, epoch in ``state.json``."""
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tensors, groups = {}, {}
        for name, module in self._modules().items():
            tensors.update({f"{name}.{k}": v for k, v in module.state_dict().items()})
        for name, optimizer in self._optimizers().items():
            state = optimizer.state_dict()
            for index, moments in state["state"].items():
                tensors.update({f"{name}.state.{index}.{k}": v for k, v in moments.items()})
            groups[name] = state["param_groups"]
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path / WEIGHTS))
        state = {"format": FORMAT_VERSION, "config": self.config.to_dict(), "epoch": self.epoch,
                 "history": self.history, "scaler": self.scaler.to_dict(), "param_groups": groups}
        (path / STATE).write_text(json.dumps(state, indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "ImagenI2R":
        path = Path(path)
        if not (path / WEIGHTS).exists() or not (path / STATE).exists():
            raise ValueError(f"{path} is not an ImagenI2R checkpoint (needs {WEIGHTS} and {STATE})")
        state = json.loads((path / STATE).read_text())
        if state.get("format") != FORMAT_VERSION:
            raise ValueError(f"checkpoint format {state.get('format')!r} is not {FORMAT_VERSION}")
        model = cls(GenerationConfig.from_dict(state["config"]), device)
        tensors = load_file(str(path / WEIGHTS), device=model.device)
        for name, module in model._modules().items():
            prefix = f"{name}."
            module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
        for name, optimizer in model._optimizers().items():
            prefix = f"{name}.state."
            moments: dict[int, dict] = {}
            for key, value in tensors.items():
                if key.startswith(prefix):
                    index, moment = key[len(prefix):].split(".", 1)
                    moments.setdefault(int(index), {})[moment] = value
            groups = [{**g, "betas": tuple(g["betas"])} for g in state["param_groups"][name]]
            optimizer.load_state_dict({"state": moments, "param_groups": groups})
        model.scaler = MinMaxScaler.from_dict(state["scaler"])
        model.epoch, model.history = int(state["epoch"]), list(state["history"])
        return model

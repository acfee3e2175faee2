"""``ImagenI2R``: regular time series generated from irregular ones (Fadlon et al., NeurIPS 2025).

Config (:class:`~tsgen.generation.config.GenerationConfig`) -> networks
(:class:`~tsgen.generation.core.TSTCompleter`, the U-Net in an
:class:`~tsgen.generation.edm.EDMDenoiser`) -> this estimator with ``fit`` /
``sample`` / ``predict``, saved and loaded through :class:`~tsgen.estimator.Estimator`.

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

import numpy as np
import torch

from .. import runtime
from ..config import integer, number
from ..data.scaling import MinMaxScaler
from ..data.validation import as_float_array
from ..estimator import Estimator, TrainingLog, load_modules, module_tensors
from .config import GenerationConfig
from .core import TSTCompleter, linear_fill, zero_fill
from .delay import DelayEmbedder
from .edm import EDMDenoiser, heun_sampler, make_ema, make_unet, masked_edm_loss

# pixels denoised at a time by default (ImagenI2R.sample): 512 images of 16 x 16
SAMPLING_PIXELS = 512 * 256


class ImagenI2R(Estimator):
    """TST completion + delay embedding + masked EDM diffusion.

    ``fit`` takes windows ``[n, length, features]`` with NaN for missing values
    (or PyPOTS' dict with ``"X"``); ``sample(n)`` returns ``n`` complete windows
    in the units of the training data. The checkpoint holds the weights, the
    EMA and both optimizers' moments (``weights.safetensors``) and the epoch,
    scaler and optimizer settings (``state.json``), so a run saved at an epoch
    boundary resumes to exactly the weights of an uninterrupted one.
    """

    config_class = GenerationConfig

    def __init__(self, config: GenerationConfig, device: str | None = "cpu"):
        super().__init__(config, device)
        self.embedder = DelayEmbedder(config.length, config.delay, config.embedding)
        # seeded initial weights, the caller's RNG left alone
        with runtime.seeded(config.seed, self.device):
            self.denoiser = EDMDenoiser(make_unet(config), config.sigma_data).to(
                self.device
            )
            self.completer = (
                TSTCompleter.from_config(config).to(self.device)
                if config.completion == "tst"
                else None
            )
        self.ema = make_ema(
            self.denoiser, config.ema_decay, config.ema_warmup, config.ema_copy_steps
        )
        self.optimizer = torch.optim.AdamW(
            self.denoiser.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.completer_optimizer = (
            torch.optim.AdamW(
                self.completer.parameters(),
                lr=config.tst_lr,
                weight_decay=config.weight_decay,
            )
            if self.completer is not None
            else None
        )
        self.scaler: MinMaxScaler | None = None
        self.epoch = 0  # epochs done, phase 1 and phase 2 together

    # ----------------------------------------------------------------- data
    @property
    def pretrain_epochs(self) -> int:
        return self.config.tst_epochs if self.completer is not None else 0

    @property
    def total_epochs(self) -> int:
        return self.pretrain_epochs + self.config.epochs

    def _windows(self, X) -> np.ndarray:
        x = as_float_array(X["X"] if isinstance(X, dict) else X, "X", ndim=3)
        expected = (self.config.length, self.config.n_features)
        if x.shape[1:] != expected:
            raise ValueError(
                f"expected windows [n, {expected[0]}, {expected[1]}] "
                f"(length, features of the config); got shape {x.shape}"
            )
        return x

    def _complete(self, x: torch.Tensor) -> torch.Tensor:
        """The completed windows in [0, 1] that the diffusion model learns from."""
        if self.config.completion == "zero":
            return zero_fill(x)
        if self.config.completion == "linear":
            return linear_fill(x)
        with torch.no_grad():
            return self.completer.complete(x)

    def _diffusion_target(self, x: torch.Tensor) -> torch.Tensor:
        """What the diffusion model learns: the completed windows, or the completer's reconstruction."""
        if self.config.diffusion_target == "reconstruction":
            with torch.no_grad():
                return self.completer(x)
        return self._complete(x)

    # ---------------------------------------------------------------- train
    def fit(
        self, X, epochs: int | None = None, *, progress: bool = False, logging_dir=None
    ) -> ImagenI2R:
        """Train (or resume training) on irregular windows; ``epochs`` caps the epochs run by this call.

        Each epoch runs seeded from ``(config.seed, epoch)`` (shuffling, noise,
        dropout), which makes a resumed run identical to an uninterrupted one and
        leaves the caller's random state as it was. ``history`` gets one row per
        epoch (mean ``tst_loss`` and, in phase 2, ``diffusion_loss``), also
        written to TensorBoard under ``logging_dir`` when one is given.
        """
        if epochs is not None:
            epochs = integer(epochs, "epochs", minimum=0)
        x = self._windows(X)
        if self.scaler is None:
            self.scaler = MinMaxScaler().fit(x)
        data = torch.as_tensor(self.scaler.transform(x), dtype=torch.float32)
        stop = (
            self.total_epochs
            if epochs is None
            else min(self.total_epochs, self.epoch + epochs)
        )
        bar = runtime.progress(
            range(self.epoch, stop), enabled=progress, desc="ImagenI2R"
        )
        with TrainingLog(self.history, logging_dir) as log:
            for epoch in bar:
                with runtime.seeded(
                    runtime.derive_seed(self.config.seed, epoch), self.device
                ):
                    losses = self._epoch(data, diffusion=epoch >= self.pretrain_epochs)
                if not np.isfinite(list(losses.values())).all():
                    raise ValueError(
                        f"ImagenI2R training diverged in epoch {epoch + 1}: "
                        f"losses {losses}; lower lr={self.config.lr:g} / "
                        f"tst_lr={self.config.tst_lr:g}"
                    )
                self.epoch = epoch + 1
                log(self.epoch, **losses)
                bar.set_postfix({k: f"{v:.4f}" for k, v in losses.items()})
        return self

    def _epoch(self, data: torch.Tensor, diffusion: bool) -> dict[str, float]:
        losses = {"tst_loss": [], "diffusion_loss": []}
        for batch in data[torch.randperm(len(data))].split(self.config.batch_size):
            batch = batch.to(self.device)
            if diffusion:
                losses["diffusion_loss"].append(self._diffusion_step(batch))
            if self.completer is not None:
                losses["tst_loss"].append(self._completer_step(batch, diffusion))
        return {
            name: float(np.mean(values)) for name, values in losses.items() if values
        }

    def _completer_step(self, batch: torch.Tensor, refining: bool = True) -> float:
        self.completer.train()
        # phase 1 (pre-training) may use the released code's 10 * sqrt(MSE)
        loss = self.completer.loss(
            batch, "mse" if refining else self.config.tst_pretrain_loss
        )
        self.completer_optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(
            self.completer.parameters(), self.config.grad_clip
        )
        self.completer_optimizer.step()
        return loss.item()

    def _diffusion_step(self, batch: torch.Tensor) -> float:
        self.denoiser.train()
        # pixels in [-1, 1]
        images = self.embedder.ts_to_img(self._diffusion_target(batch) * 2 - 1)
        if self.config.masked:
            observed = self.embedder.ts_to_img(
                (~torch.isnan(batch)).float(), pad_value=1.0
            )
        else:
            observed = torch.ones_like(images)
        loss = masked_edm_loss(
            self.denoiser, images, observed, self.config.p_mean, self.config.p_std
        )
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(
            self.denoiser.parameters(), self.config.grad_clip
        )
        self.optimizer.step()
        self.ema.update_parameters(self.denoiser)
        return loss.item()

    # ------------------------------------------------------------- generate
    def _check_fitted(self):
        if self.scaler is None:
            raise RuntimeError("ImagenI2R is not fitted: call fit() first")

    def sample(
        self,
        n: int,
        seed: int | None = None,
        inverse: str = "average",
        use_ema: bool = True,
        batch_size: int | None = None,
        s_churn: float | None = None,
        steps: int | None = None,
    ) -> np.ndarray:
        """``n`` generated windows ``[n, length, features]`` in the units of the training data.

        The sampler's noise comes from its own generator, seeded with ``seed``
        (``config.seed`` when None), so the same seed gives the same windows and
        the caller's random state is untouched. ``steps`` and ``s_churn``
        override the config's ``sampling_steps`` and ``s_churn`` only when
        given (``steps=0`` is an error, not "the default"); ``n``, ``steps``
        and ``batch_size`` must be whole numbers (``2.7`` is never truncated).
        A sampler that diverges (a non-finite image) raises instead of
        returning NaN. ``batch_size`` images are denoised at a time; by default
        512 up to 256 pixels per image and fewer for larger images (32 at length
        768's 64 x 64), which keeps one U-Net evaluation at the paper's width
        near 1 GB instead of 16 GB.
        """
        self._check_fitted()
        n = integer(n, "n (the number of samples)")
        pixels = self.embedder.image_shape[0] * self.embedder.image_shape[1]
        batch_size = integer(
            max(1, min(512, SAMPLING_PIXELS // pixels))
            if batch_size is None
            else batch_size,
            "batch_size",
        )
        steps = self.config.sampling_steps if steps is None else integer(steps, "steps")
        s_churn = (
            self.config.s_churn
            if s_churn is None
            else number(s_churn, "s_churn", minimum=0)
        )
        network = self.ema.module if use_ema else self.denoiser
        network.eval()
        generator = runtime.torch_generator(self.config.seed if seed is None else seed)
        shape = (self.config.n_features, *self.embedder.image_shape)
        sizes = [batch_size] * (n // batch_size) + [n % batch_size]
        out = []
        for size in filter(None, sizes):
            images = heun_sampler(
                network,
                (size, *shape),
                steps,
                self.config.sigma_min,
                self.config.sigma_max,
                self.config.rho,
                s_churn,
                generator=generator,
                device=self.device,
            )
            if not torch.isfinite(images).all():
                raise ValueError(
                    f"ImagenI2R sampling diverged: a generated image is not "
                    f"finite after {steps} steps (s_churn={s_churn:g}); the "
                    "denoiser's weights are out of range"
                )
            out.append(self.embedder.img_to_ts(images, inverse).cpu())
        scaled = ((torch.cat(out) + 1) / 2).clamp(0, 1).numpy()
        return self.scaler.inverse_transform(scaled)

    def predict(self, X) -> np.ndarray:
        """The completion the diffusion model is trained on: observed values kept, missing ones filled.

        Observed values come back exactly as given (float64), not through the
        networks' float32 and the scaler's round trip.
        """
        self._check_fitted()
        windows = self._windows(X)
        x = torch.as_tensor(
            self.scaler.transform(windows),
            dtype=torch.float32,
            device=self.device,
        )
        if self.completer is not None:
            self.completer.eval()
        completed = self.scaler.inverse_transform(self._complete(x).cpu().numpy())
        if not np.isfinite(completed).all():
            raise ValueError(
                "ImagenI2R's completion is not finite: the completer's weights "
                "or the scale of X are out of range"
            )
        return np.where(np.isnan(windows), completed, windows)

    # ----------------------------------------------------------- checkpoint
    def _modules(self) -> dict[str, torch.nn.Module]:
        modules = {"denoiser": self.denoiser, "ema": self.ema}
        if self.completer is not None:
            modules["completer"] = self.completer
        return modules

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        optimizers = {"optimizer": self.optimizer}
        if self.completer_optimizer is not None:
            optimizers["completer_optimizer"] = self.completer_optimizer
        return optimizers

    def _tensors(self) -> dict[str, torch.Tensor]:
        """Module weights as ``<module>.<key>``, optimizer moments as ``<optimizer>.state.<param>.<moment>``."""
        tensors = module_tensors(self._modules())
        for name, optimizer in self._optimizers().items():
            for index, moments in optimizer.state_dict()["state"].items():
                tensors.update(
                    {f"{name}.state.{index}.{k}": v for k, v in moments.items()}
                )
        return tensors

    def _load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        optimizers = self._optimizers()
        load_modules(
            {k: v for k, v in tensors.items() if k.split(".", 1)[0] not in optimizers},
            self._modules(),
        )
        for name, optimizer in optimizers.items():
            prefix = f"{name}.state."
            moments: dict[int, dict[str, torch.Tensor]] = {}
            for key, value in tensors.items():
                if key.startswith(prefix):
                    index, moment = key[len(prefix) :].split(".", 1)
                    moments.setdefault(int(index), {})[moment] = value
            # the settings of each group (lr, betas, ...)
            # come from state.json in _restore
            optimizer.load_state_dict(
                {
                    "state": moments,
                    "param_groups": optimizer.state_dict()["param_groups"],
                }
            )

    def _state(self) -> dict:
        return {
            "epoch": self.epoch,
            "scaler": self.scaler.to_dict() if self.scaler is not None else None,
            "param_groups": {
                name: optimizer.state_dict()["param_groups"]
                for name, optimizer in self._optimizers().items()
            },
        }

    def _restore(self, state: dict) -> None:
        for name, optimizer in self._optimizers().items():
            groups = [
                {**group, "betas": tuple(group["betas"])}
                for group in state["param_groups"][name]
            ]
            optimizer.load_state_dict(
                {"state": optimizer.state_dict()["state"], "param_groups": groups}
            )
        self.scaler = (
            MinMaxScaler.from_dict(state["scaler"])
            if state["scaler"] is not None
            else None
        )
        self.epoch = int(state["epoch"])

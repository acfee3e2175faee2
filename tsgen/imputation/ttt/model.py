"""``TTTImputer``: a PyPOTS imputer whose encoder is made of test-time-training layers.

It is a ``pypots.imputation.base.BaseNNImputer``: PyPOTS's training loop (Adam,
early stopping on the validation MSE of held-out entries, best checkpoint kept),
its data sets and its ``predict`` / ``impute`` contract, so it runs in the same
code path as SAITS, Transformer and BRITS. On top of PyPOTS it adds

* optional **test-time adaptation** in ``predict``: for each test batch a few
  gradient steps on a self-supervised loss (hide a fraction of the observed
  entries, impute them with the model itself) through
  :class:`tsgen.adaptation.SelfReconstructionEngine`; the trained weights are restored
  after every batch, so results do not depend on call or batch order;
* checkpoints as ``config.json`` + ``weights.safetensors`` + ``history.json``
  (PyPOTS's own ``.pypots`` files are pickles);
* input checks that name the problem, and a per-epoch training history.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from pypots.data.dataset.base import BaseDataset
from pypots.imputation.base import BaseNNImputer
from pypots.nn.modules.loss import MAE, MSE
from pypots.optim.adam import Adam
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader

from ...adaptation import OptimizationParameters, SelfReconstructionEngine
from .config import TTTImputerConfig
from .core import _TTTImputer
from .data import DatasetForTTTImputer, check_set

# fields that change the weights' shapes: a checkpoint only loads into a model that agrees on them
ARCHITECTURE = ("n_steps", "n_features", "n_layers", "d_model", "n_heads", "layer_type", "bidirectional", "d_ffn")


@contextlib.contextmanager
def seeded(seed: int):
    """Seed torch for a block and put the global CPU generator back afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def quiet_pypots():
    """PyPOTS logs a line per epoch and warns about saving paths: silence its log in a block."""
    log = logging.getLogger("PyPOTS running log")
    disabled = log.disabled  # a level would not do: PyPOTS models reset it when built with verbose=False
    log.disabled = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        log.disabled = disabled


class TrainingHistory:
    """What PyPOTS's training loop logs, one row per epoch.

    PyPOTS sends its losses to a tensorboard writer when it has one; the imputer
    hands it this object instead, which only keeps the numbers.
    """

    def __init__(self, epochs: list[dict] | None = None, best_epoch: int = -1):
        self.epochs = list(epochs or [])
        self.best_epoch = best_epoch
        self._pending: dict[str, list[float]] = {}

    def add_scalar(self, tag: str, value, step: int) -> None:
        stage, name = tag.split("/", 1)
        if stage == "training":
            self._pending.setdefault(name, []).append(float(value))
        else:  # one validation record closes an epoch
            row = {"epoch": int(step), **{f"train_{k}": float(np.mean(v)) for k, v in self._pending.items()}}
            row[f"val_{name}"] = float(value)
            self.epochs.append(row)
            self._pending = {}

    def to_dict(self) -> dict:
        return {"epochs": self.epochs, "best_epoch": self.best_epoch}

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.epochs).set_index("epoch") if self.epochs else pd.DataFrame()


class TTTImputer(BaseNNImputer):
    """SAITS embedding → TTT blocks → projection, trained with ORT + MIT like SAITS.

    ``TTTImputer(n_steps, n_features, device=None, verbose=False, **params)``
    where ``params`` are the fields of :class:`TTTImputerConfig` (an unknown name
    is a ``ValueError``). ``predict`` / ``impute`` take ``adaptation=`` to
    override the configured test-time adaptation for one call (a dict of
    :class:`tsgen.adaptation.OptimizationParameters`; ``{"num_steps": 0}`` = none).
    """

    def __init__(self, n_steps: int, n_features: int, device=None, verbose: bool = False, **params):
        self.config = TTTImputerConfig.from_dict({"n_steps": n_steps, "n_features": n_features, **params})
        c = self.config
        with contextlib.nullcontext() if verbose else quiet_pypots():
            super().__init__(training_loss=MAE, validation_metric=MSE, batch_size=c.batch_size, epochs=c.epochs,
                             patience=c.patience, device=device, saving_path=None, model_saving_strategy=None,
                             verbose=verbose)
        with seeded(c.seed):
            self.model = _TTTImputer(c, self.training_loss, self.validation_metric)
        self._print_model_size()
        self._send_model_to_given_device()
        self.optimizer = Adam(lr=c.lr)
        self.optimizer.init_optimizer(self.model.parameters())
        self.history = TrainingHistory()

    # ---- PyPOTS hooks
    def _assemble_input_for_training(self, data: list) -> dict:
        _, X, missing_mask, X_ori, indicating_mask = self._send_data_to_given_device(data)
        return {"X": X, "missing_mask": missing_mask, "X_ori": X_ori, "indicating_mask": indicating_mask}

    def _assemble_input_for_validating(self, data: list) -> dict:
        return self._assemble_input_for_training(data)

    def _assemble_input_for_testing(self, data: list) -> dict:
        _, X, missing_mask = self._send_data_to_given_device(data)
        return {"X": X, "missing_mask": missing_mask}

    def _save_log_into_tb_file(self, step: int, stage: str, loss_dict: dict) -> None:
        for name, value in loss_dict.items():
            if isinstance(value, torch.Tensor) and value.ndim > 0:
                continue  # imputations, not losses
            self.history.add_scalar(f"{stage}/{name}", float(torch.as_tensor(value).detach()), step)

    # ---- estimator API
    def fit(self, train_set: dict, val_set: dict | None = None, file_type: str = "hdf5") -> None:
        """Train on ``train_set`` (``X`` with NaN); select the epoch with the lowest MSE on ``val_set``.

        ``val_set`` needs ``X`` and ``X_ori``: the held-out entries (observed in
        ``X_ori``, missing in ``X``) are scored after every epoch.
        """
        c = self.config
        if val_set is None:
            raise ValueError("TTTImputer.fit needs a val_set (X and X_ori): early stopping selects on it")
        train = check_set(train_set, c.n_steps, c.n_features, "train_set")
        val = check_set(val_set, c.n_steps, c.n_features, "val_set", need_truth=True)
        with seeded(c.seed):
            train_loader = DataLoader(
                DatasetForTTTImputer({"X": train["X"]}, return_X_ori=False, return_y=False, rate=c.mit_rate),
                batch_size=c.batch_size, shuffle=True, num_workers=self.num_workers)
            val_loader = DataLoader(
                DatasetForTTTImputer({"X": val["X"], "X_ori": val["X_ori"]}, return_X_ori=True, return_y=False),
                batch_size=c.batch_size, shuffle=False, num_workers=self.num_workers)
            self.history = TrainingHistory()
            self.summary_writer = self.history  # PyPOTS logs into it
            try:
                with contextlib.nullcontext() if self.verbose else quiet_pypots():
                    self._train_model(train_loader, val_loader)
            finally:
                self.summary_writer = None
        self.model.load_state_dict(self.best_model_dict)
        self.history.best_epoch = int(self.best_epoch)

    def _adaptation(self, adaptation) -> OptimizationParameters:
        return OptimizationParameters.coerce(self.config.adaptation if adaptation is None else adaptation)

    def engine(self, adaptation=None) -> SelfReconstructionEngine:
        """The test-time-training engine around the model core (self-reconstruction of hidden observed entries)."""
        return SelfReconstructionEngine(self.model, mask_ratio=self.config.adapt_mask_ratio,
                                        optimization_parameters=self._adaptation(adaptation), seed=self.config.seed)

    @torch.no_grad()
    def predict(self, test_set: dict, file_type: str = "hdf5", adaptation=None) -> dict:
        """``{"imputation", "reconstruction"}`` as arrays ``[n_samples, n_steps, n_features]``.

        Observed entries of ``X`` are returned unchanged. With adaptation
        (``num_steps > 0``, from the config or ``adaptation=``) every batch of
        ``batch_size`` samples is adapted on its own and the weights restored.
        """
        c = self.config
        data = check_set(test_set, c.n_steps, c.n_features, "test_set")
        opt = self._adaptation(adaptation)
        if opt.num_steps == 0:
            return super().predict({"X": data["X"]}, file_type)
        engine = self.engine(opt)
        engine.eval()
        loader = DataLoader(BaseDataset({"X": data["X"]}, return_X_ori=False, return_X_pred=False, return_y=False),
                            batch_size=c.batch_size, shuffle=False, num_workers=self.num_workers)
        imputations, reconstructions = [], []
        for batch in loader:
            inputs = self._assemble_input_for_testing(batch)
            reconstruction, _ = engine.adapt(inputs)  # enables gradients inside, restores the weights after
            mask = inputs["missing_mask"]
            imputations.append(mask * inputs["X"] + (1 - mask) * reconstruction)
            reconstructions.append(reconstruction)
        return {"imputation": torch.cat(imputations).cpu().numpy(),
                "reconstruction": torch.cat(reconstructions).cpu().numpy()}

    def impute(self, test_set: dict, file_type: str = "hdf5", adaptation=None) -> np.ndarray:
        """The imputed windows ``[n_samples, n_steps, n_features]`` (observed entries unchanged)."""
        return self.predict(test_set, file_type, adaptation=adaptation)["imputation"]

    def save(self, saving_path, overwrite: bool = False) -> Path:
        """A directory with ``config.json``, ``weights.safetensors`` and ``history.json``."""
        path = Path(saving_path)
        if (path / "weights.safetensors").exists() and not overwrite:
            raise FileExistsError(f"{path} already holds a checkpoint; pass overwrite=True to replace it")
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(self.config.to_json())
        (path / "history.json").write_text(json.dumps(self.history.to_dict()))
        save_file({k: v.detach().contiguous().cpu() for k, v in self.model.state_dict().items()},
                  str(path / "weights.safetensors"))
        return path

    def load(self, path) -> None:
        """Load a checkpoint written by :meth:`save` into this imputer (same architecture)."""
        path = Path(path)
        if not (path / "weights.safetensors").exists():
            raise ValueError(f"{path} holds no TTTImputer checkpoint (weights.safetensors is missing)")
        saved = TTTImputerConfig.from_json((path / "config.json").read_text())
        differ = [k for k in ARCHITECTURE if getattr(saved, k) != getattr(self.config, k)]
        if differ:
            raise ValueError(f"the checkpoint's architecture differs in {differ}: "
                             f"{ {k: getattr(saved, k) for k in differ} } vs { {k: getattr(self.config, k) for k in differ} }")
        self.model.load_state_dict(load_file(str(path / "weights.safetensors"), device=str(self.device)))
        self.model.eval()
        self.config = saved
        history = json.loads((path / "history.json").read_text())
        self.history = TrainingHistory(history["epochs"], history["best_epoch"])

    @classmethod
    def from_saved(cls, path, device=None) -> "TTTImputer":
        """A new imputer built from the checkpoint's config, with its weights."""
        config = TTTImputerConfig.from_json((Path(path) / "config.json").read_text())
        imputer = cls(device=device, **config.to_dict())
        imputer.load(path)
        return imputer

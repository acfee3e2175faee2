"""``TTTImputer``: a PyPOTS imputer whose encoder is made of test-time-training layers.

It is both a ``pypots.imputation.base.BaseNNImputer`` and a
:class:`tsgen.estimator.Estimator`. From PyPOTS: the training loop (Adam, early
stopping on the validation MSE of held-out entries, the best epoch kept), the
data sets and the ``fit`` / ``predict`` / ``impute`` API, so it runs in the same
code path as SAITS, Transformer and BRITS. From tsgen: the constructor
``TTTImputer(config, device)``, checkpoints (``save(path)`` /
``TTTImputer.load(path)``), a per-epoch history (TensorBoard with
``logging_dir``) and training that leaves the caller's random state alone. On
top of both:

* **test-time adaptation** in ``predict`` with any registered engine
  (:func:`tsgen.adaptation.build_engine`): for each test batch a few gradient
  steps on the engine's self-supervised loss; the trained weights are restored
  after every batch, so results do not depend on call or batch order;
* input checks that name the problem.

Engines call ``model(inputs)`` and expect a tensor, while a PyPOTS core returns
a dict: the engine wraps :class:`ReconstructionView`, which is the core's own
modules under their own names returning the reconstruction, so every engine
(including one registered in a notebook) works, and layer names such as
``"encoder"`` mean the same thing to the engine and to the core.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from pypots.data.dataset.base import BaseDataset
from pypots.imputation.base import BaseNNImputer
from pypots.nn.modules.loss import MAE, MSE
from pypots.optim.adam import Adam
from torch import nn
from torch.utils.data import DataLoader

from ..._pypots import PYPOTS_LOG
from ...adaptation import BaseEngine, OptimizationParameters, build_engine
from ...estimator import Estimator, TrainingLog
from ...runtime import progress as progress_bar
from ...runtime import quiet, seeded
from .config import TTTImputerConfig
from .core import _TTTImputer
from .data import DatasetForTTTImputer, check_set


class ReconstructionView(nn.Module):
    """The core's modules seen as a model ``inputs -> reconstruction [B, T, C]`` (what engines expect).

    The core's children are registered here under their own names (shared, not
    copied), so hooks, ``parameters="encoder"`` and ``state_dict`` keys are the
    core's; the core itself is kept outside the module tree (it would hold every
    weight a second time).
    """

    def __init__(self, core: _TTTImputer):
        super().__init__()
        for name, child in core.named_children():
            self.add_module(name, child)
        object.__setattr__(self, "core", core)  # not a submodule: see above

    def forward(self, inputs: dict) -> torch.Tensor:
        return self.core(inputs)["reconstruction"]


class _JointObjective(nn.Module):
    """What PyPOTS's loop trains when ``engine_weight > 0``: the SAITS loss plus ``weight`` × the engine's loss.

    torch-ttt's joint training, so the engine's own heads (IT³'s embedder, the
    masked engine's head) learn beside the core. The engine sees the batch as
    the core does (MIT entries hidden); its target is every value known before
    MIT hid some (``X_ori`` where observed, NaN elsewhere).
    """

    def __init__(self, core: _TTTImputer, engine: BaseEngine, weight: float):
        super().__init__()
        self.core, self.engine, self.weight = core, engine, weight

    def forward(self, inputs: dict, calc_criterion: bool = False) -> dict:
        results = self.core(inputs, calc_criterion)
        if calc_criterion and self.training:
            known = (inputs["missing_mask"] + inputs["indicating_mask"]) > 0
            target = torch.where(
                known, inputs["X_ori"], torch.full_like(inputs["X_ori"], float("nan"))
            )
            _, engine_loss = self.engine(
                {"X": inputs["X"], "missing_mask": inputs["missing_mask"]}, target
            )
            results["loss"] = results["loss"] + self.weight * engine_loss
            results["engine_loss"] = engine_loss
        return results


class _EpochRows:
    """PyPOTS reports losses per training step and the validation metric per epoch: one history row per epoch.

    It stands where PyPOTS keeps its TensorBoard writer (``summary_writer``)
    during ``fit``; rows go through :class:`~tsgen.estimator.TrainingLog`.
    """

    def __init__(self, log: TrainingLog, steps_per_epoch: int, validating: bool, bar):
        self.log, self.steps_per_epoch, self.validating, self.bar = (
            log,
            steps_per_epoch,
            validating,
            bar,
        )
        self.losses: dict[str, list[float]] = {}

    def add(self, step: int, stage: str, results: dict) -> None:
        # skip imputations
        scalars = {
            name: float(torch.as_tensor(value).detach())
            for name, value in results.items()
            if not (isinstance(value, torch.Tensor) and value.ndim > 0)
        }
        if stage == "training":
            for name, value in scalars.items():
                self.losses.setdefault(name, []).append(value)
            if not self.validating and step % self.steps_per_epoch == 0:
                self.end_epoch(step // self.steps_per_epoch)
        else:  # one validation record per epoch, after its training steps
            self.end_epoch(
                step, **{f"val_{name}": value for name, value in scalars.items()}
            )

    def end_epoch(self, epoch: int, **validation: float) -> None:
        means = {
            f"train_{name}": sum(values) / len(values)
            for name, values in self.losses.items()
        }
        self.log(epoch, **means, **validation)
        self.losses = {}
        self.bar.update(1)


class TTTImputer(Estimator, BaseNNImputer):
    """SAITS embedding → TTT blocks → projection, trained with ORT + MIT like SAITS.

    ``TTTImputer(TTTImputerConfig(n_steps, n_features, ...), device="cpu")``.
    ``model`` is the PyPOTS core (:class:`~tsgen.imputation.ttt.core._TTTImputer`),
    ``engine`` the test-time-training engine ``config.adaptation_engine`` built
    around it. ``predict`` / ``impute`` take ``adaptation=`` to change the
    configured adaptation for one call (a dict of
    :class:`tsgen.adaptation.OptimizationParameters` fields; ``{"num_steps": 0}``
    = none). Predicting before ``fit`` (or ``load``) is an error.
    """

    config_class = TTTImputerConfig

    def __init__(self, config: TTTImputerConfig, device: str | None = "cpu"):
        Estimator.__init__(self, config, device)
        c, device = config, self.device
        with quiet(loggers=[PYPOTS_LOG]), seeded(c.seed, device):
            BaseNNImputer.__init__(
                self,
                training_loss=MAE if c.training_loss == "mae" else MSE,
                validation_metric=MSE,
                batch_size=c.batch_size,
                epochs=c.epochs,
                patience=c.patience,
                device=device,
                saving_path=None,
                model_saving_strategy=None,
                verbose=False,
            )
            # PyPOTS replaced it by a torch.device; tsgen's estimators keep the string
            self.device = device
            self.model = _TTTImputer(c, self.training_loss, self.validation_metric)
            self._print_model_size()
            self._send_model_to_given_device()
            self.engine = self._build_engine()

    def _build_engine(self) -> BaseEngine:
        c = self.config
        example = {
            "X": torch.zeros(1, c.n_steps, c.n_features, device=self.device),
            "missing_mask": torch.ones(1, c.n_steps, c.n_features, device=self.device),
        }
        try:
            engine = build_engine(
                c.adaptation_engine,
                ReconstructionView(self.model),
                layer=c.engine_layer,
                example_inputs=example,
                options=c.engine_options,
                optimization_parameters=c.adaptation,
                seed=c.seed,
            )
        except (ValueError, TypeError) as err:
            raise ValueError(
                f"adaptation_engine {c.adaptation_engine!r} cannot be "
                f"built around the TTT imputer (layer {c.engine_layer!r}, "
                f"engine_options {c.engine_options}): {err}"
            ) from err
        return engine.to(self.device)

    # ---- PyPOTS hooks
    def _send_data_to_given_device(self, data) -> list:
        # PyPOTS's own moves data only for a torch.device
        return [x.to(self.device) for x in data]

    def _assemble_input_for_training(self, data: list) -> dict:
        _, X, missing_mask, X_ori, indicating_mask = self._send_data_to_given_device(
            data
        )
        return {
            "X": X,
            "missing_mask": missing_mask,
            "X_ori": X_ori,
            "indicating_mask": indicating_mask,
        }

    def _assemble_input_for_validating(self, data: list) -> dict:
        return self._assemble_input_for_training(data)

    def _assemble_input_for_testing(self, data: list) -> dict:
        _, X, missing_mask = self._send_data_to_given_device(data)
        return {"X": X, "missing_mask": missing_mask}

    def _save_log_into_tb_file(self, step: int, stage: str, loss_dict: dict) -> None:
        self.summary_writer.add(step, stage, loss_dict)

    # ---- estimator API
    def fit(
        self,
        train_set: dict,
        val_set: dict | None = None,
        file_type: str = "hdf5",
        *,
        progress: bool = False,
        logging_dir: str | Path | None = None,
    ) -> TTTImputer:
        """Train on ``train_set`` (``X`` with NaN); returns ``self``.

        With ``val_set`` (``X`` and ``X_ori``: the entries observed in ``X_ori``
        and missing in ``X`` are scored after every epoch) the epoch with the
        lowest validation MSE is kept and training stops after ``patience``
        epochs without improvement. **Without** ``val_set`` there is no early
        stopping: all ``epochs`` are trained and the last epoch is kept (the
        history then has no ``val_MSE`` column). ``history`` gets one row per
        epoch (mean training losses, validation MSE), also written to
        TensorBoard under ``logging_dir``; ``progress`` shows a bar over epochs.
        Only dicts are accepted (``file_type`` is PyPOTS's signature).
        """
        c = self.config
        train = check_set(train_set, c.n_steps, c.n_features, "train_set")
        val = (
            None
            if val_set is None
            else check_set(val_set, c.n_steps, c.n_features, "val_set", need_truth=True)
        )
        if val is not None:
            held_out = np.isnan(val["X"]) & ~np.isnan(val["X_ori"])
            if not held_out.any():
                raise ValueError(
                    "val_set holds nothing out: no entry is missing in X and "
                    "observed in X_ori, so there is nothing to validate on; hide "
                    "some observed values (tsgen.data.add_missingness) or pass "
                    "val_set=None"
                )
        core = self.model
        objective = (
            core
            if c.engine_weight == 0
            else _JointObjective(core, self.engine, c.engine_weight)
        )
        self.history = []
        with quiet(loggers=[PYPOTS_LOG]), seeded(c.seed, self.device):
            train_loader = DataLoader(
                DatasetForTTTImputer(
                    {"X": train["X"]},
                    return_X_ori=False,
                    return_y=False,
                    rate=c.mit_rate,
                ),
                batch_size=c.batch_size,
                shuffle=True,
                num_workers=self.num_workers,
            )
            val_loader = (
                None
                if val is None
                else DataLoader(
                    DatasetForTTTImputer(
                        {"X": val["X"], "X_ori": val["X_ori"]},
                        return_X_ori=True,
                        return_y=False,
                    ),
                    batch_size=c.batch_size,
                    shuffle=False,
                    num_workers=self.num_workers,
                )
            )
            self.optimizer = Adam(lr=c.lr)
            self.optimizer.init_optimizer(objective.parameters())
            # PyPOTS carries the patience left by an
            # earlier fit over; every fit starts afresh
            self.patience = self.original_patience = (
                -1 if val is None or c.patience is None else c.patience
            )
            with (
                TrainingLog(self.history, logging_dir) as log,
                progress_bar(
                    total=c.epochs, enabled=progress, desc="TTTImputer"
                ) as bar,
            ):
                self.model, self.summary_writer = (
                    objective,
                    _EpochRows(log, len(train_loader), val is not None, bar),
                )
                try:
                    self._train_model(train_loader, val_loader)
                except ValueError as err:  # PyPOTS's words for a NaN loss
                    if "best_loss is NaN" not in str(err):
                        raise
                    raise ValueError(
                        "TTTImputer training diverged: every epoch's loss is "
                        f"NaN or infinite; lower lr={c.lr:g} or scale the data"
                    ) from None
                finally:
                    self.model, self.summary_writer = core, None
        if val is None:
            # the last epoch, not PyPOTS's lowest training loss
            self.best_epoch = len(self.history)
            last = self.history[-1] if self.history else {}
            if not np.isfinite(list(last.values())).all():
                self.best_epoch = -1  # the weights are not usable: not trained
                raise ValueError(
                    f"TTTImputer training diverged: the last epoch's losses are "
                    f"{last}; lower lr={c.lr:g} or scale the data"
                )
        else:
            objective.load_state_dict(self.best_model_dict)
        self.best_model_dict = None  # the kept weights are in the model; no second copy
        core.eval()
        return self

    def _adaptation(self, adaptation: dict | None) -> OptimizationParameters:
        """The configured adaptation, with the fields of ``adaptation`` changed for one call."""
        if adaptation is None:
            return OptimizationParameters.coerce(self.config.adaptation)
        if isinstance(adaptation, OptimizationParameters):
            return adaptation
        if not isinstance(adaptation, dict):
            raise ValueError(
                "adaptation must be a dict of "
                f"OptimizationParameters fields; got {adaptation!r}"
            )
        return OptimizationParameters.coerce({**self.config.adaptation, **adaptation})

    def _check_can_adapt(self) -> None:
        heads = sorted(
            {name.split(".")[0] for name, _ in self.engine.named_parameters()}
            - {"model"}
        )
        if heads and self.config.engine_weight == 0:
            raise ValueError(
                f"adaptation_engine {self.config.adaptation_engine!r} "
                f"adapts through its own {heads}, which learn only in "
                "training: set engine_weight > 0 and fit again"
            )

    @torch.no_grad()
    def predict(
        self, test_set: dict, file_type: str = "hdf5", *, adaptation: dict | None = None
    ) -> dict:
        """``{"imputation", "reconstruction"}`` as arrays ``[n_samples, n_steps, n_features]``.

        Observed entries of ``X`` are returned exactly as given (not through
        the network's float32), in ``X``'s float dtype. With adaptation
        (``num_steps > 0``, from the config or ``adaptation=``) every batch of
        ``batch_size`` samples is adapted on its own (``scope="batch"``; with
        ``scope="sample"`` every sample alone, and ``safeguard`` keeps only
        the steps a held-out check approves: see
        :class:`tsgen.adaptation.OptimizationParameters`), its reconstruction is
        the engine's output, and the weights are restored. A sample's result does
        not depend on the order of the samples inside its batch.
        """
        if self.best_epoch < 1:
            raise RuntimeError(
                "this TTTImputer is not trained: call fit(train_set, val_set) first, "
                "or load a saved one with TTTImputer.load(path)"
            )
        c = self.config
        data = check_set(test_set, c.n_steps, c.n_features, "test_set")
        opt = self._adaptation(adaptation)
        # PyPOTS's DataLoader draws a base seed from
        # the global generator even without shuffling
        with quiet(loggers=[PYPOTS_LOG]), seeded(c.seed, self.device):
            if opt.num_steps == 0:
                result = BaseNNImputer.predict(self, {"X": data["X"]}, file_type)
                return self._finish(test_set["X"], **result)
            self._check_can_adapt()
            self.engine.eval()
            loader = DataLoader(
                BaseDataset(
                    {"X": data["X"]},
                    return_X_ori=False,
                    return_X_pred=False,
                    return_y=False,
                ),
                batch_size=c.batch_size,
                shuffle=False,
                num_workers=self.num_workers,
            )
            imputations, reconstructions = [], []
            for batch in loader:
                inputs = self._assemble_input_for_testing(batch)
                # enables gradients inside, restores weights
                reconstruction, _ = self.engine.adapt(inputs, opt)
                if reconstruction.shape != inputs["X"].shape:
                    raise ValueError(
                        f"adaptation_engine {c.adaptation_engine!r} returned "
                        f"outputs of shape {tuple(reconstruction.shape)}; an "
                        f"imputer needs {tuple(inputs['X'].shape)}"
                    )
                mask = inputs["missing_mask"]
                imputations.append(mask * inputs["X"] + (1 - mask) * reconstruction)
                reconstructions.append(reconstruction)
        return self._finish(
            test_set["X"],
            imputation=torch.cat(imputations).cpu().numpy(),
            reconstruction=torch.cat(reconstructions).cpu().numpy(),
        )

    @staticmethod
    def _finish(X, imputation: np.ndarray, reconstruction: np.ndarray) -> dict:
        """The caller's observed values exactly (the network runs in float32), checked to be finite."""
        if not (np.isfinite(imputation).all() and np.isfinite(reconstruction).all()):
            raise ValueError(
                "TTTImputer's imputation is not finite: the trained weights or "
                "the scale of test_set['X'] are out of range (standardise it)"
            )
        original = np.asarray(X)
        dtype = (
            np.result_type(original.dtype, np.float32)
            if np.issubdtype(original.dtype, np.floating)
            else np.float64
        )
        original = original.astype(dtype)
        observed = ~np.isnan(original)
        return {
            "imputation": np.where(observed, original, imputation.astype(dtype)),
            "reconstruction": reconstruction,
        }

    def impute(
        self, test_set: dict, file_type: str = "hdf5", *, adaptation: dict | None = None
    ):
        """The imputed windows ``[n_samples, n_steps, n_features]`` (observed entries unchanged)."""
        return self.predict(test_set, file_type, adaptation=adaptation)["imputation"]

    # ---- checkpoint hooks
    # the engine's state holds the core's weights (under "model.") and its heads
    def _tensors(self) -> dict[str, torch.Tensor]:
        return self.engine.state_dict()

    def _load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        self.engine.load_state_dict(tensors)
        self.model.eval()

    def _state(self) -> dict:
        return {"best_epoch": int(self.best_epoch)}

    def _restore(self, state: dict) -> None:
        self.best_epoch = int(state["best_epoch"])

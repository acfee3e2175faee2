"""Faults while saving and loading, and a bad value at every public entry point (issue 14).

Checkpoint faults use the smallest real estimator, a :class:`TTTForecaster`
with an engine (its checkpoint holds several tensors): a save killed by
``SIGKILL`` at each stage of the transaction, a read-only directory, a full
disk, a damaged file and a config that lost or gained a key. Each time the
previous checkpoint must stay whole (it loads and forecasts exactly as before)
or the error must name the file and the problem. The bad-input table then
names, per entry point, the exception and the words its message must hold.
"""

from __future__ import annotations

import copy
import errno
import functools
import json
import os
import signal
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import tiny_generation_config

from tsgen import estimator
from tsgen.adaptation import (
    OptimizationParameters,
    TTTForecaster,
    TTTForecasterConfig,
)
from tsgen.config import ParameterTypeError
from tsgen.data.scaling import MinMaxScaler
from tsgen.generation import GenerationConfig, ImagenI2R
from tsgen.generation.delay import DelayEmbedder
from tsgen.imputation import NaiveTTTImputer, train_naive
from tsgen.metrics.clinical import time_in_range
from tsgen.metrics.imputation import imputation_errors
from tsgen.metrics.sanity import distort
from tsgen.runtime import torch_generator

CONTEXT, HORIZON, FEATURES = 8, 2, 2


def windows(n=32, length=CONTEXT + HORIZON, features=FEATURES, missing=0.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(length)[None, :, None]
    x = np.sin(t / 3 + rng.uniform(0, 6, (n, 1, features)))
    x[rng.random(x.shape) < missing] = np.nan
    return x


def forecaster_config(**overrides) -> TTTForecasterConfig:
    values = dict(
        context_length=CONTEXT,
        horizon=HORIZON,
        n_features=FEATURES,
        hidden=8,
        engine="it3",
        epochs=2,
        batch_size=16,
    )
    return TTTForecasterConfig(**{**values, **overrides})


@functools.cache
def forecaster(seed: int = 0) -> TTTForecaster:
    return TTTForecaster(forecaster_config(seed=seed)).fit(windows())


def forecast(model: TTTForecaster) -> np.ndarray:
    return model.predict(windows()[:, :CONTEXT], adapt=False)


def same_forecasts(model: TTTForecaster, reference: TTTForecaster) -> bool:
    return np.array_equal(forecast(model), forecast(reference))


@pytest.fixture
def saved(tmp_path) -> Path:
    """The checkpoint of ``forecaster(0)`` at ``tmp_path / "ckpt"``."""
    return forecaster(0).save(tmp_path / "ckpt")


def file_bytes(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


# ------------------------------------------------------------ killed saves
def _kill_me() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _die_after_writing(name: str) -> None:
    write = estimator._write

    def write_then_die(file, data):
        write(file, data)
        if file.name == name:
            _kill_me()

    estimator._write = write_then_die


def _die_before_the_swap() -> None:
    estimator._swap_in = lambda staging, path: _kill_me()


def _die_after_the_exchange() -> None:
    exchange = estimator._exchange

    def exchange_then_die(a, b):
        exchange(a, b)
        _kill_me()

    estimator._exchange = exchange_then_die


# (how the child dies, whether the new checkpoint is in place by then)
KILL_POINTS = {
    "after config.json": (lambda: _die_after_writing(estimator.CONFIG), False),
    "after weights.safetensors": (lambda: _die_after_writing(estimator.WEIGHTS), False),
    "after state.json": (lambda: _die_after_writing(estimator.STATE), False),
    "before the swap": (_die_before_the_swap, False),
    "after the swap": (_die_after_the_exchange, True),
}


def save_in_a_killed_child(
    model: estimator.Estimator, path: Path, point: str, die=None
) -> None:
    """Fork; the child saves ``model`` over ``path`` and is killed at ``point``.

    ``die`` (run in the child before saving) arranges the kill; by default
    the one :data:`KILL_POINTS` names.
    """
    with warnings.catch_warnings():  # fork() of a process with threads warns
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        try:
            (die or KILL_POINTS[point][0])()
            model.save(path, overwrite=True)
        finally:
            os._exit(3)
    # a guard against a child stuck in a lock taken by a thread at fork
    deadline = time.monotonic() + 60
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the saving child hung ({point})")
        time.sleep(0.005)
    status = done[1]
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
        f"the child was not killed {point}: status {status}"
    )


@pytest.mark.parametrize("attempt", range(20))
def test_a_save_killed_at_any_stage_leaves_a_whole_checkpoint(attempt, saved):
    point = list(KILL_POINTS)[attempt % len(KILL_POINTS)]
    old, new = forecaster(0), forecaster(1)
    assert not same_forecasts(new, old)
    save_in_a_killed_child(new, saved, point)
    loaded = TTTForecaster.load(saved)
    swapped = KILL_POINTS[point][1]
    assert same_forecasts(loaded, new if swapped else old), point
    assert loaded.history == (new if swapped else old).history
    # a later save goes through: what the killed one left behind is not in its way
    new.save(saved, overwrite=True)
    assert same_forecasts(TTTForecaster.load(saved), new)


def test_where_directories_cannot_be_exchanged_a_kill_between_renames_is_named(
    saved, monkeypatch
):
    monkeypatch.setattr(estimator, "_exchange", lambda a, b: False)
    # the fallback path (rename aside, rename in) replaces a checkpoint too
    forecaster(1).save(saved, overwrite=True)
    assert same_forecasts(TTTForecaster.load(saved), forecaster(1))
    assert [p.name for p in saved.parent.iterdir()] == ["ckpt"]
    # killed between its two renames, load names where the old checkpoint is
    rename = os.rename

    def rename_then_die(a, b):
        rename(a, b)
        _kill_me()

    def die_after_the_first_rename():
        os.rename = rename_then_die

    save_in_a_killed_child(
        forecaster(0), saved, "after the first rename", die_after_the_first_rename
    )
    with pytest.raises(FileNotFoundError, match=r"interrupted.*\.ckpt\..*\.old"):
        TTTForecaster.load(saved)


# ------------------------------------------------- read-only and full disks
def old_checkpoint_intact(path: Path, before: dict[str, bytes]) -> None:
    assert file_bytes(path) == before
    assert same_forecasts(TTTForecaster.load(path), forecaster(0))
    # no staging directory left beside it
    assert [p.name for p in path.parent.iterdir()] == [path.name]


@pytest.mark.skipif(
    os.geteuid() == 0, reason="root writes into a read-only directory anyway"
)
def test_a_read_only_directory_is_a_clear_error(saved):
    before = file_bytes(saved)
    saved.parent.chmod(0o555)
    try:
        with pytest.raises(PermissionError, match="previous one is unchanged"):
            forecaster(1).save(saved, overwrite=True)
    finally:
        saved.parent.chmod(0o755)
    old_checkpoint_intact(saved, before)


def fail_writing(name: str, code: int, half: bool = False):
    """A writer that fails with ``code`` on the file ``name`` (after writing half of it with ``half``)."""
    write = estimator._write

    def failing(file, data):
        if file.name != name:
            return write(file, data)
        if half:
            file.write_bytes(data[: len(data) // 2])
        raise OSError(code, os.strerror(code), str(file))

    return failing


def refuse_exchange(code: int):
    def refuse(a, b):
        raise OSError(code, os.strerror(code), str(b))

    return refuse


@pytest.mark.parametrize(
    "fault, code, exception",
    [
        # a read-only directory as a user who cannot write there
        # (the test runs as root, where chmod does not stop a write)
        ("create", errno.EACCES, PermissionError),
        ("swap", errno.EPERM, PermissionError),
        ("full disk", errno.ENOSPC, OSError),
    ],
)
def test_an_unwritable_target_or_a_full_disk_keeps_the_old_checkpoint(
    saved, monkeypatch, fault, code, exception
):
    if fault == "create":
        monkeypatch.setattr(estimator, "_write", fail_writing(estimator.CONFIG, code))
    elif fault == "swap":
        monkeypatch.setattr(estimator, "_exchange", refuse_exchange(code))
    else:
        monkeypatch.setattr(
            estimator, "_write", fail_writing(estimator.WEIGHTS, code, half=True)
        )
    before = file_bytes(saved)
    with pytest.raises(exception) as raised:
        forecaster(1).save(saved, overwrite=True)
    assert raised.value.errno == code
    assert str(saved) in str(raised.value)
    assert "the previous one is unchanged" in str(raised.value)
    old_checkpoint_intact(saved, before)


def test_a_new_checkpoint_that_fails_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(
        estimator, "_write", fail_writing(estimator.WEIGHTS, errno.ENOSPC)
    )
    with pytest.raises(OSError, match="nothing was saved"):
        forecaster(0).save(tmp_path / "new")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------ damaged checkpoints
def rewrite_config(path: Path, change) -> None:
    """Edit config.json and record its new checksum, as a tool that rewrote it would."""
    config = json.loads((path / estimator.CONFIG).read_text())
    change(config)
    (path / estimator.CONFIG).write_text(json.dumps(config))
    state = json.loads((path / estimator.STATE).read_text())
    state["checksums"][estimator.CONFIG] = estimator._sha256(path / estimator.CONFIG)
    (path / estimator.STATE).write_text(json.dumps(state))


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # in the payload; the header stays readable
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def drop_checksums(path: Path) -> None:
    state = json.loads(path.read_text())
    del state["checksums"]
    path.write_text(json.dumps(state))


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda p: flip_last_byte(p / estimator.WEIGHTS),
            r"weights\.safetensors is damaged: its SHA-256 differs",
        ),
        (
            lambda p: truncate(p / estimator.WEIGHTS),
            r"weights\.safetensors is damaged",
        ),
        (
            lambda p: (p / estimator.CONFIG).write_text(""),
            r"config\.json is damaged",
        ),
        (
            lambda p: truncate(p / estimator.STATE),
            r"state\.json is not valid JSON",
        ),
        (
            lambda p: (p / estimator.WEIGHTS).unlink(),
            r"not a tsgen checkpoint: weights\.safetensors is missing",
        ),
        (
            lambda p: drop_checksums(p / estimator.STATE),
            r"state\.json records no checksums",
        ),
        (
            lambda p: rewrite_config(p, lambda c: c.pop("hidden")),
            r"config\.json: TTTForecasterConfig: missing field\(s\) \['hidden'\]",
        ),
        (
            lambda p: rewrite_config(p, lambda c: c.update(hiden=8)),
            r"config\.json: TTTForecasterConfig: unknown field\(s\) \['hiden'\]",
        ),
        (
            lambda p: rewrite_config(p, lambda c: c.update(hidden=16)),
            r"weights\.safetensors does not match the config",
        ),
    ],
    ids=[
        "payload byte",
        "truncated weights",
        "empty config",
        "truncated state",
        "missing weights",
        "no checksums",
        "missing key",
        "unknown key",
        "config of another size",
    ],
)
def test_a_damaged_checkpoint_is_an_error_naming_the_file(saved, damage, message):
    damage(saved)
    before = file_bytes(saved)
    with pytest.raises(ValueError, match=message):
        TTTForecaster.load(saved)
    assert file_bytes(saved) == before  # a failed load changes nothing


def test_a_checkpoint_of_another_kind_names_both_kinds(saved):
    with pytest.raises(
        ValueError, match="holds a TTTForecaster checkpoint, not a ImagenI2R"
    ):
        ImagenI2R.load(saved)


def test_checkpoint_files_are_world_readable_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        path = forecaster(0).save(tmp_path / "ckpt")
    finally:
        os.umask(old)
    assert oct(path.stat().st_mode & 0o777) == "0o755"
    assert {oct(p.stat().st_mode & 0o777) for p in path.iterdir()} == {"0o644"}


def test_overwrite_replaces_only_a_checkpoint(tmp_path):
    keep = tmp_path / "notes"
    keep.mkdir()
    (keep / "todo.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a tsgen checkpoint"):
        forecaster(0).save(keep, overwrite=True)
    assert (keep / "todo.txt").read_text() == "mine"


# -------------------------------------------------------------- bad inputs
X_SINES = windows(n=8, length=10, features=2)
NAN = float("nan")


@functools.cache
def imputer():
    from tsgen.imputation import TTTImputer, TTTImputerConfig

    config = TTTImputerConfig(
        n_steps=8,
        n_features=2,
        n_layers=1,
        d_model=8,
        n_heads=2,
        d_ffn=8,
        mini_batch_size=4,
        epochs=2,
        patience=None,
        batch_size=8,
    )
    return TTTImputer(config).fit({"X": windows(n=24, length=8, missing=0.2)})


@functools.cache
def generator() -> ImagenI2R:
    return ImagenI2R(tiny_generation_config()).fit(
        windows(n=16, length=24, missing=0.3)
    )


def ttm_config():
    from tsgen.forecasting import TTMConfig

    return TTMConfig(
        model_path=None,
        context_length=32,
        forecast_length=6,
        num_epochs=1,
        batch_size=16,
        progress=False,
        device="cpu",
        training_mode="from_scratch",
    )


def cohort(n=80):
    t = pd.date_range("2024-01-01", periods=n, freq="5min")
    bg = 7 + 2 * np.sin(np.arange(n) / 8)
    return pd.DataFrame({"datetime": t, "p_num": "p1", "bg_mM": bg})


@functools.cache
def persistence():
    from tsgen.forecasting import Persistence

    return Persistence(ttm_config()).fit(cohort())


def linear_regression(alpha: float):
    from tsgen.forecasting import LinearRegression

    return LinearRegression(ttm_config(), alpha=alpha)


def diverged_generator() -> ImagenI2R:
    model = copy.deepcopy(generator())
    with torch.no_grad():
        for p in model.ema.module.parameters():
            p.fill_(1e38)
    return model


def imputer_without_a_held_out_value():
    from tsgen.imputation import TTTImputer

    x = windows(n=24, length=8, missing=0.2)
    return TTTImputer(copy.deepcopy(imputer().config)).fit(
        {"X": x}, {"X": x, "X_ori": x}
    )


def unfitted_imputer():
    from tsgen.imputation import TTTImputer

    return TTTImputer(copy.deepcopy(imputer().config)).impute({"X": X_SINES[:, :8]})


def scaler():
    return MinMaxScaler().fit(np.array([[1.0, 2.0], [3.0, 5.0]]))


BAD_INPUTS = {
    # adaptation
    "OptimizationParameters(momentum=nan)": (
        lambda: OptimizationParameters(optimizer="sgd", momentum=NAN),
        ValueError,
        "momentum must be a finite number >= 0; got nan",
    ),
    "OptimizationParameters(lr=nan)": (
        lambda: OptimizationParameters(lr=NAN),
        ValueError,
        "lr must be a finite positive number; got nan",
    ),
    "TTTForecasterConfig(alpha=nan)": (
        lambda: forecaster_config(alpha=NAN),
        ValueError,
        "TTTForecasterConfig.alpha must be a finite number >= 0",
    ),
    "TTTForecaster.predict before fit": (
        lambda: forecast(TTTForecaster(forecaster_config())),
        RuntimeError,
        "not trained: call fit",
    ),
    "TTTForecaster.predict(batch_size=0)": (
        lambda: forecaster(0).predict(X_SINES[:, :CONTEXT], batch_size=0),
        ValueError,
        "batch_size must be a positive integer; got 0",
    ),
    "TTTForecaster.predict diverging adaptation": (
        lambda: forecaster(0).predict(
            X_SINES[:, :CONTEXT], adapt={"num_steps": 1, "lr": 1e30}
        ),
        ValueError,
        "adaptation diverged",
    ),
    "TTTForecaster.fit(lr=1e8) diverges": (
        lambda: TTTForecaster(forecaster_config(lr=1e8)).fit(windows()),
        ValueError,
        "TTTForecaster training diverged",
    ),
    # forecasting
    "LinearRegression(alpha=nan)": (
        lambda: linear_regression(alpha=NAN),
        ValueError,
        "LinearRegression.alpha must be a finite number >= 0",
    ),
    "Persistence.predict(stride=0)": (
        lambda: persistence().predict(cohort(), stride=0),
        ValueError,
        "stride must be a positive integer; got 0",
    ),
    # imputation
    "train_naive(epochs=2.7)": (
        lambda: train_naive(NaiveTTTImputer(2), X_SINES, epochs=2.7),
        ParameterTypeError,
        "epochs must be an integer >= 0; got 2.7",
    ),
    "train_naive(batch_size=0)": (
        lambda: train_naive(NaiveTTTImputer(2), X_SINES, batch_size=0),
        ValueError,
        "batch_size must be a positive integer; got 0",
    ),
    "train_naive(lr=nan)": (
        lambda: train_naive(NaiveTTTImputer(2), X_SINES, lr=NAN),
        ValueError,
        "lr must be a finite positive number; got nan",
    ),
    "train_naive(lr=1e30) diverges": (
        lambda: train_naive(NaiveTTTImputer(2), X_SINES, epochs=3, lr=1e30),
        ValueError,
        "naive training diverged",
    ),
    "TTTImputer.impute before fit": (unfitted_imputer, RuntimeError, "not trained"),
    "TTTImputer.impute diverging adaptation": (
        lambda: imputer().impute(
            {"X": X_SINES[:, :8]}, adaptation={"num_steps": 1, "lr": 1e8}
        ),
        ValueError,
        "adaptation diverged",
    ),
    "TTTImputer.impute(adaptation momentum=nan)": (
        lambda: imputer().impute(
            {"X": X_SINES[:, :8]},
            adaptation={"num_steps": 1, "optimizer": "sgd", "momentum": NAN},
        ),
        ValueError,
        "momentum must be a finite number",
    ),
    "TTTImputer.fit with a val_set holding nothing out": (
        imputer_without_a_held_out_value,
        ValueError,
        "val_set holds nothing out",
    ),
    # generation
    "GenerationConfig(sigma_data=0)": (
        lambda: GenerationConfig(sigma_data=0),
        ValueError,
        "sigma_data must be a finite positive number; got 0",
    ),
    "GenerationConfig(grad_clip=0)": (
        lambda: GenerationConfig(grad_clip=0),
        ValueError,
        "grad_clip must be a finite positive number; got 0",
    ),
    "GenerationConfig(length='24')": (
        lambda: GenerationConfig(length="24"),
        ParameterTypeError,
        "GenerationConfig.length must be a positive integer; got '24'",
    ),
    "GenerationConfig(seed='abc')": (
        lambda: GenerationConfig(seed="abc"),
        ParameterTypeError,
        "GenerationConfig.seed must be an integer >= 0; got 'abc'",
    ),
    "DelayEmbedder(24.9)": (
        lambda: DelayEmbedder(24.9, 3, 8),
        ParameterTypeError,
        "DelayEmbedder length must be a positive integer; got 24.9",
    ),
    "ImagenI2R.sample before fit": (
        lambda: ImagenI2R(generator().config).sample(2),
        RuntimeError,
        "not fitted",
    ),
    "ImagenI2R.sample(2.7)": (
        lambda: generator().sample(2.7),
        ParameterTypeError,
        r"n \(the number of samples\) must be a positive integer; got 2.7",
    ),
    "ImagenI2R.sample(steps=0)": (
        lambda: generator().sample(2, steps=0),
        ValueError,
        "steps must be a positive integer; got 0",
    ),
    "ImagenI2R.sample(steps=2.5)": (
        lambda: generator().sample(2, steps=2.5),
        ParameterTypeError,
        "steps must be a positive integer; got 2.5",
    ),
    "ImagenI2R.sample(batch_size=0)": (
        lambda: generator().sample(2, batch_size=0),
        ValueError,
        "batch_size must be a positive integer; got 0",
    ),
    "ImagenI2R.sample(s_churn=nan)": (
        lambda: generator().sample(2, s_churn=NAN),
        ValueError,
        "s_churn must be a finite number >= 0; got nan",
    ),
    "ImagenI2R.sample(seed='abc')": (
        lambda: generator().sample(2, seed="abc"),
        ValueError,
        "seed must be a non-negative integer; got 'abc'",
    ),
    "ImagenI2R.sample diverging": (
        lambda: diverged_generator().sample(2),
        ValueError,
        "sampling diverged",
    ),
    "ImagenI2R.fit(epochs='1')": (
        lambda: ImagenI2R(generator().config).fit(windows(length=24), epochs="1"),
        ParameterTypeError,
        "epochs must be an integer >= 0; got '1'",
    ),
    # data
    "MinMaxScaler.fit_transform(1-D)": (
        lambda: MinMaxScaler().fit_transform(np.arange(5.0)),
        ValueError,
        r"x is 1-D .*x\[:, None\]",
    ),
    "MinMaxScaler.transform(inf)": (
        lambda: scaler().transform(np.array([[np.inf, 1.0]])),
        ValueError,
        r"MinMaxScaler\.transform: x holds 1 infinite value",
    ),
    "MinMaxScaler.inverse_transform(inf)": (
        lambda: scaler().inverse_transform(np.array([[1.0, -np.inf]])),
        ValueError,
        r"MinMaxScaler\.inverse_transform: x holds 1 infinite value",
    ),
    "torch_generator('abc')": (
        lambda: torch_generator("abc"),
        ValueError,
        "seed must be a non-negative integer; got 'abc'",
    ),
    # metrics
    "distort(shift, nan)": (
        lambda: distort(X_SINES, "shift", NAN),
        ValueError,
        "amount must be a finite number >= 0; got nan",
    ),
    "distort(noise, inf)": (
        lambda: distort(X_SINES, "noise", np.inf),
        ValueError,
        "amount must be a finite number >= 0; got inf",
    ),
    "distort(shift, '1')": (
        lambda: distort(X_SINES, "shift", "1"),
        ParameterTypeError,
        "amount must be a finite number >= 0; got '1'",
    ),
    "time_in_range(low > high)": (
        lambda: time_in_range([100.0, 150.0], low=180, high=70),
        ValueError,
        "need finite low < high",
    ),
    "time_in_range(negative glucose)": (
        lambda: time_in_range([-5.0, 120.0]),
        ValueError,
        "negative glucose",
    ),
    "imputation_errors with a zero truth (MRE)": (
        lambda: imputation_errors(
            np.ones((1, 2, 1)), np.zeros((1, 2, 1)), np.ones((1, 2, 1))
        ),
        ValueError,
        "MRE .* is undefined",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_a_bad_input_is_a_clear_error(case):
    call, exception, message = BAD_INPUTS[case]
    with pytest.raises(exception, match=message):
        call()


def test_a_parameter_type_error_is_also_a_value_error():
    # code that caught ValueError for a bad value keeps catching it
    with pytest.raises(ValueError):
        GenerationConfig(length="24")
    with pytest.raises(TypeError):
        GenerationConfig(length="24")


def test_observed_values_of_any_magnitude_come_back_exactly():
    x = windows(n=8, length=8, missing=0.3) * 1e8 + 1.0
    observed = ~np.isnan(x)
    imputed = imputer().impute({"X": x})
    assert imputed.dtype == np.float64
    np.testing.assert_array_equal(imputed[observed], x[observed])
    big = windows(n=4, length=24, missing=0.3) * 1e8 + 1.0
    completed = generator().predict(big)
    np.testing.assert_array_equal(completed[~np.isnan(big)], big[~np.isnan(big)])
    assert np.isfinite(completed).all()

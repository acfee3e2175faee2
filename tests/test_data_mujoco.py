import os
import sys

import numpy as np
import pytest

from tsgen.data import hopper_trajectories, mujoco, mujoco_windows

N, LENGTH = 8, 100


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return cache, hopper_trajectories(N, LENGTH, seed=0, cache_dir=cache)


def test_shape_and_start_from_latent_odes_initial_states(runs):
    _, data = runs
    assert data.shape == (N, LENGTH, 14) and len(mujoco.FEATURES) == 14
    assert np.isfinite(data).all()
    # frame 0 is the drawn state itself: qpos then qvel, in Latent ODE's ranges
    start = data[:, 0]
    np.testing.assert_array_equal(start, mujoco.initial_states(N, seed=0))
    assert ((start[:, :2] >= 0) & (start[:, :2] <= 0.5)).all()
    assert (np.abs(start[:, 2:7]) <= 2).all() and (np.abs(start[:, 7:]) <= 5).all()
    # passive dynamics: the state moves, and stays physically plausible
    assert (np.abs(np.diff(data, axis=1)).sum(axis=(1, 2)) > 0).all()
    assert np.abs(data[..., :7]).max() < 20 and np.abs(data[..., 7:]).max() < 500


def test_positions_integrate_velocities(runs):
    # hinge and slide joints: qpos[t+1] = qpos[t] + 5 ms * qvel[t+1] (semi-implicit Euler)
    _, data = runs
    np.testing.assert_allclose(
        np.diff(data[..., :7], axis=1), 0.005 * data[:, 1:, 7:], atol=1e-9
    )


def test_same_seed_same_runs_other_seed_other_runs(runs, tmp_path):
    _, data = runs
    # an empty cache: simulated again, not read back
    again = hopper_trajectories(N, LENGTH, seed=0, cache_dir=tmp_path / "a")
    np.testing.assert_array_equal(again, data)
    other = hopper_trajectories(N, LENGTH, seed=1, cache_dir=tmp_path / "b")
    assert not np.allclose(other[:, 0], data[:, 0])


def test_cache_is_written_once_and_serves_smaller_requests(runs, monkeypatch):
    cache, data = runs
    files = list((cache / "mujoco").glob("*.npy"))
    assert len(files) == 1 and "seed0_n8_frames100" in files[0].name
    assert not list((cache / "mujoco").glob("*.partial"))

    def no_simulation(*args, **kwargs):
        raise AssertionError("simulated although the cache holds the runs")

    monkeypatch.setattr(mujoco, "simulate", no_simulation)
    np.testing.assert_array_equal(hopper_trajectories(N, LENGTH, cache_dir=cache), data)
    # fewer runs and frames are a prefix of the cached ones
    np.testing.assert_array_equal(
        hopper_trajectories(3, 24, cache_dir=cache), data[:3, :24]
    )


def test_a_short_simulation_is_the_prefix_of_a_long_one(runs, tmp_path):
    _, data = runs
    short = hopper_trajectories(3, 24, seed=0, cache_dir=tmp_path)
    np.testing.assert_array_equal(short, data[:3, :24])


def test_latent_ode_random_windows(runs):
    cache, data = runs
    windows = hopper_trajectories(N, 40, seed=0, frames=LENGTH, cache_dir=cache)
    assert windows.shape == (N, 40, 14)
    starts = []
    for run, window in zip(data, windows, strict=True):
        (hits,) = np.nonzero(run[: LENGTH - 40 + 1, 0] == window[0, 0])
        assert len(hits) == 1
        np.testing.assert_array_equal(run[hits[0] : hits[0] + 40], window)
        starts.append(hits[0])
    assert len(set(starts)) > 1  # random starts, not all at frame 0


def test_windows_are_min_max_scaled(runs):
    cache, data = runs
    windows, scaler = mujoco_windows(24, n=N, seed=0, cache_dir=cache)
    assert windows.shape == (N, 24, 14)
    flat = windows.reshape(-1, 14)
    np.testing.assert_allclose(flat.min(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(flat.max(axis=0), 1, atol=1e-6)
    np.testing.assert_allclose(scaler.inverse_transform(windows), data[:, :24])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"n": 0}, "n"),
        ({"length": 2.5}, "length"),
        ({"frames": 10, "length": 20}, "frames"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments_are_named(kwargs, name, tmp_path):
    with pytest.raises(ValueError, match=name):
        hopper_trajectories(**{"n": 2, "cache_dir": tmp_path, **kwargs})
    assert not (tmp_path / "mujoco").exists()


def test_missing_dm_control_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "dm_control", None)
    with pytest.raises(ImportError, match="dm-control==1.0.50"):
        hopper_trajectories(2, 3, cache_dir=tmp_path)


def test_a_mujoco_dm_control_cannot_use_is_reported(monkeypatch, tmp_path):
    from dm_control import suite

    def load(*args, **kwargs):  # what dm-control 1.0.50 does with mujoco 4.0.0
        raise AttributeError("'MjModel' object has no attribute 'flex_vertedge'")

    monkeypatch.setattr(suite, "load", load)
    with pytest.raises(RuntimeError, match=r"flex_vertedge.*mujoco>=3.17,<4"):
        hopper_trajectories(2, 3, cache_dir=tmp_path)


def test_no_rendering_backend_is_asked_for(monkeypatch, tmp_path):
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    hopper_trajectories(1, 2, cache_dir=tmp_path)
    assert os.environ["MUJOCO_GL"] == "disable"

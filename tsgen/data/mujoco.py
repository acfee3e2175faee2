"""MuJoCo hopper trajectories: the physics data set of Latent ODE (Rubanova et al. 2019).

The fourth benchmark of the ImagenI2R paper (after sines, stock and energy)
is the "MuJoCo" data set of Latent ODE, reused by GT-GAN, KoVAE, Diffusion-TS
and ImagenI2R: the passive dynamics of the DeepMind Control Suite hopper
(``suite.load("hopper", "stand")``, physics only, no rendering) from random
initial states. Each trajectory records, before every ``physics.step()``
(5 ms), the 7 joint positions ``qpos`` and the 7 joint velocities ``qvel``:
14 features, :data:`FEATURES`. The controls stay at zero.

Latent ODE's protocol (``mujoco_physics.py``), followed here:

* initial state per trajectory: the root's x and z positions uniform in
  [0, 0.5] (``z > 0`` keeps the hopper above the ground), the other five
  positions (root angle and four joint angles) uniform in [-2, 2], all seven
  velocities uniform in [-5, 5];
* one physics step per recorded frame; 10,000 trajectories.

Where this module departs from it (the paper's way is an option where it
changes the data):

* Random numbers come from ``tsgen.runtime.numpy_rng(seed)`` (NumPy's
  ``Generator``), not from the global legacy RNG seeded with 123, so the
  arrays are not the bytes of Latent ODE's ``training.pt``; the distribution
  is the same. The initial states of all trajectories are drawn at once, one
  row each, so the first ``n`` trajectories of a larger set are the set of
  size ``n``, and the first ``length`` frames of a longer run are the run of
  ``length`` frames.
* Latent ODE simulates 200 frames and its interpolation task cuts a random
  100-frame window out of each trajectory; the generation benchmarks (GT-GAN,
  Diffusion-TS, ImagenI2R) use the frames from the initial state on. The
  default here is the latter; ``frames=200`` with ``length=100`` gives Latent
  ODE's random windows (starts drawn from a seed derived from ``seed``).
* Latent ODE normalises with ``(x - min) / max`` per feature (its
  ``normalize_data``), which is not a map to [0, 1]; :func:`mujoco_windows`
  uses the min-max scaling of the generation benchmarks (GT-GAN, ImagenI2R,
  Diffusion-TS: per feature, over every time step of every window).

Simulated runs are cached as ``.npy`` under ``tsgen.data.data_dir() /
"mujoco"`` (``$TSGEN_DATA_DIR``), keyed by the MuJoCo version, the seed, the
number of trajectories and frames, so a different MuJoCo never serves stale
numbers. ``dm-control`` 1.0.50 needs ``mujoco`` 3.x: with ``mujoco`` 4.0.0
``suite.load`` fails (``'MjModel' object has no attribute 'flex_vertedge'``).
"""

from __future__ import annotations

import logging
import os
from importlib import metadata
from pathlib import Path

import numpy as np

from .. import runtime
from .scaling import MinMaxScaler
from .timegan import data_dir

log = logging.getLogger(__name__)

JOINTS = ("rootx", "rootz", "rooty", "waist", "hip", "knee", "ankle")
FEATURES = tuple(f"qpos_{j}" for j in JOINTS) + tuple(f"qvel_{j}" for j in JOINTS)
# Latent ODE's uniform initial state: (low, high) for qpos[:2], qpos[2:], qvel
INITIAL_RANGES = {"root_xz": (0.0, 0.5), "angles": (-2.0, 2.0), "velocity": (-5.0, 5.0)}
INSTALL_HINT = (
    "pip install 'dm-control==1.0.50' 'mujoco>=3.17,<4' (pinned in requirements.lock)"
)


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def _hopper_physics():
    """The hopper's ``Physics``, with a clear error when dm_control or a matching MuJoCo is missing."""
    # physics only: without this dm_control looks for GLFW/EGL/OSMesa at import and
    # warns on a headless machine; a backend the caller chose is left alone
    os.environ.setdefault("MUJOCO_GL", "disable")
    try:
        from dm_control import suite
    except ImportError as err:
        raise ImportError(
            f"the MuJoCo hopper data set needs dm_control and mujoco: {INSTALL_HINT}"
        ) from err
    try:
        return suite.load("hopper", "stand").physics
    except AttributeError as err:
        raise RuntimeError(
            f"dm-control {metadata.version('dm-control')} cannot load the hopper with "
            f"mujoco {metadata.version('mujoco')} ({err}); {INSTALL_HINT}"
        ) from err


def initial_states(n: int, seed: int = 0) -> np.ndarray:
    """Latent ODE's random initial states ``[n, 14]`` (``qpos`` then ``qvel``); row ``i`` does not depend on ``n``."""
    n = _positive_int(n, "n")
    rng = runtime.numpy_rng(seed)
    lows = np.repeat([r[0] for r in INITIAL_RANGES.values()], [2, 5, 7])
    highs = np.repeat([r[1] for r in INITIAL_RANGES.values()], [2, 5, 7])
    return rng.uniform(lows, highs, size=(n, len(FEATURES)))


def simulate(states: np.ndarray, frames: int, progress: bool = False) -> np.ndarray:
    """Run the hopper from each initial state: ``[n, frames, 14]``, the state before each step."""
    frames = _positive_int(frames, "frames")
    states = np.asarray(states, dtype=float)
    if states.ndim != 2 or states.shape[1] != len(FEATURES) or len(states) == 0:
        raise ValueError(
            f"states must have shape [n, {len(FEATURES)}]; got {states.shape}"
        )
    physics = _hopper_physics()
    names = tuple(physics.named.data.qpos.axes.row.names)
    if names != JOINTS:
        raise RuntimeError(f"the hopper's joints are {names}; expected {JOINTS}")
    n_pos = len(JOINTS)
    out = np.empty((len(states), frames, len(FEATURES)))
    bar = runtime.progress(
        range(len(states)), enabled=progress, desc="MuJoCo hopper", total=len(states)
    )
    for i in bar:
        # reset_context zeroes the rest of the state and runs mj_forward on exit
        with physics.reset_context():
            physics.data.qpos[:] = states[i, :n_pos]
            physics.data.qvel[:] = states[i, n_pos:]
        for t in range(frames):
            out[i, t, :n_pos] = physics.data.qpos
            out[i, t, n_pos:] = physics.data.qvel
            physics.step()
    return out


def _cache_path(cache_dir, n: int, frames: int, seed: int) -> Path:
    version = metadata.version("mujoco")
    name = f"hopper_mujoco{version}_seed{seed}_n{n}_frames{frames}.npy"
    return Path(cache_dir or data_dir()) / "mujoco" / name


def _cached(path: Path, n: int, frames: int) -> np.ndarray | None:
    """The first ``n`` runs and ``frames`` frames of the smallest cached simulation that holds them."""
    prefix = path.name.split("_n")[0] + "_n"
    covering = []
    for candidate in path.parent.glob(prefix + "*_frames*.npy"):
        try:
            size, length = candidate.stem[len(prefix) :].split("_frames")
            size, length = int(size), int(length)
        except ValueError:
            continue
        if size >= n and length >= frames:
            covering.append((size * length, candidate))
    if not covering:
        return None
    data = np.load(min(covering)[1], mmap_mode="r")
    return np.array(data[:n, :frames])


def hopper_trajectories(
    n: int = 10_000,
    length: int = 100,
    seed: int = 0,
    frames: int | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> np.ndarray:
    """``n`` hopper trajectories ``[n, length, 14]`` in physical units (:data:`FEATURES`), cached on disk.

    ``frames`` is how many steps are simulated per trajectory (default
    ``length``: each trajectory starts at its random initial state, the
    generation benchmarks' way); ``frames > length`` cuts a random window of
    ``length`` out of each one, Latent ODE's way (``frames=200``,
    ``length=100``). The simulation is cached under ``cache_dir`` (default
    ``tsgen.data.data_dir()``) / ``mujoco``, and a cached larger simulation of
    the same seed serves a smaller one; ``progress`` shows a bar while
    simulating. The same arguments give the same array.
    """
    n, length = _positive_int(n, "n"), _positive_int(length, "length")
    seed = runtime.check_seed(seed)
    frames = length if frames is None else _positive_int(frames, "frames")
    if frames < length:
        raise ValueError(f"frames ({frames}) must be at least length ({length})")
    path = _cache_path(cache_dir, n, frames, seed)
    # a larger cached run holds this one: its first n runs and frames frames
    data = _cached(path, n, frames)
    if data is None:
        data = simulate(initial_states(n, seed), frames, progress=progress)
        with runtime.atomic_file(path) as partial, open(partial, "wb") as f:
            np.save(f, data)  # np.save(path) would add ".npy" to the name
        log.info("MuJoCo hopper: %d trajectories simulated into %s", n, path)
    if frames == length:
        return data
    starts = runtime.numpy_rng(runtime.derive_seed(seed, 1)).integers(
        0, frames - length + 1, size=n
    )
    return data[np.arange(n)[:, None], starts[:, None] + np.arange(length)]


def mujoco_windows(
    length: int = 24,
    n: int = 10_000,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, MinMaxScaler]:
    """The generation benchmark: ``n`` hopper runs of ``length`` frames, min-max scaled to [0, 1].

    The scaler is fitted per feature over every frame of every run (the
    benchmarks' protocol, as :func:`tsgen.data.timegan_windows` for stock and
    energy); it is returned to map samples back to physical units.
    """
    runs = hopper_trajectories(n, length, seed, cache_dir=cache_dir, progress=progress)
    scaler = MinMaxScaler().fit(runs)
    return scaler.transform(runs), scaler

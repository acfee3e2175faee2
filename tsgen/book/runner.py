"""Execute the book's notebooks with papermill.

papermill only *warns* about a parameter the notebook does not declare; here an
unknown name is an error that lists the valid ones, so a typo in a profile or on
the command line never runs a chapter at its defaults by accident.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import papermill
import yaml

from .chapter import PROFILE_ENV, RESULTS_ENV

PROFILES_DIR = Path("book/profiles")


def notebook_parameters(notebook: str | Path) -> dict[str, dict]:
    """The names (and inferred types and defaults) of a notebook's ``parameters`` cell."""
    params = papermill.inspect_notebook(str(notebook))
    if not params:
        raise ValueError(f"{notebook} has no cell tagged 'parameters'")
    return params


def check_parameters(notebook: str | Path, parameters: dict) -> None:
    """Raise ``ValueError`` if ``parameters`` names anything the notebook does not declare."""
    valid = notebook_parameters(notebook)
    unknown = sorted(set(parameters) - set(valid))
    if unknown:
        raise ValueError(
            f"{Path(notebook).name}: unknown parameter(s) {', '.join(unknown)}; "
            f"valid names are: {', '.join(valid)}"
        )


def load_profile(
    profile: str, profiles_dir: str | Path = PROFILES_DIR
) -> dict[str, dict]:
    """Per-notebook overrides from ``<profiles_dir>/<profile>.yaml`` (``{stem: {name: value}}``).

    The ``default`` profile needs no file: it is every notebook's own defaults.
    """
    path = Path(profiles_dir) / f"{profile}.yaml"
    if not path.exists():
        if profile == "default":
            return {}
        known = sorted(p.stem for p in Path(profiles_dir).glob("*.yaml"))
        raise ValueError(
            f"unknown profile {profile!r}: {path} "
            f"does not exist; known profiles: {known}"
        )
    overrides = yaml.safe_load(path.read_text()) or {}
    if not isinstance(overrides, dict) or not all(
        isinstance(v, dict) for v in overrides.values()
    ):
        raise ValueError(f"{path} must map notebook names to parameter mappings")
    return overrides


def execute(
    notebook: str | Path,
    output: str | Path,
    parameters: dict | None = None,
    kernel_name: str = "python3",
    log_output: bool = False,
) -> float:
    """Run ``notebook`` into ``output`` with ``parameters``; return the wall time in seconds.

    The kernel's working directory is the notebook's folder, as under nbval, so
    a chapter behaves the same in the book build and in the regression test.
    """
    parameters = dict(parameters or {})
    check_parameters(notebook, parameters)
    # the kernel runs in the notebook's folder: pin a relative path first
    if RESULTS_ENV in os.environ:
        os.environ[RESULTS_ENV] = str(Path(os.environ[RESULTS_ENV]).resolve())
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    papermill.execute_notebook(
        str(notebook),
        str(output),
        parameters=parameters,
        kernel_name=kernel_name,
        cwd=str(Path(notebook).parent),
        log_output=log_output,
        progress_bar=False,
    )
    return time.perf_counter() - start


def run_notebooks(
    notebooks_dir: str | Path = "notebooks",
    names: list[str] | None = None,
    output_dir: str | Path | None = None,
    profile: str = "default",
    extra: dict | None = None,
    profiles_dir: str | Path = PROFILES_DIR,
) -> dict[str, float]:
    """Execute the chapters ``names`` (all by default) with their profile overrides plus ``extra``.

    ``output_dir=None`` executes in place, refreshing the stored outputs that
    nbval compares against. Notebook and parameter names are all checked before
    anything runs. Returns the wall time of each chapter in seconds.
    """
    available = {p.stem: p for p in sorted(Path(notebooks_dir).glob("*.ipynb"))}
    wanted = [Path(n).stem for n in names] if names else list(available)
    overrides = load_profile(profile, profiles_dir)
    for label, stems in (
        ("unknown chapter(s)", wanted),
        (f"profile {profile!r} names unknown chapter(s)", overrides),
    ):
        missing = sorted(set(stems) - set(available))
        if missing:
            raise ValueError(
                f"{label}: {missing}; chapters in {notebooks_dir}: {sorted(available)}"
            )
    plan = []
    for stem in wanted:
        params = {**overrides.get(stem, {}), **(extra or {})}
        check_parameters(available[stem], params)
        plan.append((available[stem], params))
    times = {}
    # inherited by the kernels: chapters label their results with it
    os.environ[PROFILE_ENV] = profile
    for notebook, params in plan:
        output = notebook if output_dir is None else Path(output_dir) / notebook.name
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items()) or "defaults"
        print(
            f"[tsgen.book] {notebook} -> {output} ({profile} profile: {shown})",
            flush=True,
        )
        times[notebook.stem] = execute(notebook, output, params)
        print(
            f"[tsgen.book] {notebook.stem} done in {times[notebook.stem]:.1f} s",
            flush=True,
        )
    return times

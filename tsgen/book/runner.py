"""Execute the book's notebooks with papermill, each at most once per change of its inputs.

papermill only *warns* about a parameter the notebook does not declare; here an
unknown name, or a value whose type differs from the default's, is an error that
names the parameter, so a typo in a profile or on the command line never runs a
chapter at its defaults (or dies inside the kernel) by accident.

An executed copy records the SHA-256 of its inputs (:func:`inputs_digest`) in
its metadata; :func:`run_notebooks` skips a chapter whose copy is up to date, so
``make test`` and ``make book`` share one execution of each chapter.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import nbformat
import papermill
import yaml

import tsgen

from .chapter import DEVICE_CHECK_ENV, PROFILE_ENV, RESULTS_ENV

PROFILES_DIR = Path("book/profiles")
REPO = Path(tsgen.__file__).resolve().parent.parent
# The lock files that fix every package version: part of every chapter's inputs.
LOCK_FILES = ("requirements.lock", "constraints.txt")
# A chapter with this parameter reads other chapters' results files (the results
# chapter): those files, the committed ones and the sweeps are among its inputs.
READS_RESULTS = "results_directory"
METADATA_KEY = "tsgen"
# The kernels' numerics, the same on every x86-64 machine with AVX2: torch's own
# kernels, MKL, oneDNN, NumPy and OpenBLAS pick their code path (and so their
# summation order and last bits) by the CPU's instruction set, and a reduction splits
# by thread count; training amplifies those last-bit differences into visibly
# different numbers. Set in the environment to override (e.g. OMP_NUM_THREADS=16 for
# speed, at the cost of matching the references).
NUMERICS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    "OPENBLAS_CORETYPE": "Haswell",
    "OMP_NUM_THREADS": "2",
}


def numerics_environment() -> dict[str, str]:
    """:data:`NUMERICS`, each overridden by the environment variable of the same name."""
    return {name: os.environ.get(name, value) for name, value in NUMERICS.items()}


def notebook_parameters(notebook: str | Path) -> dict[str, dict]:
    """The names (and inferred types and defaults) of a notebook's ``parameters`` cell."""
    params = papermill.inspect_notebook(str(notebook))
    if not params:
        raise ValueError(f"{notebook} has no cell tagged 'parameters'")
    return params


def check_parameters(notebook: str | Path, parameters: dict) -> dict:
    """``parameters`` checked against the notebook's ``parameters`` cell; returns them, coerced.

    An unknown name is a ``ValueError`` that lists the valid ones; a value whose
    type is not the default's is a ``TypeError`` naming the parameter, the
    default and the value. An int stands for a float, ``None`` is accepted for
    any parameter (chapters read it as "not set", e.g. ``ts2vec_iterations:
    null`` for the published budget), and a string written as a number for a
    float parameter is read as one (YAML 1.1 reads ``1e-3`` as the string
    ``'1e-3'``).
    """
    valid = notebook_parameters(notebook)
    unknown = sorted(set(parameters) - set(valid))
    if unknown:
        raise ValueError(
            f"{Path(notebook).name}: unknown parameter(s) {', '.join(unknown)}; "
            f"valid names are: {', '.join(valid)}"
        )
    return {
        name: _coerce(Path(notebook).name, name, value, valid[name]["default"])
        for name, value in parameters.items()
    }


def _coerce(notebook: str, name: str, value, default_source: str):
    """``value`` for parameter ``name`` if it has the type of the default (see :func:`check_parameters`)."""
    try:
        default = ast.literal_eval(default_source)
    except (ValueError, SyntaxError):  # an expression, not a literal: no type to check
        return value
    if default is None or value is None:
        return value
    expected = type(default)
    if expected is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, expected) and (expected is bool) == isinstance(value, bool):
        return value
    raise TypeError(
        f"{notebook}: parameter {name} expects {expected.__name__} like its default "
        f"{default_source}; got {type(value).__name__} {value!r}"
    )


def load_profile(
    profile: str, profiles_dir: str | Path = PROFILES_DIR
) -> dict[str, dict]:
    """Per-notebook overrides from ``<profiles_dir>/<profile>.yaml`` (``{stem: {name: value}}``).

    The ``default`` profile needs no file: it is every notebook's own defaults.
    A top-level ``extends: <base>`` starts from the base profile's overrides
    (which may extend another) and merges the file's per chapter, the file's
    values winning; an unknown base, or a cycle, is a ``ValueError``.
    """
    layers, name, chain = [], profile, []
    while name is not None:
        path = Path(profiles_dir) / f"{name}.yaml"
        if not path.exists():
            if name == "default":
                break
            known = sorted(p.stem for p in Path(profiles_dir).glob("*.yaml"))
            extended = f" (extended by {chain[-1]!r})" if chain else ""
            raise ValueError(
                f"unknown profile {name!r}{extended}: {path} "
                f"does not exist; known profiles: {known}"
            )
        chain.append(name)
        overrides = yaml.safe_load(path.read_text()) or {}
        name = overrides.pop("extends", None) if isinstance(overrides, dict) else None
        if not isinstance(overrides, dict) or not all(
            isinstance(v, dict) for v in overrides.values()
        ):
            raise ValueError(f"{path} must map notebook names to parameter mappings")
        if name is not None and (not isinstance(name, str) or name in chain):
            raise ValueError(
                f"{path}: extends must name another profile, without a cycle "
                f"({' -> '.join(chain)}); got {name!r}"
            )
        layers.append(overrides)
    merged: dict[str, dict] = {}
    for overrides in reversed(layers):  # the base first, so the extending file wins
        for stem, params in overrides.items():
            merged[stem] = {**merged.get(stem, {}), **params}
    return merged


def execute(
    notebook: str | Path,
    output: str | Path,
    parameters: dict | None = None,
    kernel_name: str = "python3",
    log_output: bool = False,
) -> float:
    """Run ``notebook`` into ``output`` with ``parameters``; return the wall time in seconds.

    The kernel's working directory is the notebook's folder, wherever the
    executed copy goes, so relative paths in a chapter mean the same in every run.
    """
    parameters = check_parameters(notebook, dict(parameters or {}))
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


def inputs_digest(
    notebook: str | Path,
    profile: str,
    parameters: dict,
    results: Path | None = None,
) -> str:
    """SHA-256 of everything that can change the executed ``notebook``.

    The notebook's cells (sources and tags, not outputs), every source file of
    :mod:`tsgen`, the lock files, the Python and torch versions, the profile and
    the parameters, the device-check switch and the kernels' numerics
    (:func:`numerics_environment`); the chapter's committed results files of
    the other profiles; for a chapter that reads results (see
    ``READS_RESULTS``), also the results files in ``results``, the committed
    ones and the sweeps. The data cache is not an input: a
    chapter's numbers must not depend on whether it was warm.
    """
    import torch

    digest = hashlib.sha256()

    def add(label: str, data: bytes | str) -> None:
        data = data.encode() if isinstance(data, str) else data
        digest.update(f"{label}\0{len(data)}\0".encode() + data)

    for cell in nbformat.read(notebook, as_version=4).cells:
        add(cell.cell_type, cell.source + json.dumps(cell.metadata.get("tags", [])))
    package = Path(tsgen.__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        add(str(path.relative_to(package)), path.read_bytes())
    for name in LOCK_FILES:
        if (REPO / name).exists():
            add(name, (REPO / name).read_bytes())
    setting = {
        "profile": profile,
        "parameters": parameters,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device check": os.environ.get(DEVICE_CHECK_ENV, ""),
        "numerics": numerics_environment(),
    }
    add("setting", json.dumps(setting, sort_keys=True, default=repr))
    # a chapter may show its own results of other profiles (chapter 7 puts the
    # smoke, reference and GPU runs side by side): those files are inputs
    stem = Path(notebook).stem
    for path in sorted((REPO / "book" / "results").glob(f"{stem}.*.json")):
        if path.name != f"{stem}.{profile}.json":
            add(path.name, path.read_bytes())
    if READS_RESULTS in notebook_parameters(notebook):
        own = f"{stem}."
        for folder in {results, REPO / "book" / "results", REPO / "book" / "sweeps"}:
            if folder is None or not folder.exists():
                continue
            for path in sorted(folder.rglob("*.json")) + sorted(folder.rglob("*.csv")):
                if not path.name.startswith(own):
                    add(str(path), path.read_bytes())
    return digest.hexdigest()


def up_to_date(output: Path, digest: str, results: Path) -> bool:
    """Whether ``output`` was executed from inputs with ``digest`` and its results files are still there."""
    if not output.exists():
        return False
    record = nbformat.read(output, as_version=4).metadata.get(METADATA_KEY, {})
    return record.get("inputs") == digest and all(
        (results / name).exists() for name in record.get("results", [])
    )


def run_notebooks(
    notebooks_dir: str | Path = "notebooks",
    names: list[str] | None = None,
    output_dir: str | Path | None = None,
    profile: str = "default",
    extra: dict | None = None,
    profiles_dir: str | Path = PROFILES_DIR,
    force: bool = False,
    jobs: int = 1,
) -> dict[str, float]:
    """Execute the chapters ``names`` (all by default) with their profile overrides plus ``extra``.

    ``output_dir=None`` executes in place, refreshing the stored outputs and
    the committed results files (``book/results``), the references that
    ``make test`` compares a run with. Otherwise executed copies go to
    ``output_dir`` and their results files to ``output_dir/results`` (unless
    ``$TSGEN_RESULTS_DIR`` says otherwise), and a chapter whose copy is up to
    date with its inputs is skipped unless ``force``. Notebook and parameter
    names and types are all checked before anything runs; ``jobs`` chapters
    run at a time. Returns the wall time of each chapter executed, in seconds.
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
        plan.append((available[stem], check_parameters(available[stem], params)))
    # inherited by the kernels: chapters label their results with the profile, and
    # write them beside the executed copies (in place: to the committed references)
    environment = {PROFILE_ENV: profile, **numerics_environment()}
    if output_dir is not None and RESULTS_ENV not in os.environ:
        environment[RESULTS_ENV] = str(Path(output_dir).resolve() / "results")
    with _environment(environment):
        return _run(plan, output_dir, profile, force, jobs)


def _run(plan, output_dir, profile: str, force: bool, jobs: int) -> dict[str, float]:
    """Execute the chapters of ``plan`` that are not up to date, ``jobs`` at a time.

    A chapter that reads results (``READS_RESULTS``) waits for every other
    chapter, and its inputs are read after they finished. Each chapter's kernel
    pins its own numerics and threads, so running two at once changes the wall
    times only.
    """
    results = Path(os.environ.get(RESULTS_ENV, REPO / "book" / "results")).resolve()
    readers = [item for item in plan if READS_RESULTS in notebook_parameters(item[0])]
    others = [item for item in plan if item not in readers]
    times = {}
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for stage in (others, readers):
            running = {}
            for notebook, params in stage:
                output = (
                    notebook if output_dir is None else Path(output_dir) / notebook.name
                )
                digest = inputs_digest(notebook, profile, params, results)
                if (
                    output_dir is not None
                    and not force
                    and up_to_date(output, digest, results)
                ):
                    print(
                        f"[tsgen.book] {notebook.stem} is up to date in {output} "
                        f"(inputs {digest[:12]}): not executed again",
                        flush=True,
                    )
                    continue
                shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
                print(
                    f"[tsgen.book] {notebook} -> {output} "
                    f"({profile} profile: {shown or 'defaults'})",
                    flush=True,
                )
                future = pool.submit(execute, notebook, output, params)
                running[future] = (notebook, output, digest)
            for future in as_completed(running):
                notebook, output, digest = running[future]
                try:
                    times[notebook.stem] = future.result()
                except BaseException:
                    # fail fast: the queued chapters are not started
                    for queued in running:
                        queued.cancel()
                    raise
                if output_dir is not None:
                    # Chapter.save_results names the file after the chapter
                    written = sorted(
                        p.name for p in results.glob(f"{notebook.stem}.{profile}.json")
                    )
                    executed = nbformat.read(output, as_version=4)
                    executed.metadata[METADATA_KEY] = {
                        "inputs": digest,
                        "results": written,
                    }
                    nbformat.write(executed, output)
                print(
                    f"[tsgen.book] {notebook.stem} done in "
                    f"{times[notebook.stem]:.1f} s",
                    flush=True,
                )
    return times


@contextlib.contextmanager
def _environment(variables: dict[str, str]):
    """Set environment ``variables`` for a block (the kernels inherit them), then restore."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

"""Parameter sweeps: one chapter executed over a grid of parameters, in parallel.

Every point of the grid is an independent papermill run with its own output
notebook (the parameters are in its name) and its own results directory, so
points can run in processes on one machine (``jobs``), on several GPUs
(``gpus``: point ``i`` sees only GPU ``gpus[i % len(gpus)]``), or as separate
jobs on a cluster (:func:`point_commands` prints one command per point, ready
for a SLURM array or GNU parallel). :func:`collect` gathers the points'
results files into one table with the parameters as columns.

Command line::

    python -m tsgen.book.sweep 04_adaptation_engines \
        -g alpha '[0.1, 1.0, 10.0]' -g seed '[0, 1]' --jobs 2
    # for a cluster: one command per point
    python -m tsgen.book.sweep 04_adaptation_engines \
        -g alpha '[0.1, 1.0]' --print-commands
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml

from .chapter import PROFILE_ENV, RESULTS_ENV
from .runner import PROFILES_DIR, check_parameters, execute, load_profile

SWEEPS_DIR = Path("book/sweeps")


def grid_points(grid: dict[str, list]) -> list[dict]:
    """Every combination of the grid's values, in the order the names were given."""
    if not grid:
        raise ValueError("a sweep needs at least one parameter with a list of values")
    for name, values in grid.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(
                f"sweep parameter {name!r} needs a "
                f"non-empty list of values; got {values!r}"
            )
    names = list(grid)
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(grid[n] for n in names))
    ]


def point_name(stem: str, point: dict) -> str:
    """A file-name-safe label that shows the point's parameters, e.g. ``04_adaptation_engines__alpha=0.1__seed=0``."""
    parts = [
        f"{k}={json.dumps(v, separators=(',', ':')) if not isinstance(v, str) else v}"
        for k, v in point.items()
    ]
    return "__".join([stem, *(re.sub(r"[^A-Za-z0-9=.,_+-]", "", p) for p in parts)])


def _run_point(
    notebook: str,
    output: str,
    params: dict,
    results: str,
    profile: str,
    gpu: str | None,
) -> float:
    # Runs in a worker process: the environment set
    # here is inherited by the kernel papermill starts.
    os.environ[RESULTS_ENV] = results
    os.environ[PROFILE_ENV] = profile
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    return execute(notebook, output, params)


def run_sweep(
    stem: str,
    grid: dict[str, list],
    output_dir: str | Path | None = None,
    jobs: int = 1,
    gpus: list[str] | None = None,
    profile: str = "default",
    base: dict | None = None,
    notebooks_dir: str | Path = "notebooks",
    profiles_dir: str | Path = PROFILES_DIR,
):
    """Execute ``notebooks/<stem>.ipynb`` at every point of ``grid``; return :func:`collect`'s table.

    ``base`` parameters (and the profile's overrides) apply to every point; the
    grid's values win. Every name is checked against the chapter before
    anything runs. Output: ``<output_dir>/<point>.ipynb`` and
    ``<output_dir>/results/<point>/`` per point, and ``<output_dir>/sweep.csv``.
    """
    notebook = Path(notebooks_dir) / f"{stem}.ipynb"
    if not notebook.exists():
        raise ValueError(f"unknown chapter {stem!r}: {notebook} does not exist")
    jobs = int(jobs)
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1; got {jobs}")
    common = {**load_profile(profile, profiles_dir).get(stem, {}), **(base or {})}
    points = [{**common, **point} for point in grid_points(grid)]
    for params in points:
        check_parameters(notebook, params)
    output_dir = Path(output_dir or SWEEPS_DIR / stem)
    output_dir.mkdir(parents=True, exist_ok=True)
    names = [point_name(stem, point) for point in grid_points(grid)]
    print(
        f"[sweep] {stem}: {len(points)} points, {jobs} at a time -> {output_dir}",
        flush=True,
    )
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {
            name: pool.submit(
                _run_point,
                str(notebook),
                str(output_dir / f"{name}.ipynb"),
                params,
                str(output_dir / "results" / name),
                profile,
                gpus[i % len(gpus)] if gpus else None,
            )
            for i, (name, params) in enumerate(zip(names, points, strict=True))
        }
        for name, future in futures.items():
            print(f"[sweep] {name} done in {future.result():.1f} s", flush=True)
    print(
        f"[sweep] {len(points)} points in {time.perf_counter() - start:.1f} s wall",
        flush=True,
    )
    table = collect(output_dir, stem, dict(zip(names, grid_points(grid), strict=True)))
    table.to_csv(output_dir / "sweep.csv", index=False)
    return table


def collect(output_dir: str | Path, stem: str, points: dict[str, dict]):
    """One table of every point's result rows, with the swept parameters as the first columns."""
    import pandas as pd

    frames = []
    for name, point in points.items():
        path = Path(output_dir) / "results" / name
        files = sorted(path.glob(f"{stem}.*.json"))
        if not files:
            raise ValueError(
                f"point {name} wrote no results file under "
                f"{path}: does the chapter call save_results?"
            )
        record = json.loads(files[0].read_text())
        frame = pd.DataFrame(record["rows"])
        for key, value in reversed(point.items()):
            frame.insert(
                0, key, json.dumps(value) if isinstance(value, (list, dict)) else value
            )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def point_commands(
    stem: str,
    grid: dict[str, list],
    output_dir: str | Path,
    profile: str = "default",
    base: dict | None = None,
    notebooks_dir: str | Path = "notebooks",
) -> list[str]:
    """One shell command per point (papermill through ``tsgen.book``), for a cluster scheduler."""
    output_dir = Path(output_dir)
    commands = []
    for point in grid_points(grid):
        name = point_name(stem, point)
        # JSON is YAML, which is how tsgen.book reads a -p value
        params = " ".join(
            f"-p {k} {shlex.quote(v if isinstance(v, str) else json.dumps(v))}"
            for k, v in {**(base or {}), **point}.items()
        )
        commands.append(
            f"{RESULTS_ENV}={shlex.quote(str(output_dir / 'results' / name))} "
            f"{PROFILE_ENV}={profile} python -m tsgen.book {stem} --profile "
            f"{profile} --notebooks-dir {notebooks_dir} --output-dir "
            f"{shlex.quote(str(output_dir / name))} {params}"
        )
    return commands


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tsgen.book.sweep",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("chapter", help="chapter name, e.g. 04_adaptation_engines")
    parser.add_argument(
        "-g",
        "--grid",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUES"),
        help=(
            "a swept parameter and its values as a YAML list, "
            "e.g. -g alpha '[0.1, 1.0]'"
        ),
    )
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a fixed parameter for every point (VALUE is YAML)",
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="points executed at once (processes)"
    )
    parser.add_argument(
        "--gpus",
        default=None,
        help="comma-separated GPU ids; point i runs on gpus[i %% n]",
    )
    parser.add_argument("--profile", default="default")
    parser.add_argument(
        "--output-dir", default=None, help="default: book/sweeps/<chapter>"
    )
    parser.add_argument("--notebooks-dir", default="notebooks")
    parser.add_argument(
        "--print-commands",
        action="store_true",
        help="print one command per point and exit",
    )
    args = parser.parse_args(argv)
    grid = {name: yaml.safe_load(values) for name, values in args.grid}
    base = {name: yaml.safe_load(value) for name, value in args.parameter}
    output_dir = args.output_dir or SWEEPS_DIR / args.chapter
    try:
        if args.print_commands:
            print(
                "\n".join(
                    point_commands(
                        args.chapter,
                        grid,
                        output_dir,
                        args.profile,
                        base,
                        args.notebooks_dir,
                    )
                )
            )
            return 0
        table = run_sweep(
            args.chapter,
            grid,
            output_dir,
            args.jobs,
            args.gpus.split(",") if args.gpus else None,
            args.profile,
            base,
            args.notebooks_dir,
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(table.to_string(index=False, max_rows=40))
    return 0


if __name__ == "__main__":
    sys.exit(main())

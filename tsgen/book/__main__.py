"""``python -m tsgen.book``: execute chapters with papermill.

Examples::

    # every chapter, default profile, into book/chapters
    python -m tsgen.book
    python -m tsgen.book 01_data -p n_sines 2000 -p seed 3
    # paper-scale overrides from book/profiles/gpu.yaml
    python -m tsgen.book --profile gpu
    # refresh notebooks/ and book/results (the references make test compares with)
    python -m tsgen.book --in-place
"""

from __future__ import annotations

import argparse
import sys

import yaml

from .runner import run_notebooks


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tsgen.book",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "chapters", nargs="*", help="chapter names (e.g. 01_data); all when omitted"
    )
    parser.add_argument(
        "--profile",
        default="default",
        help="book/profiles/<name>.yaml overrides (default: none)",
    )
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="override one parameter; VALUE is read as YAML (3, 0.5, cuda, [0.3, 0.5])",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--output-dir", default="book/chapters", help="where executed chapters go"
    )
    where.add_argument(
        "--in-place",
        action="store_true",
        help="overwrite notebooks/ with the executed copies",
    )
    parser.add_argument("--notebooks-dir", default="notebooks")
    parser.add_argument(
        "--force",
        action="store_true",
        help="execute even the chapters whose executed copy is up to date",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="chapters executed at a time (the results chapter runs last)",
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1; got {args.jobs}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    extra = {name: yaml.safe_load(value) for name, value in args.parameter}
    try:
        times = run_notebooks(
            args.notebooks_dir,
            args.chapters or None,
            output_dir=None if args.in_place else args.output_dir,
            profile=args.profile,
            extra=extra,
            force=args.force,
            jobs=args.jobs,
        )
    except (ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"[tsgen.book] {len(times)} chapter(s) executed in {sum(times.values()):.1f} s",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Speed of the delay embedding, measured in one run (prints figures; not a timed test).

For each window length (default: 768 with delay 12 and embedding 64, the
issue's setting, and the chapter-7 lengths 24 and 96 with their presets) and a
batch of 128 windows of 6 channels, on one CPU thread: milliseconds of
``ts_to_img``, ``img_to_ts`` (averaging and first-pixel inverses), the
released code's loop, ``torch.nn.functional.fold`` (the averaging inverse) and
a plain copy of the image, each as a ratio to the copy
(:func:`tsgen.generation.delay.transform_speed`). Then whether the targets
are met at length 768: averaging inverse <= 3 ms, ``ts_to_img`` <= 2 ms.

On one CPU thread the clock is the thread's CPU time (time the thread spends
descheduled on a shared machine does not count; see
:func:`~tsgen.generation.delay.transform_speed`). The targets were set on a
machine where the image copy took 0.35 ms; where memory is slower or shared
every time grows, so the ratios to the copy (measured in the same run) are
printed against the same targets expressed as ratios too.

``--baseline PATH`` also times the ``DelayEmbedder`` of another version of
``tsgen/generation/delay.py`` (e.g. ``git show HEAD:tsgen/generation/delay.py
> /tmp/delay_old.py``) in the same run, for before/after figures.

Usage::

    .venv/bin/python benchmarks/delay_embedding.py [--batch 128] [--lengths 24 96 768] [--baseline /tmp/delay_old.py]
"""

from __future__ import annotations

import argparse
import importlib.util

import torch

from tsgen.generation import DELAY_EMBEDDINGS
from tsgen.generation.delay import transform_speed

TARGETS_MS = {"img_to_ts average": 3.0, "ts_to_img": 2.0}
TARGET_COPY_MS = 0.35  # the image copy on the machine the targets were set on


def load_baseline(path: str) -> type:
    """``DelayEmbedder`` from a copy of ``delay.py``, imported inside ``tsgen.generation``."""
    spec = importlib.util.spec_from_file_location(
        "tsgen.generation._baseline_delay", path
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DelayEmbedder


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--features", type=int, default=6)
    parser.add_argument(
        "--lengths",
        type=int,
        nargs="+",
        default=[768, 24, 96],
        help=f"window lengths, each a preset of {sorted(DELAY_EMBEDDINGS)}",
    )
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (0: torch default)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--baseline", help="path of another delay.py to time beside this one"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.lengths) - set(DELAY_EMBEDDINGS))
    if unknown:
        parser.error(f"--lengths {unknown}: presets are {sorted(DELAY_EMBEDDINGS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    timings = transform_speed(
        batch=args.batch,
        n_features=args.features,
        presets={length: DELAY_EMBEDDINGS[length] for length in args.lengths},
        repeats=args.repeats,
        seed=args.seed,
        device=args.device,
        baseline=load_baseline(args.baseline) if args.baseline else None,
    )
    print(
        f"batch {args.batch} x {args.features} channels, device {args.device}, "
        f"{torch.get_num_threads()} thread(s), best of {args.repeats} "
        f"({timings.attrs['clock']}); "
        "per_copy = time / time of a plain image copy (same run)"
    )
    for length, table in timings.groupby("length", sort=False):
        delay, embedding = DELAY_EMBEDDINGS[length]
        print(f"\nlength {length}, delay {delay}, embedding {embedding}")
        print(table.drop(columns="length").round(3).to_string(index=False))
    if 768 in args.lengths and args.batch == 128 and args.features == 6:
        at = timings[timings["length"] == 768].set_index("operation")
        print("\ntargets at length 768 (issue: B = 128, C = 6, delay 12, embedding 64)")
        for name, target in TARGETS_MS.items():
            ms, ratio = at.loc[name, "ms"], at.loc[name, "per_copy"]
            ratio_target = target / TARGET_COPY_MS
            print(
                f"  {name}: {ms:.2f} ms vs <= {target} ms: "
                f"{'met' if ms <= target else 'not met'}; "
                f"{ratio:.1f} x copy vs <= {ratio_target:.1f} x "
                f"({target} / {TARGET_COPY_MS} ms): "
                f"{'met' if ratio <= ratio_target else 'not met'}"
            )


if __name__ == "__main__":
    main()

"""What the GPU profile of chapter 7 costs: phase-2 step time of the paper's ImagenI2R per length.

Times one phase-2 step (a U-Net step and a completer step, ``phase2_step_seconds``)
of ``GenerationConfig.paper`` at each length on one device, counts the steps the
GPU profile trains (``training_plan``: every window of sines, stocks and energy,
three missing rates, 1,000 epochs) and prints the estimated hours per length.
Chapter 7 prints the same plan for its own run (its parameter ``timed_steps``).

Usage::

    .venv/bin/python benchmarks/generation_steps.py [--lengths 24 96 768] [--device cuda] [--threads 1]
"""

from __future__ import annotations

import argparse

import torch

from tsgen.generation.experiments import training_plan
from tsgen.runtime import resolve_device

# chapter 7's data sets in the GPU profile
DATASETS = ("sines", "stock", "energy")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[24, 96, 768])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="0: torch default")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=1000, help="phase-2 epochs")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(resolve_device(args.device))

    plan = training_plan(
        DATASETS,
        (0.3, 0.5, 0.7),
        args.lengths,
        paper=True,
        overrides={"epochs": args.epochs},
        timed_steps=args.repeats,
        device=device,
    )
    print(
        f"the GPU profile's training ({args.epochs} phase-2 epochs) on {device}, "
        f"{torch.get_num_threads()} threads:"
    )
    print(plan.to_string(index=False, float_format="{:.3g}".format))
    print(f"total: {plan['phase2_hours'].sum():.0f} hours of phase-2 steps")


if __name__ == "__main__":
    main()

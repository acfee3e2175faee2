"""Speed of the TTT imputer, measured in one run (prints figures; not a timed test).

1. Forward + backward time of one training batch of ``TTTImputer`` and of
   PyPOTS's SAITS at the same ``d_model``, number of layers and window length
   (each model's own training loss, ORT + MIT):
   :func:`tsgen.imputation.speed_comparison`.
2. One TTT layer (TTT-Linear and TTT-MLP): the mini-batch dual form against the
   per-token loop over the same updates (:func:`tsgen.imputation.speed.per_token_reference`,
   which the tests check against the dual form): :func:`tsgen.imputation.dual_form_comparison`.
   The loop computes its inner gradients with autograd and does not
   backpropagate to the outer weights, so this part times the forward pass only.

Usage::

    .venv/bin/python benchmarks/imputation_speed.py [--d-model 64] [--n-layers 2] [--length 48] [--batch 32]
"""

from __future__ import annotations

import argparse

import torch

from tsgen.imputation import dual_form_comparison, speed_comparison


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--n-layers", type=int, default=2)
    parser.add_argument("--n-heads", type=int, default=4)
    parser.add_argument(
        "--length", type=int, default=48, help="window length (time steps)"
    )
    parser.add_argument("--features", type=int, default=6)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument(
        "--mini-batch-size", type=int, default=8, help="TTT inner mini-batch"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (0: torch default)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    print(
        f"device {args.device}, torch {torch.__version__}, threads "
        f"{torch.get_num_threads()}; batch {args.batch} x {args.length} steps "
        f"x {args.features} features, d_model {args.d_model}, {args.n_layers} "
        f"layers, {args.n_heads} heads, inner mini-batch {args.mini_batch_size}"
    )

    speed = speed_comparison(
        args.length,
        args.features,
        args.batch,
        args.d_model,
        args.n_layers,
        args.n_heads,
        args.mini_batch_size,
        args.repeats,
        args.device,
        args.seed,
    )
    print("\nforward + backward per training batch")
    for row in speed.itertuples():
        print(
            f"  {row.model:40s} {row.ms:8.1f} ms   "
            f"ratio to SAITS {row.ratio_to_SAITS:5.2f}"
        )

    print("\none TTT layer, forward pass: dual form vs per-token loop (same outputs)")
    dual = dual_form_comparison(
        args.batch,
        args.length,
        args.d_model,
        args.n_heads,
        args.mini_batch_size,
        args.repeats,
        args.seed,
    )
    for row in dual.itertuples():
        print(
            f"  {row.layer:10s} dual {row.dual_ms:8.1f} ms   loop "
            f"{row.loop_ms:8.1f} ms   loop / dual {row.loop_over_dual:6.1f} "
            f"  max |difference| {row.max_difference:.1e}"
        )


if __name__ == "__main__":
    main()

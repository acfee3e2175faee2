"""Speed of the TTT imputer, measured in one run (prints figures; not a timed test).

1. Forward + backward time of one training batch of ``TTTImputer`` and of
   PyPOTS's SAITS at the same ``d_model``, number of layers and window length
   (each model's own training loss, ORT + MIT).
2. One TTT layer (TTT-Linear and TTT-MLP): the mini-batch dual form against the
   per-token loop over the same updates (the primal form of
   ``tests/test_imputation_layers.py``, which checks that both agree). The loop
   computes its inner gradients with autograd and does not backpropagate to the
   outer weights, so this part times the forward pass only.

Usage::

    .venv/bin/python benchmarks/imputation_speed.py [--d-model 64] [--n-layers 2] [--length 48] [--batch 32]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the per-token reference lives in the tests only

from test_imputation_layers import per_token_reference  # noqa: E402

from tsgen.data import make_sines  # noqa: E402
from tsgen.imputation import make_imputer, make_ttt_layer  # noqa: E402
from tsgen.imputation.speed import imputer_step_seconds, training_batch  # noqa: E402


def forward_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        with torch.no_grad():
            fn()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--n-layers", type=int, default=2)
    parser.add_argument("--n-heads", type=int, default=4)
    parser.add_argument("--length", type=int, default=48, help="window length (time steps)")
    parser.add_argument("--features", type=int, default=6)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--mini-batch-size", type=int, default=8, help="TTT inner mini-batch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch default)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    print(f"device {args.device}, torch {torch.__version__}, threads {torch.get_num_threads()}; "
          f"batch {args.batch} x {args.length} steps x {args.features} features, d_model {args.d_model}, "
          f"{args.n_layers} layers, {args.n_heads} heads, inner mini-batch {args.mini_batch_size}")

    # 1. the whole imputer against SAITS
    batch = training_batch(make_sines(args.batch, length=args.length, n_features=args.features, seed=0), 0.2, 0)
    size = dict(d_model=args.d_model, n_layers=args.n_layers, n_heads=args.n_heads, d_ffn=2 * args.d_model,
                device=args.device)
    timings = {}
    for name, extra in (("SAITS", {}), ("TTTImputer (TTT-Linear, bidirectional)", {"layer_type": "linear"}),
                        ("TTTImputer (TTT-MLP, bidirectional)", {"layer_type": "mlp"}),
                        ("TTTImputer (TTT-Linear, forward only)", {"layer_type": "linear", "bidirectional": False})):
        model = "SAITS" if name == "SAITS" else "TTTImputer"
        if model == "TTTImputer":
            extra = {**extra, "mini_batch_size": args.mini_batch_size}
        imputer = make_imputer(model, args.length, args.features, **size, **extra)
        timings[name] = imputer_step_seconds(imputer, batch, repeats=args.repeats)
    print("\nforward + backward per training batch")
    for name, seconds in timings.items():
        print(f"  {name:40s} {1000 * seconds:8.1f} ms   ratio to SAITS {seconds / timings['SAITS']:5.2f}")

    # 2. the dual form against the per-token loop, one layer
    print("\none TTT layer, forward pass: dual form vs per-token loop (same outputs)")
    x = torch.randn(args.batch, args.length, args.d_model)
    for layer_type in ("linear", "mlp"):
        layer = make_ttt_layer(layer_type, args.d_model, args.n_heads, args.mini_batch_size, 1.0)
        with torch.no_grad():
            gap = (layer(x) - per_token_reference(layer, x)).abs().max().item()
        dual = forward_seconds(lambda: layer(x), args.repeats)
        loop = forward_seconds(lambda: per_token_reference(layer, x), max(1, args.repeats // 2))
        print(f"  TTT-{layer_type:6s} dual {1000 * dual:8.1f} ms   loop {1000 * loop:8.1f} ms   "
              f"loop / dual {loop / dual:6.1f}   max |difference| {gap:.1e}")


if __name__ == "__main__":
    main()

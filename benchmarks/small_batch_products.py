"""A small batch's step products on the fused CPU kernels' three paths.

The kernels run a step's recurrent product one of three ways (fused_cpu/common.h,
step_operand): vec_mat, their own loop over raw pointers (in float32 for bfloat16, the
weights widened once per call); oneDNN's product on weights packed once per call; or
ATen's GEMM. This times each on the LSTM's two step products at a batch, forward
(B, H) @ (H, 4H) onto the step's input projection and backward (B, 4H) @ (4H, H) (or a
GRU's or RNN's, with ``--gates 3`` or ``1`` blocks of H rows), in float32 and bfloat16,
and shows which one the kernels' rule picks. Each figure is the median over rounds (the
paths taking turns in each) of one forward and one backward product's time, averaged over
a round's steps; each round prepares each path's operands once (the widening, the
packing), as a layer's call does.

    python benchmarks/small_batch_products.py                  # batch 1, H 128 to 1024
    python benchmarks/small_batch_products.py --batch 4
    python benchmarks/small_batch_products.py --batch 32 --gates 1 --hidden 384,512 --dtype float32
    python benchmarks/small_batch_products.py --hidden 16 --rounds 1 --steps 2   # a smoke test
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lstmkit.bench.run import DTYPES
from lstmkit.layers.backends import fused_cpu

PATHS = ("vec_mat", "onednn", "aten")


def _round_us(ops, operands, path: str, steps: int) -> float:
    """Microseconds per forward-and-backward pair of products: `steps` forward products on
    an operand prepared once, then `steps` backward ones, as a layer's call of that many
    steps runs them."""
    base, h, w_fwd, d_gates, w_bwd = operands
    start = time.perf_counter()
    ops.product_via(base, h, w_fwd, path, steps)
    ops.product_via(None, d_gates, w_bwd, path, steps)
    return (time.perf_counter() - start) * 1e6 / steps


def _operands(batch: int, hidden: int, dtype: torch.dtype, gates: int = 4):
    gen = torch.Generator().manual_seed(hidden)
    w_hh = torch.randn(gates * hidden, hidden, generator=gen).to(dtype) / hidden**0.5

    def rows(n):
        return torch.randn(batch, n, generator=gen).to(dtype)

    # as the kernels take them: W_hh^T (a view) forward, W_hh itself backward
    return rows(gates * hidden), rows(hidden), w_hh.t(), rows(gates * hidden), w_hh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1, help="rows per product (1)")
    parser.add_argument(
        "--hidden", default="128,256,384,512,768,1024", help="comma list of H (128 to 1024)"
    )
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds, the median shown (7)")
    parser.add_argument("--steps", type=int, default=200, help="product pairs per round (200)")
    parser.add_argument(
        "--gates", type=int, default=4, help="gate blocks of W_hh: 4 LSTM, 3 GRU, 1 RNN (4)"
    )
    parser.add_argument("--dtype", default="float32,bfloat16", help="comma list (both)")
    args = parser.parse_args()
    try:
        hidden = [int(h) for h in args.hidden.split(",")]
    except ValueError:
        parser.error(f"--hidden must be a comma list of whole numbers, got {args.hidden!r}")
    dtypes = {name: DTYPES[name] for name in ("float32", "bfloat16")}  # the kernels' two
    chosen = args.dtype.split(",")
    if any(d not in dtypes for d in chosen):
        parser.error(f"--dtype must be a comma list of float32 and bfloat16, got {args.dtype!r}")
    for name in ("batch", "rounds", "steps", "gates"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if min(hidden) < 1:
        parser.error(f"--hidden must list sizes of at least 1, got {args.hidden!r}")
    ops = fused_cpu.load_ops()
    print(
        f"batch {args.batch}, {args.gates} gate blocks, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}; "
        f"us per forward + backward product pair, median of {args.rounds} rounds of "
        f"{args.steps}; x rule: time / the time of the path the rule picks"
    )
    print(f"  {'dtype':9s} {'H':>5s} {'weights':>9s}  " + "".join(f"{p:>10s}" for p in PATHS)
          + "  rule      " + "".join(f"{'x rule ' + p:>16s}" for p in PATHS))  # fmt: skip
    for dtype in (dtypes[d] for d in chosen):
        for h in hidden:
            operands = _operands(args.batch, h, dtype, args.gates)
            for path in PATHS:  # warm-up: the packing, the caches
                _round_us(ops, operands, path, 1)
            times: dict[str, list[float]] = {p: [] for p in PATHS}
            for _ in range(args.rounds):
                for path in PATHS:
                    times[path].append(_round_us(ops, operands, path, args.steps))
            median = {p: statistics.median(t) for p, t in times.items()}
            rule = ops.product_path(operands[2], args.batch)
            print(
                f"  {str(dtype).removeprefix('torch.'):9s} {h:5d} {args.gates * h * h:9,d}  "
                + "".join(f"{median[p]:10.1f}" for p in PATHS)
                + f"  {rule:9s} "
                + "".join(f"{median[p] / median[rule]:15.2f}x" for p in PATHS)
            )


if __name__ == "__main__":
    main()

"""How much faster bfloat16 can make a fused cell on this CPU: the matrix products' share of
a forward+backward, in float32 and in bfloat16.

A fused cell's forward+backward is mostly matrix products (the input projection, a
recurrent product per step each way, dL/dW_ih, dL/dW_hh, dL/dx) and the rest: the gate
arithmetic, the threads meeting at every step, packing weights, page faults on fresh
buffers. Whatever the rest costs, bfloat16 cannot beat float32 by more than float32's whole
time over bfloat16's products alone: that quotient, the ceiling, is what this prints beside
the speed-up reached. The products' time is measured inside the layer's own calls, from torch's
profiler: the self time of the product operators (oneDNN's linear, ATen's mm and friends),
in a profiled call of each round; the whole call is timed in an unprofiled one. Page faults
are the process's minor faults during the timed calls (getrusage), since glibc's allocator
hands large buffers back to the system and each call touches them again.

Only products done by an operator are seen: at a small batch the kernels do a step's
product in their own loop (``vec_mat``, fused_cpu/common.h), which counts as the rest here,
so the figures speak of batches like the fastrnns size's, where every product is oneDNN's.

    python benchmarks/bfloat16_ceiling.py                      # the LSTM at the fastrnns size
    python benchmarks/bfloat16_ceiling.py --cells lstm,gru,rnn --rounds 7
    python benchmarks/bfloat16_ceiling.py --quick              # a smoke test, seconds

Each round runs both dtypes in turn, so a slow moment of the machine hits both; the medians
over rounds are shown. Variables that move these figures (allocator settings, thread counts)
are named in the header when set, as in ``lstmkit bench``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from dataclasses import dataclass

import torch
from torch.profiler import ProfilerActivity, profile

from lstmkit.bench.cells import BENCH_CELLS, build_layer
from lstmkit.bench.configs import PRESET_NAMES, BenchSize, preset_sizes
from lstmkit.bench.report import cpu_name, environment_line, timing_environment
from lstmkit.bench.run import forward_backward

DTYPES = (torch.float32, torch.bfloat16)

PRODUCT_OPS = frozenset(
    {
        "mkldnn::_linear_pointwise",
        "aten::mm",
        "aten::addmm",
        "aten::bmm",
        "aten::baddbmm",
        "aten::_addmm_activation",
    }
)
"""The operators that do matrix products, as the fused CPU backend calls them; their self
time is the product's own (a wrapper such as aten::linear or aten::matmul has only its
dispatch as self time, so nothing is counted twice)."""


@dataclass
class Measure:
    """One dtype's medians over the rounds, milliseconds and faults per call."""

    whole_ms: float
    products_ms: float
    faults: float

    @property
    def rest_ms(self) -> float:
        return self.whole_ms - self.products_ms


def products_ms(prof: profile) -> float:
    """Milliseconds of the profiled calls spent in the product operators themselves."""
    micros = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key in PRODUCT_OPS)
    return micros / 1e3


def _call(layer: torch.nn.Module, x: torch.Tensor, grad: torch.Tensor) -> None:
    """Forward+backward as ``lstmkit bench`` times it (the layer in training mode)."""
    forward_backward(layer, lambda x: layer(x)[0], x, grad)


def _timed(layer, x, grad) -> tuple[float, int]:
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    _call(layer, x, grad)
    elapsed = time.perf_counter() - start
    return elapsed * 1e3, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults


def _profiled(layer, x, grad) -> float:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        _call(layer, x, grad)
    return products_ms(prof)


def measure_cell(cell: str, size: BenchSize, rounds: int) -> dict[torch.dtype, Measure]:
    """Both dtypes of one cell at one size, taking turns in every round after a warm-up."""
    torch.manual_seed(0)
    base = build_layer(cell, size.I, size.H, backend="fused")
    x32 = torch.randn(size.T, size.B, size.I)
    grad32 = torch.randn(size.T, size.B, size.H)
    cases = {}
    for dtype in DTYPES:
        layer = build_layer(cell, size.I, size.H, backend="fused", dtype=dtype)
        layer.load_state_dict(base.state_dict())
        x = x32.to(dtype).requires_grad_()
        cases[dtype] = (layer.train(), x, grad32.to(dtype))
        _call(*cases[dtype])  # the kernels' first call: compiling, packing, caches
    samples = {dtype: {"whole_ms": [], "products_ms": [], "faults": []} for dtype in DTYPES}
    for _ in range(rounds):
        for dtype, case in cases.items():
            whole, faults = _timed(*case)
            samples[dtype]["whole_ms"].append(whole)
            samples[dtype]["products_ms"].append(_profiled(*case))
            samples[dtype]["faults"].append(faults)
    return {
        dtype: Measure(**{field: statistics.median(values) for field, values in fields.items()})
        for dtype, fields in samples.items()
    }


def report(cell: str, measures: dict[torch.dtype, Measure]) -> list[str]:
    """The table's lines for one cell, then its speed-ups and ceiling."""
    lines = []
    for dtype, m in measures.items():
        name = str(dtype).removeprefix("torch.")
        share = m.products_ms / m.whole_ms
        lines.append(
            f"  {cell:14s} {name:9s} {m.whole_ms:10.1f} {m.products_ms:12.1f} "
            f"{m.rest_ms:12.1f} {share:9.0%} {m.faults:14,.0f}"
        )
    f32, b16 = measures[torch.float32], measures[torch.bfloat16]
    lines.append(
        f"  {cell}: bfloat16's speed-up (float32's time / bfloat16's): the whole call "
        f"{f32.whole_ms / b16.whole_ms:.2f}x, the products alone "
        f"{_quotient(f32.products_ms, b16.products_ms)}, the ceiling (float32's whole call / "
        f"bfloat16's products) {_quotient(f32.whole_ms, b16.products_ms)}"
    )
    return lines


def _quotient(a: float, b: float) -> str:
    """a / b as a speed-up, or "-" where no product operator ran (b is 0)."""
    return f"{a / b:.2f}x" if b > 0 else "-"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="lstm", help="comma list of lstmkit bench's cells")
    parser.add_argument(
        "--sizes", default="fastrnns", help=f"comma list of presets: {', '.join(PRESET_NAMES)}"
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds, the median shown (5)")
    parser.add_argument("--quick", action="store_true", help="the quick sizes, one round")
    args = parser.parse_args(argv)
    args.cells = args.cells.split(",")
    unknown = [cell for cell in args.cells if cell not in BENCH_CELLS]
    if unknown:
        parser.error(f"--cells: unknown {', '.join(unknown)}; expected names from lstmkit bench")
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    if args.quick:
        args.sizes, args.rounds = "quick", 1
    try:
        args.sizes = preset_sizes(args.sizes.split(","))
    except ValueError as err:
        parser.error(f"--sizes: {err}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    print(
        f"{cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}; fused "
        f"backend, forward+backward, median of {args.rounds} rounds"
    )
    if environment := environment_line(timing_environment()):
        print(environment)
    for size in args.sizes:
        print(f"\n{size.name}: T={size.T} B={size.B} I={size.I} H={size.H}")
        print(
            f"  {'cell':14s} {'dtype':9s} {'whole ms':>10s} {'products ms':>12s} "
            f"{'the rest ms':>12s} {'products':>9s} {'page faults':>14s}"
        )
        for cell in args.cells:
            for line in report(cell, measure_cell(cell, size, args.rounds)):
                print(line)
            sys.stdout.flush()


if __name__ == "__main__":
    main()

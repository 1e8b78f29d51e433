"""The checks only a machine with a CUDA GPU can make, as one prepared command: every cell's
Triton kernels compiled and run against the reference loop on the GPU, then the issue's GPU
timings. The kernels are otherwise checked only under Triton's CPU interpreter (tests/), which
runs their arithmetic but not the compiler, the persistent launch or the grid barrier.

    python benchmarks/gpu_check.py --out DIR            # on the GPU machine (a few minutes)
    python benchmarks/gpu_check.py --interpret --quick  # the same checks, interpreted on the CPU

In steps, where device time is short or a run may stall (a grid barrier whose programs are
not all running spins for seconds before it gives up, and that check then reports
GridBarrierGaveUp): ``--quick`` on the GPU first (no barrier), then
``--no-timing --shapes one-program,batch-1``, ``--no-timing --shapes split-barrier,streamed``,
and ``--timing-only``. Each result line is printed, and check.txt and check.json rewritten, as
soon as it is known, so a run cut short still says how far it got.

1. Correctness: for each registry cell the fused backend runs, a layer on ``backend="fused"``
   and one on ``backend="reference"`` with the same weights, on the same device: outputs,
   final states and the gradients of the input and of every parameter under one random
   upstream gradient, in float32 (errors relative to each tensor's largest entry) and in
   bfloat16 (against the float32 reference on the bfloat16-rounded weights). Sizes that take
   each launch path: one program per batch block (H = 64), hidden units split over programs
   with the grid barrier (H = 512, B = 40), W_hh streamed from L2 (H = 768 in float32, and
   FGR's W_gg and the Grid LSTM's eight blocks in bfloat16 too), batch 1, and sequences that
   end early.
2. Timing (GPU only, not with ``--quick`` or ``--no-timing``): ``lstmkit bench`` at
   FlashRNN's size (T = 1024, B = 16, H = 768) in bfloat16 and float32, every cell on
   ``fused``, ``torch`` (cuDNN where torch has the cell) and ``auto``, against torch.nn.LSTM
   (cuDNN) and a per-step torch.nn.LSTMCell loop in the same rounds: the issue's targets are
   cuDNN's time for the plain LSTM, within 1.3x of it for every other cell, and 30x faster
   than the loop. In float32 at H = 768 every cell's kernels stream W_hh from L2 (its rows do
   not fit on chip; tools/triton_resources.py).

Writes ``check.json``, ``check.txt`` and (timing) ``bench.json``, ``bench.txt`` under
``--out``; exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

# tolerances, relative to each compared tensor's largest entry: float32 products at IEEE
# precision differ from the reference's only in summation order; bfloat16 keeps 8 bits
FLOAT32_BOUND = 1e-4
BFLOAT16_BOUND = 5e-2


@dataclass(frozen=True)
class Shape:
    name: str
    steps: int
    batch: int
    hidden: int
    ragged: bool  # sequences of different lengths (masks)


GPU_SHAPES = (
    Shape("one-program", 40, 5, 64, True),
    # 32 programs of 16 units in float32 (16 of 32 in bfloat16) meet at each step's barrier,
    # in each of three batch blocks of 16 rows, the last partly empty
    Shape("split-barrier", 40, 40, 512, True),
    # FlashRNN's width: 48 programs of 16 units, W_hh read from L2 in slices at every step
    Shape("streamed", 12, 16, 768, True),
    Shape("batch-1", 60, 1, 128, False),
)
QUICK_SHAPES = (Shape("tiny", 6, 3, 20, True),)
INPUT_SIZE = 32


@dataclass(frozen=True)
class Result:
    cell: str
    shape: str
    dtype: str
    error: float | None  # the worst relative error over outputs, states and gradients
    bound: float
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.error is not None and self.error <= self.bound


def _relative_errors(ours, theirs) -> float:
    import torch

    worst = 0.0
    for a, b in zip(ours, theirs, strict=True):
        a, b = a.detach(), b.detach()
        scale = b.abs().max().clamp(min=1e-30)
        worst = max(worst, float((a.float() - b.float()).abs().max() / scale))
        if not bool(torch.isfinite(a).all()):
            return float("inf")
    return worst


def _run(layer, x, lengths, upstream_seed: int):
    """Outputs, final states, then the gradients of x and of every parameter."""
    import torch

    x = x.detach().requires_grad_(True)
    output, state = layer(x, lengths=lengths)
    states = list(state) if isinstance(state, tuple) else [state]
    values = [output, *states]
    gen = torch.Generator(device="cpu").manual_seed(upstream_seed)
    loss = sum(
        (v.float() * torch.randn(v.shape, generator=gen).to(v.device)).sum()
        for v in values
        if v.dtype.is_floating_point
    )
    grads = torch.autograd.grad(loss, [x, *layer.parameters()], allow_unused=True)
    grads = [
        g if g is not None else torch.zeros_like(p)
        for g, p in zip(grads, [x, *layer.parameters()], strict=True)
    ]
    return [*values, *grads]


def check_cell(name: str, shape: Shape, device: str) -> list[Result]:
    import torch

    results = []
    torch.manual_seed(0)
    try:
        reference = make_layer(name, INPUT_SIZE, shape.hidden, "reference")
        fused = make_layer(name, INPUT_SIZE, shape.hidden, "fused")
    except ValueError as error:  # the fused backend does not run this cell
        return [Result(name, shape.name, "-", None, 0.0, f"refused: {error}")]
    fused.load_state_dict(reference.state_dict())
    x = torch.randn(shape.steps, shape.batch, INPUT_SIZE)
    lengths = None
    if shape.ragged:
        lengths = torch.randint(1, shape.steps + 1, (shape.batch,))
        lengths[0] = shape.steps
    for dtype_name, dtype, bound in (
        ("float32", torch.float32, FLOAT32_BOUND),
        ("bfloat16", torch.bfloat16, BFLOAT16_BOUND),
    ):
        ours = fused.to(device, dtype)
        theirs = reference.to(device, torch.float32)
        theirs.load_state_dict({k: v.float() for k, v in ours.state_dict().items()})
        try:
            got = _run(ours, x.to(device, dtype), lengths, upstream_seed=1)
            want = _run(theirs, x.to(device, dtype).float(), lengths, upstream_seed=1)
            error, note = _relative_errors(got, want), ""
        except Exception as failure:  # a kernel that does not compile is a result too
            error, note = None, f"{type(failure).__name__}: {str(failure).splitlines()[0][:200]}"
        results.append(Result(name, shape.name, dtype_name, error, bound, note))
    return results


PROJECTED = {
    f"{base}+proj": dict(proj_size=8, **options)
    for base, options in {
        "lstm": {}, "lstm-ln-ba2016": dict(layer_norm="ba2016"),
        "lstm-ln-per-gate": dict(layer_norm="per-gate"), "lstm-ln-cell": dict(layer_norm="cell"),
        "lstm-fgr": dict(gate_recurrence=True),
    }.items()
}  # fmt: skip
"""Projected LSTMs, which no registry cell is: their steps launch the kernels in a mode of
their own (torch's products between one-step launches), so they are checked as cells of
their own."""


BENCH_ONLY_CELLS = ("slstm-4heads",)
"""Cells of lstmkit bench's own, not the registry's, that the GPU run checks and times: the
sLSTM of four heads, whose kernels keep only their heads' rows of R. The bench's ReLU RNN is
left out: at the quick shape in bfloat16 one unit's ReLU switching the other way under
rounding (1 of 360 there) moved its gradients by a fifth of their largest entry, so its
bound would fail on rounding alone; test_fused_triton.py checks its kernels in float32."""


def make_layer(name: str, input_size: int, hidden: int, backend: str):
    """A one-layer, time-major layer of the bench cell ``name`` (the registry's, or one of
    ``BENCH_ONLY_CELLS``) or of a ``PROJECTED`` option set."""
    if name in PROJECTED:
        import lstmkit

        return lstmkit.LSTM(input_size, hidden, backend=backend, **PROJECTED[name])
    from lstmkit.bench.cells import BENCH_CELLS

    cell = BENCH_CELLS[name]
    return cell.layer(input_size, hidden, None, batch_first=False, backend=backend)


def fused_cells() -> list[str]:
    """The cells the fused backend runs: the registry's that its dispatch lists, the two
    stacks, which choose their own fused kernels, the ``BENCH_ONLY_CELLS`` and the
    ``PROJECTED`` LSTMs."""
    import torch

    from lstmkit.bench.cells import BENCH_CELLS
    from lstmkit.layers._memory_stack import MemoryJoinedStack
    from lstmkit.layers.backends import Backend, unsupported_reason
    from lstmkit.layers.named import MODERN_CELLS

    names = []
    for name in (*MODERN_CELLS, *BENCH_ONLY_CELLS):
        cell = BENCH_CELLS[name]
        with torch.device("meta"):
            layer = cell.layer(8, 8, None)
        stack = isinstance(layer, MemoryJoinedStack)
        if stack or unsupported_reason(Backend.FUSED, layer.family) is None:
            names.append(name)
    return [*names, *PROJECTED]


# the cell column fits the longest name, a projected one ("lstm-ln-per-gate+proj")
CELL_WIDTH = max(len(name) for name in PROJECTED)
RESULTS_HEADER = f"{'cell':{CELL_WIDTH}} {'shape':14} {'dtype':9} {'error':>9} {'bound':>8}  result"


def format_result(r: Result) -> str:
    error = "-" if r.error is None else f"{r.error:.1e}"
    verdict = "refused" if r.dtype == "-" else ("ok" if r.passed else "FAIL")
    columns = f"{r.cell:{CELL_WIDTH}} {r.shape:14} {r.dtype:9} {error:>9} {r.bound:>8.0e}"
    return f"{columns}  {verdict} {r.note}"


def format_results(results: list[Result]) -> str:
    return "\n".join([RESULTS_HEADER, *(format_result(r) for r in results)])


def write_results(out: Path, results: list[Result]) -> None:
    """check.txt and check.json with every result so far."""
    (out / "check.txt").write_text(format_results(results) + "\n")
    (out / "check.json").write_text(json.dumps([asdict(r) for r in results], indent=1))


def chosen_shapes(names: str | None, available: tuple[Shape, ...]) -> tuple[Shape, ...]:
    """The shapes ``--shapes`` names, in their order (all of them without it); ValueError
    for a name that is not one of ``available``."""
    if names is None:
        return available
    by_name = {shape.name: shape for shape in available}
    unknown = [name for name in names.split(",") if name not in by_name]
    if unknown:
        raise ValueError(
            f"--shapes: unknown {', '.join(unknown)}; expected names from {', '.join(by_name)}"
        )
    return tuple(by_name[name] for name in names.split(","))


def timing_config():
    """``lstmkit bench``'s configuration for the timing step: every fused cell that is a
    bench cell (the ``PROJECTED`` LSTMs are not; they are checked, not timed) at FlashRNN's
    size on the GPU."""
    from lstmkit.bench.cells import CELL_NAMES
    from lstmkit.bench.configs import preset_sizes
    from lstmkit.bench.run import BenchConfig

    return BenchConfig(
        sizes=preset_sizes(("flashrnn",)),
        cells=("lstm", *(c for c in fused_cells() if c != "lstm" and c in CELL_NAMES)),
        backends=("auto", "fused", "torch"),
        device="cuda",
        dtypes=("bfloat16", "float32"),
        repeats=3,
    )


def run_timing(out: Path) -> None:
    from lstmkit.bench.report import format_table, to_json
    from lstmkit.bench.run import run_bench

    config = timing_config()
    rows = run_bench(config)
    (out / "bench.json").write_text(json.dumps(to_json(rows, config)))
    table = format_table(rows, config)
    (out / "bench.txt").write_text(table + "\n")
    print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-check"), help="folder for results")
    parser.add_argument("--interpret", action="store_true", help="CPU tensors, Triton interpreted")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, no timing")
    parser.add_argument("--cells", default=None, help="comma list (default: every fused cell)")
    shape_names = ", ".join(shape.name for shape in GPU_SHAPES)
    parser.add_argument(
        "--shapes", default=None, help=f"comma list from {shape_names} (tiny with --quick)"
    )
    steps = parser.add_mutually_exclusive_group()
    steps.add_argument("--no-timing", action="store_true", help="the checks only")
    steps.add_argument("--timing-only", action="store_true", help="the timing only (GPU)")
    args = parser.parse_args(argv)
    try:
        shapes = chosen_shapes(args.shapes, QUICK_SHAPES if args.quick else GPU_SHAPES)
    except ValueError as error:
        parser.error(str(error))
    if args.timing_only and (args.interpret or args.quick):
        parser.error("--timing-only times on the GPU: it takes neither --interpret nor --quick")
    if args.interpret:  # before triton is first used: the kernels are defined for it then
        os.environ["TRITON_INTERPRET"] = "1"
    import torch

    from lstmkit.layers import _memory_stack
    from lstmkit.layers.backends import fused, fused_triton

    if args.interpret:  # CPU tensors to the Triton kernels
        from lstmkit.layers.backends.fused_triton import stacks

        device = "cpu"
        fused.kernels_for = lambda device_type: fused_triton
        _memory_stack.stack_kernels = lambda device_type: stacks
    elif torch.cuda.is_available():
        device = "cuda"
    else:
        parser.error("no CUDA device here; use --interpret to run the checks on the CPU")
    cells = args.cells.split(",") if args.cells else fused_cells()
    args.out.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    if not args.timing_only:
        print(RESULTS_HEADER, flush=True)
        for name in cells:
            for shape in shapes:
                for result in check_cell(name, shape, device):
                    results.append(result)
                    print(format_result(result), flush=True)
                write_results(args.out, results)
    failed = [r for r in results if r.dtype != "-" and not r.passed]
    if device == "cuda" and not args.quick and not args.no_timing:
        run_timing(args.out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

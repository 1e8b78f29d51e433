"""The torch-kind LSTM's time on lstmkit's fused CPU kernels over torch's, on a grid of
hidden sizes and batches, and which of the two ``backend="auto"`` takes at each point.

``auto`` runs torch's oneDNN kernel for the plain LSTM except where lstmkit's kernels run
the call faster (:func:`lstmkit.layers.backends._torch_lstm_wins`); this is the measurement
that rule rests on. Each point builds the layer (I = H; one layer and direction unless
``--layers``, ``--bidirectional`` or ``--proj-size`` say otherwise) once per backend with
the same weights, and times a forward+backward as ``lstmkit bench`` does (training mode,
the gradients reset, a random output gradient), or with ``--forward`` a forward alone (eval
mode, under ``torch.no_grad()``), the two backends taking turns in every round; the figure
is the median of the fused kernels' times over the median of torch's. After it, ``F`` where
auto takes the fused kernels for such a call, ``t`` where it takes torch's.

    python benchmarks/lstm_auto_grid.py                     # bfloat16, T=64
    python benchmarks/lstm_auto_grid.py --dtype float32 --steps 256
    python benchmarks/lstm_auto_grid.py --layers 2 --bidirectional --proj-size 64
    python benchmarks/lstm_auto_grid.py --forward           # the forward alone
    python benchmarks/lstm_auto_grid.py --quick             # a smoke test, seconds
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lstmkit.bench.report import cpu_name, environment_line, timing_environment
from lstmkit.bench.run import DTYPES, forward_backward
from lstmkit.layers.backends import Backend, choose_backend
from lstmkit.layers.lstm import LSTM


def _call(layer: LSTM, x: torch.Tensor, grad: torch.Tensor, forward_only: bool) -> float:
    """Seconds of one call as ``lstmkit bench`` times it: a forward under ``no_grad`` (the
    layer in eval mode) or a forward+backward (in training mode)."""
    start = time.perf_counter()
    if forward_only:
        with torch.no_grad():
            layer(x)
    else:
        forward_backward(layer, lambda x: layer(x)[0], x, grad)
    return time.perf_counter() - start


def layer_pair(hidden: int, dtype: torch.dtype, structure: dict) -> tuple[LSTM, LSTM]:
    """The layer (I = H) on the fused kernels and on torch's, with the same weights;
    ``structure``: its num_layers, bidirectional and proj_size."""
    torch.manual_seed(0)
    fused = LSTM(hidden, hidden, backend="fused", dtype=dtype, **structure)
    torch_kernel = LSTM(hidden, hidden, backend="torch", dtype=dtype, **structure)
    torch_kernel.load_state_dict(fused.state_dict())
    return fused, torch_kernel


def fused_over_torch(
    fused: LSTM, torch_kernel: LSTM, steps: int, batch: int, rounds: int, forward_only: bool
) -> float:
    """The fused layer's median time over torch's on a (steps, batch) input."""
    dtype, hidden = fused.weight_ih_l0.dtype, fused.input_size
    x = torch.randn(steps, batch, hidden, dtype=dtype, requires_grad=True)
    directions = 2 if fused.bidirectional else 1
    out_features = directions * (fused.proj_size or hidden)
    grad = torch.randn(steps, batch, out_features, dtype=dtype)
    layers = {"fused": fused, "torch": torch_kernel}
    for layer in layers.values():
        layer.train(not forward_only)
        _call(layer, x, grad, forward_only)  # warm-up: the kernels' build, packing, caches
    times = {name: [] for name in layers}
    for _ in range(rounds):
        for name, layer in layers.items():
            times[name].append(_call(layer, x, grad, forward_only))
    return statistics.median(times["fused"]) / statistics.median(times["torch"])


def auto_mark(layer: LSTM, batch: int, forward_only: bool) -> str:
    """F where auto takes the fused kernels for such a call of ``layer``, t where it takes
    torch's."""
    chosen = choose_backend(
        Backend.AUTO,
        layer.family,
        False,
        "cpu",
        dtype=layer.weight_ih_l0.dtype,
        graph=not forward_only,
        batch=batch,
    )
    return "F" if chosen is Backend.FUSED else "t"


def _int_list(text: str, name: str, parser: argparse.ArgumentParser) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        parser.error(f"--{name} must be a comma list of whole numbers, got {text!r}")
    if min(values) < 1:
        parser.error(f"--{name} must list numbers of at least 1, got {text!r}")
    return values


def _structure_text(structure: dict) -> str:
    layers = structure["num_layers"]
    text = f"{layers} layer{'s' if layers > 1 else ''}"
    text += ", both directions" if structure["bidirectional"] else ", one direction"
    if structure["proj_size"]:
        text += f", projection to {structure['proj_size']}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="bfloat16", choices=list(DTYPES), help="(bfloat16)")
    parser.add_argument("--steps", type=int, default=64, help="T of every point (64)")
    parser.add_argument("--hidden", default="128,256,512,1024", help="comma list of H = I")
    parser.add_argument("--batch", default="1,8,32,64,128", help="comma list of B")
    parser.add_argument("--layers", type=int, default=1, help="stacked layers (1)")
    parser.add_argument("--bidirectional", action="store_true", help="both directions")
    parser.add_argument(
        "--proj-size", type=int, default=0, help="LSTMP's projection, below every H (0: none)"
    )
    parser.add_argument(
        "--forward", action="store_true", help="time the forward alone, under no_grad"
    )
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds per point (15)")
    parser.add_argument("--quick", action="store_true", help="a tiny grid, two rounds")
    args = parser.parse_args()
    if min(args.steps, args.rounds, args.layers) < 1:
        parser.error(
            "--steps, --rounds and --layers must be at least 1, got "
            f"{args.steps}, {args.rounds}, {args.layers}"
        )
    if args.quick:
        args.steps, args.hidden, args.batch, args.rounds = 4, "8,16", "1,4", 2
    hidden = _int_list(args.hidden, "hidden", parser)
    batches = _int_list(args.batch, "batch", parser)
    if not 0 <= args.proj_size < min(hidden):
        parser.error(f"--proj-size must be 0 or below every --hidden, got {args.proj_size}")
    structure = {
        "num_layers": args.layers,
        "bidirectional": args.bidirectional,
        "proj_size": args.proj_size,
    }
    dtype = DTYPES[args.dtype]
    print(
        f"{cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}; "
        f"{args.dtype}, T={args.steps}, I=H, {_structure_text(structure)}; fused "
        f"{'forward' if args.forward else 'forward+backward'} / torch's, "
        f"median of {args.rounds} rounds; "
        "F: auto takes the fused kernels, t: torch's"
    )
    if environment := environment_line(timing_environment()):
        print(environment)
    print(f"{'H':>6s}" + "".join(f"{'B=' + str(b):>10s}" for b in batches))
    for h in hidden:
        fused, torch_kernel = layer_pair(h, dtype, structure)
        cells = []
        for b in batches:
            ratio = fused_over_torch(fused, torch_kernel, args.steps, b, args.rounds, args.forward)
            cells.append(f"{ratio:7.2f}x {auto_mark(fused, b, args.forward)}")
        print(f"{h:6d}" + "".join(f"{cell:>10s}" for cell in cells), flush=True)


if __name__ == "__main__":
    main()

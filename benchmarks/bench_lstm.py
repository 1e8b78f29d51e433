"""Speed of lstmkit.LSTM against torch.nn.LSTM, measured in the same run.

For each size, times forward and forward+backward of torch.nn.LSTM and of lstmkit's LSTM
(plain, peephole, CIFG, and the 1997 cell without a forget gate, each on the backend
``auto`` picks, plus the plain cell on the reference loop), and prints each as a ratio to
torch.nn.LSTM. The candidates take turns within every repeat, so a slow moment of the
machine hits all of them, and the median of the repeats is reported.

    python benchmarks/bench_lstm.py                 # the sizes in docs/benchmarks.md
    python benchmarks/bench_lstm.py --quick         # tiny sizes, a smoke test
    python benchmarks/bench_lstm.py --json out.json # also write the figures
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass

import torch

import lstmkit
from lstmkit.layers.backends import choose_backend

SIZES = {"large": dict(T=100, B=64, I=512, H=512), "long": dict(T=500, B=1, I=128, H=128)}
QUICK_SIZES = {"tiny": dict(T=8, B=2, I=4, H=4)}
CANDIDATES = {  # name -> lstmkit.LSTM keyword options
    "plain": {},
    "plain (reference loop)": dict(backend="reference"),
    "peephole": dict(peephole=True),
    "cifg": dict(coupled=True),
    "lstm1997": dict(forget_gate=False),
}
TARGETS = {"plain": 1.1, "peephole": 3.0, "cifg": 3.0}  # issue 2's bar, at the large size


@dataclass
class Row:
    size: str
    candidate: str
    backend: str
    mode: str  # "forward" or "forward+backward"
    seconds: float  # median over repeats
    ratio: float  # seconds / torch.nn.LSTM's seconds in the same mode


def time_once(module, x, backward: bool) -> float:
    start = time.perf_counter()
    if backward:
        output, _ = module(x)
        output.sum().backward()
    else:
        with torch.no_grad():
            module(x)
    return time.perf_counter() - start


def bench_size(name: str, size: dict, repeats: int, warmup: int) -> list[Row]:
    torch.manual_seed(0)
    T, B, I, H = size["T"], size["B"], size["I"], size["H"]
    x = torch.randn(T, B, I, requires_grad=True)
    modules = {"torch.nn.LSTM": torch.nn.LSTM(I, H)}
    modules |= {cand: lstmkit.LSTM(I, H, **opts) for cand, opts in CANDIDATES.items()}
    rows = []
    for backward in (False, True):
        mode = "forward+backward" if backward else "forward"
        samples: dict[str, list[float]] = {cand: [] for cand in modules}
        for k in range(warmup + repeats):
            for cand, module in modules.items():  # take turns: drift hits everyone alike
                seconds = time_once(module, x, backward)
                if k >= warmup:
                    samples[cand].append(seconds)
        base = statistics.median(samples["torch.nn.LSTM"])
        for cand, module in modules.items():
            seconds = statistics.median(samples[cand])
            backend = "torch.nn" if cand == "torch.nn.LSTM" else _backend_of(module)
            rows.append(Row(name, cand, backend, mode, seconds, seconds / base))
    return rows


def _backend_of(module: lstmkit.LSTM) -> str:
    return choose_backend(module.backend, module.family, tracing=False).value


def print_table(rows: list[Row], sizes: dict) -> None:
    for name, size in sizes.items():
        print(f"\n{name}: T={size['T']} B={size['B']} I={size['I']} H={size['H']}")
        print(f"  {'candidate':<24}{'backend':<11}{'forward':>16}{'fwd+bwd':>16}")
        by_key = {(r.candidate, r.mode): r for r in rows if r.size == name}
        for cand in dict.fromkeys(r.candidate for r in rows if r.size == name):
            f, fb = by_key[cand, "forward"], by_key[cand, "forward+backward"]
            cells = [f"{r.seconds * 1e3:8.1f}ms {r.ratio:4.2f}x" for r in (f, fb)]
            print(f"  {cand:<24}{f.backend:<11}{cells[0]:>16}{cells[1]:>16}")


def check_targets(rows: list[Row]) -> list[str]:
    """Issue 2's bar at the large size: plain within 1.1x, variants within 3x."""
    misses = []
    for r in rows:
        if r.size == "large" and r.candidate in TARGETS and r.ratio > TARGETS[r.candidate]:
            misses.append(f"{r.candidate} {r.mode}: {r.ratio:.2f}x > {TARGETS[r.candidate]}x")
    return misses


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per candidate")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = QUICK_SIZES if args.quick else SIZES
    print(
        f"torch {torch.__version__}, lstmkit {lstmkit.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}; "
        f"median of {args.repeats} after {args.warmup} warm-up; ratio = time / torch.nn.LSTM"
    )
    rows = []
    for name, size in sizes.items():
        print(f"timing {name} ...", file=sys.stderr, flush=True)
        rows += bench_size(name, size, args.repeats, args.warmup)
    print_table(rows, sizes)
    if not args.quick:
        misses = check_targets(rows)
        print(
            "\ntargets at the large size (plain <= 1.1x, peephole and CIFG <= 3x): "
            + ("all met" if not misses else "MISSED: " + "; ".join(misses))
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(r) for r in rows], f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The fused CPU kernels' float32 tanh against torch's, on one thread.

torch.tanh on a float32 CPU tensor runs Sleef's tanh through at::vec, which the kernels
called before they had their own (fused_cpu/common.h, tanh_float); torch.sigmoid is shown
for scale. Each is timed over the same 4M values, median of 15 calls after 3 warm-ups, and
the kernels' worst error in ulps against float64's tanh is printed beside its time.

    python benchmarks/tanh_speed.py            # 4M values
    python benchmarks/tanh_speed.py --values 4096   # a smoke test
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lstmkit.layers.backends import fused_cpu


def _median_ms(fn, x: torch.Tensor) -> float:
    for _ in range(3):
        fn(x)
    times = []
    for _ in range(15):
        start = time.perf_counter()
        fn(x)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def _worst_ulps(ours: torch.Tensor, x: torch.Tensor) -> float:
    exact = torch.tanh(x.double())
    rounded = exact.float()
    ulp = (torch.nextafter(rounded, torch.tensor(float("inf"))) - rounded).abs().double()
    return ((ours.double() - exact).abs() / ulp).max().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=1 << 22, help="how many (4M)")
    values = parser.parse_args().values
    if values < 1:
        parser.error(f"--values must be at least 1, got {values}")
    torch.set_num_threads(1)
    ops = fused_cpu.load_ops()
    x = (torch.rand(values, generator=torch.Generator().manual_seed(0)) - 0.5) * 24
    timings = {
        "torch.tanh (Sleef)": _median_ms(torch.tanh, x),
        "torch.sigmoid": _median_ms(torch.sigmoid, x),
        "kernels' tanh": _median_ms(ops.kernel_tanh, x),
    }
    base = timings["torch.tanh (Sleef)"]
    print(f"{values:,} float32 values in [-12, 12], one thread, median of 15 calls")
    for name, ms in timings.items():
        print(f"  {name:20s} {ms:7.2f} ms  {ms / base:5.2f}x torch.tanh's time")
    print(f"  kernels' tanh, worst error: {_worst_ulps(ops.kernel_tanh(x), x):.2f} ulp")


if __name__ == "__main__":
    main()

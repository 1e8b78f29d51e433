"""The results of ``lstmkit bench`` as a table a person reads or one JSON object a script
reads. Both carry the machine (torch version, threads, CPU and GPU names), because a time
means nothing without it, and how the figures were made, because "forward" and "GFLOP/s"
are counted differently by every benchmark."""

from __future__ import annotations

import math
import platform
from dataclasses import asdict
from pathlib import Path

import torch

import lstmkit
from lstmkit.bench.run import PEERS, BenchConfig, BenchRow

MODES = (
    "fwd: eval mode under torch.no_grad(); fwd+bwd: training mode, backward of a random "
    "output gradient"
)
RATIO = "x LSTM: time / torch.nn.LSTM's time at the same size"
FLOPS = "GFLOP/s: 2*B*G*H*(I+H) FLOPs per step forward (G gate blocks), 3x that for fwd+bwd"
MEMORY = (
    "saved MB: activations autograd keeps for the backward of one training forward (the "
    "input and parameters left out); x LSTM mem: that / torch.nn.LSTM's"
)

_COLUMNS = (  # title, width; the first two left-aligned, two spaces between columns
    ("cell", 13),
    ("backend", 22),
    ("fwd ms", 7),
    ("fwd+bwd ms", 10),
    ("ms/step", 7),
    ("x LSTM fwd", 10),
    ("x LSTM f+b", 10),
    ("GFLOP/s fwd", 11),
    ("GFLOP/s f+b", 11),
    ("saved MB", 8),
    ("x LSTM mem", 10),
)
_ERROR_WIDTH = 80  # the table shows this much of an error; the JSON has all of its line


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo on Linux, else what platform knows."""
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.exists() else ""
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info(config: BenchConfig) -> dict[str, object]:
    """What the figures were measured on."""
    gpu = torch.cuda.get_device_name(0) if config.device == "cuda" else None
    return {
        "torch": torch.__version__,
        "lstmkit": lstmkit.__version__,
        "threads": torch.get_num_threads(),
        "cpu": cpu_name(),
        "gpu": gpu,
        "device": config.device,
        "dtype": config.dtype,
    }


def _timing(config: BenchConfig) -> str:
    rounds = f"{config.repeats} round" + ("s" if config.repeats != 1 else "")
    return f"median of {rounds} after {config.warmup} warm-up, the candidates taking turns in each"


# -- JSON ------------------------------------------------------------------------------------------


def row_json(row: BenchRow) -> dict[str, object]:
    s = row.size
    return {
        "config": s.name,
        "T": s.T,
        "B": s.B,
        "I": s.I,
        "H": s.H,
        "cell": row.cell,
        "backend": row.backend,
        "resolved": row.resolved,
        "fwd_ms": row.fwd_ms,
        "fwd_bwd_ms": row.fwd_bwd_ms,
        "ms_per_step": row.ms_per_step,
        "ratio_fwd": row.ratio_fwd,
        "ratio_fwd_bwd": row.ratio_fwd_bwd,
        "flops_per_step": row.flops_per_step,
        "gflops_fwd": row.gflops_fwd,
        "gflops_fwd_bwd": row.gflops_fwd_bwd,
        "saved_mb": row.saved_mb,
        "ratio_saved": row.ratio_saved,
        "error": row.error,
    }


def to_json(rows: list[BenchRow], config: BenchConfig) -> dict[str, object]:
    """One object: ``machine``, ``settings`` (with the method in words) and ``rows``."""
    settings = {
        "sizes": [asdict(size) for size in config.sizes],
        "cells": list(config.cells),
        "backends": list(config.backends),
        "repeats": config.repeats,
        "warmup": config.warmup,
        "forward_only": config.forward_only,
        "seed": config.seed,
        "timing": _timing(config),
        "modes": MODES,
        "ratio": RATIO,
        "flops": FLOPS,
        "memory": MEMORY,
    }
    rows_json = [row_json(row) for row in rows]
    return {"machine": machine_info(config), "settings": settings, "rows": rows_json}


# -- table -----------------------------------------------------------------------------------------


def format_table(rows: list[BenchRow], config: BenchConfig) -> str:
    """A preamble naming the machine and the method, then one block per size."""
    m = machine_info(config)
    where = f"{m['gpu']} (cuda)" if m["gpu"] else f"{m['cpu']} (cpu)"
    threads = f"{m['threads']} thread" + ("s" if m["threads"] != 1 else "")
    lines = [
        f"lstmkit bench: torch {m['torch']}, lstmkit {m['lstmkit']}, {threads}, {where}, "
        f"{config.dtype}",
        _timing(config),
        MODES,
        RATIO,
        FLOPS,
        MEMORY,
    ]
    for size in config.sizes:
        lines += [
            "",
            f"{size.name}: T={size.T} B={size.B} I={size.I} H={size.H} ({size.source})",
            _line([title for title, _ in _COLUMNS]),
        ]
        lines += [_row_line(row) for row in rows if row.size == size]
    return "\n".join(lines)


def _row_line(row: BenchRow) -> str:
    backend = row.backend
    if backend not in PEERS and row.resolved != backend:
        backend = f"{backend} ({row.resolved})"  # auto and what it chose
    values = [
        row.cell,
        backend,
        _fixed(row.fwd_ms),
        _fixed(row.fwd_bwd_ms),
        _fixed(row.ms_per_step),
        _times(row.ratio_fwd),
        _times(row.ratio_fwd_bwd),
        _fixed(row.gflops_fwd),
        _fixed(row.gflops_fwd_bwd),
        _fixed(row.saved_mb),
        _times(row.ratio_saved),
    ]
    line = _line(values)
    if row.error:
        error = row.error
        if len(error) > _ERROR_WIDTH:
            error = error[: _ERROR_WIDTH - 3] + "..."
        line += f"  error: {error}"
    return line


def _line(values: list[str]) -> str:
    cells = [
        value.ljust(width) if k < 2 else value.rjust(width)
        for k, (value, (_, width)) in enumerate(zip(values, _COLUMNS, strict=True))
    ]
    return "  " + "  ".join(cells).rstrip()


def _fixed(value: float | None, digits: int = 3) -> str:
    """``digits`` significant digits without an exponent: 245, 7.40, 0.0520; "-" for None."""
    if value is None:
        return "-"
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def _times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


__all__ = ["cpu_name", "format_table", "machine_info", "row_json", "to_json"]

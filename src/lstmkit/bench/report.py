"""The results of ``lstmkit bench`` as a table a person reads or one JSON object a script
reads. Both carry the machine (torch version, threads, CPU and GPU names), because a time
means nothing without it, and how the figures were made, because "forward" and "GFLOP/s"
are counted differently by every benchmark.

With several dtypes the table gains a dtype column and two ratios to the first dtype
(``x float32 fwd``, ``x float32 f+b``); with one dtype it has neither, as before. The JSON
rows always carry ``dtype``, ``ratio_first_dtype_fwd`` and ``ratio_first_dtype_fwd_bwd``.

A cell built with more than one layer (the registry's stacks joined through their memory)
is named in a line of the table's preamble, and its JSON rows say ``num_layers``; each row
also gives ``matrix_entries``, the E its FLOPs are counted from.
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

import lstmkit
from lstmkit.bench.run import PEERS, BenchConfig, BenchRow

MODES = (
    "fwd: eval mode under torch.no_grad(); fwd+bwd: training mode, backward of a random "
    "output gradient"
)
RATIO = "x LSTM: time / torch.nn.LSTM's time at the same size"
FLOPS = (
    "GFLOP/s: 2*B*E FLOPs per step forward, E the entries of the layer's weight matrices "
    "(its parameters of 2+ dimensions; 2*B*G*H*(I+H) for G gate blocks), 3x that for fwd+bwd"
)
MEMORY = (
    "saved MB: activations autograd keeps for the backward of one training forward (the "
    "input and parameters left out); x LSTM mem: that / torch.nn.LSTM's"
)


def first_dtype_ratio_note(first_dtype: str) -> str:
    """What the ratio columns to the first dtype mean."""
    return (
        f"x {first_dtype}: time / the same cell and backend's time in {first_dtype} at the "
        "same size; x LSTM compares with torch.nn.LSTM in the row's own dtype"
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


# environment variables that change what the candidates run or how fast, and so belong with
# the figures: the allocator (glibc's tunables, a preloaded jemalloc or tcmalloc, torch's
# huge pages for large buffers), threads, the CPU features oneDNN and ATen may use, and
# lstmkit's own switches between product paths (docs/performance.md)
TIMING_ENVIRONMENT = (
    "THP_MEM_ALLOC_ENABLE", "GLIBC_TUNABLES", "LD_PRELOAD", "MALLOC_CONF",
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY",
    "LSTMKIT_NO_ONEDNN", "LSTMKIT_NO_VEC_MAT",
)  # fmt: skip


def timing_environment() -> dict[str, str]:
    """Those of :data:`TIMING_ENVIRONMENT` that are set, with their values."""
    return {name: os.environ[name] for name in TIMING_ENVIRONMENT if name in os.environ}


def environment_line(environment: dict[str, str]) -> str | None:
    """The preamble's line naming the settings of ``environment``, None when it is empty."""
    if not environment:
        return None
    return "environment: " + ", ".join(f"{k}={v}" for k, v in environment.items())


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
        "dtype": config.first_dtype,  # what a single-dtype run has always reported
        "dtypes": list(config.dtypes),
        "environment": timing_environment(),
    }


def stack_note(rows: list[BenchRow]) -> str | None:
    """A line naming the cells of more than one layer, or None when every row has one."""
    stacks: dict[int, list[str]] = {}
    for row in rows:
        if row.num_layers > 1 and row.cell not in stacks.get(row.num_layers, []):
            stacks.setdefault(row.num_layers, []).append(row.cell)
    if not stacks:
        return None
    parts = [f"{', '.join(cells)}: {n} layers" for n, cells in sorted(stacks.items())]
    return (
        f"{'; '.join(parts)} (the fewest the registry builds); times, FLOPs and memory are "
        "the whole stack's, the other rows one layer's"
    )


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
        "resolved_fwd_bwd": row.resolved_fwd_bwd or row.resolved,
        "dtype": row.dtype,
        "fwd_ms": row.fwd_ms,
        "fwd_bwd_ms": row.fwd_bwd_ms,
        "ms_per_step": row.ms_per_step,
        "ratio_fwd": row.ratio_fwd,
        "ratio_fwd_bwd": row.ratio_fwd_bwd,
        "ratio_first_dtype_fwd": row.ratio_first_dtype_fwd,
        "ratio_first_dtype_fwd_bwd": row.ratio_first_dtype_fwd_bwd,
        "flops_per_step": row.flops_per_step,
        "matrix_entries": row.matrix_entries,
        "num_layers": row.num_layers,
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
        "ratio_first_dtype": first_dtype_ratio_note(config.first_dtype),
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
        f"{', '.join(config.dtypes)}",
        _timing(config),
    ]
    if environment := environment_line(m["environment"]):
        lines.append(environment)
    lines += [
        MODES,
        RATIO,
    ]
    if _several_dtypes(config):
        lines.append(first_dtype_ratio_note(config.first_dtype))
    lines += [FLOPS, MEMORY]
    stacks = stack_note(rows)
    if stacks:
        lines.append(stacks)
    columns = _columns(config)
    for size in config.sizes:
        lines += [
            "",
            f"{size.name}: T={size.T} B={size.B} I={size.I} H={size.H} ({size.source})",
            _line([column.title for column in columns], columns),
        ]
        lines += [_row_line(row, columns) for row in rows if row.size == size]
    return "\n".join(lines)


@dataclass(frozen=True)
class _Column:
    """A column of the table: its title, its width and how a row fills it."""

    title: str
    width: int
    value: Callable[[BenchRow], str]
    left: bool = False
    """Names are left-aligned, numbers right-aligned."""


def _backend_label(row: BenchRow) -> str:
    """The backend as asked; for ``auto`` what it chose too, and where the forward+backward
    ran on another, that one after ``f+b``."""
    fwd_bwd = row.resolved_fwd_bwd or row.resolved
    if row.backend in PEERS or row.resolved == fwd_bwd == row.backend:
        return row.backend
    if fwd_bwd == row.resolved:
        return f"{row.backend} ({row.resolved})"
    return f"{row.backend} ({row.resolved}; f+b {fwd_bwd})"


_NAME_COLUMNS = (
    _Column("cell", 13, lambda row: row.cell, left=True),
    _Column("backend", 23, _backend_label, left=True),
)
_TIME_COLUMNS = (
    _Column("fwd ms", 7, lambda row: _fixed(row.fwd_ms)),
    _Column("fwd+bwd ms", 10, lambda row: _fixed(row.fwd_bwd_ms)),
    _Column("ms/step", 7, lambda row: _fixed(row.ms_per_step)),
    _Column("x LSTM fwd", 10, lambda row: _times(row.ratio_fwd)),
    _Column("x LSTM f+b", 10, lambda row: _times(row.ratio_fwd_bwd)),
)
_RATE_AND_MEMORY_COLUMNS = (
    _Column("GFLOP/s fwd", 11, lambda row: _fixed(row.gflops_fwd)),
    _Column("GFLOP/s f+b", 11, lambda row: _fixed(row.gflops_fwd_bwd)),
    _Column("saved MB", 8, lambda row: _fixed(row.saved_mb)),
    _Column("x LSTM mem", 10, lambda row: _times(row.ratio_saved)),
)


def _several_dtypes(config: BenchConfig) -> bool:
    return len(config.dtypes) > 1


def _columns(config: BenchConfig) -> list[_Column]:
    """The table's columns; the dtype and the ratios to the first dtype only when there is
    more than one dtype, so that a single-dtype table reads as it always has."""
    if not _several_dtypes(config):
        return [*_NAME_COLUMNS, *_TIME_COLUMNS, *_RATE_AND_MEMORY_COLUMNS]
    return [
        *_NAME_COLUMNS,
        _Column("dtype", len("bfloat16"), lambda row: row.dtype, left=True),
        *_TIME_COLUMNS,
        *_first_dtype_columns(config.first_dtype),
        *_RATE_AND_MEMORY_COLUMNS,
    ]


def _first_dtype_columns(first_dtype: str) -> list[_Column]:
    fwd, fwd_bwd = f"x {first_dtype} fwd", f"x {first_dtype} f+b"
    return [
        _Column(fwd, len(fwd), lambda row: _times(row.ratio_first_dtype_fwd)),
        _Column(fwd_bwd, len(fwd_bwd), lambda row: _times(row.ratio_first_dtype_fwd_bwd)),
    ]


def _row_line(row: BenchRow, columns: list[_Column]) -> str:
    line = _line([column.value(row) for column in columns], columns)
    if row.error:
        error = row.error
        if len(error) > _ERROR_WIDTH:
            error = error[: _ERROR_WIDTH - 3] + "..."
        line += f"  error: {error}"
    return line


def _line(values: list[str], columns: list[_Column]) -> str:
    """Two spaces between columns, none trailing."""
    cells = [
        value.ljust(column.width) if column.left else value.rjust(column.width)
        for value, column in zip(values, columns, strict=True)
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


__all__ = [
    "cpu_name",
    "first_dtype_ratio_note",
    "format_table",
    "machine_info",
    "row_json",
    "stack_note",
    "to_json",
]

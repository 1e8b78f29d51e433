"""``lstmkit bench``: the speed of every cell and backend against ``torch.nn.LSTM`` and a
plain per-step loop, measured in the same run on the sizes the field reports.

From Python::

    from lstmkit.bench import BenchConfig, preset_sizes, run_bench

    rows = run_bench(BenchConfig(sizes=preset_sizes(["streaming"]), cells=("lstm", "gru")))
    for row in rows:
        print(row.size.name, row.cell, row.backend, row.fwd_ms, row.ratio_fwd)

Modules: :mod:`.configs` (the size presets), :mod:`.timing` (interleaved medians),
:mod:`.run` (the candidates and the grid, and what is timed and counted),
:mod:`.report` (table and JSON).
"""

from lstmkit.bench.configs import PRESET_NAMES, PRESETS, BenchSize, preset_sizes
from lstmkit.bench.report import format_table, machine_info, to_json
from lstmkit.bench.run import (
    BACKEND_NAMES,
    CELL_NAMES,
    DTYPES,
    BenchConfig,
    BenchRow,
    candidate_entries,
    flops_per_step,
    run_bench,
    supported_backends,
)

__all__ = [
    "BACKEND_NAMES",
    "CELL_NAMES",
    "DTYPES",
    "PRESETS",
    "PRESET_NAMES",
    "BenchConfig",
    "BenchRow",
    "BenchSize",
    "candidate_entries",
    "flops_per_step",
    "format_table",
    "machine_info",
    "preset_sizes",
    "run_bench",
    "supported_backends",
    "to_json",
]

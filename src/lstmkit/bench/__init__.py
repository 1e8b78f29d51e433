"""``lstmkit bench``: the speed of every cell and backend against ``torch.nn.LSTM`` and a
plain per-step loop, measured in the same run on the sizes the field reports.

From Python::

    from lstmkit.bench import BenchConfig, preset_sizes, run_bench

    config = BenchConfig(
        sizes=preset_sizes(["streaming"]), cells=("lstm", "gru"), dtypes=("float32", "bfloat16")
    )
    for row in run_bench(config):
        print(row.size.name, row.cell, row.backend, row.dtype, row.fwd_ms, row.ratio_fwd)
        print("  vs float32:", row.ratio_first_dtype_fwd)  # None in the float32 rows

``ratio_fwd`` is to torch.nn.LSTM in the row's own dtype; ``ratio_first_dtype_fwd`` is to
the same cell and backend in the first dtype listed.

The cells are the registry's (:data:`lstmkit.layers.named.MODERN_CELLS`) plus
``rnn-relu``: ``cells=CELL_NAMES`` times them all; the default, :data:`DEFAULT_CELLS`, the
seven the fast kernels run.

Modules: :mod:`.configs` (the size presets), :mod:`.cells` (the cells by name and their
FLOPs), :mod:`.timing` (interleaved medians), :mod:`.run` (the candidates and the grid, and
what is timed), :mod:`.report` (table and JSON).
"""

from lstmkit.bench.cells import (
    ALL_CELLS,
    CELL_NAMES,
    DEFAULT_CELLS,
    flops_per_step,
    matrix_entries,
)
from lstmkit.bench.configs import PRESET_NAMES, PRESETS, BenchSize, preset_sizes
from lstmkit.bench.report import format_table, machine_info, to_json
from lstmkit.bench.run import (
    BACKEND_NAMES,
    DTYPES,
    BenchConfig,
    BenchRow,
    candidate_entries,
    check_dtypes,
    run_bench,
    supported_backends,
)

__all__ = [
    "ALL_CELLS",
    "BACKEND_NAMES",
    "CELL_NAMES",
    "DEFAULT_CELLS",
    "DTYPES",
    "PRESETS",
    "PRESET_NAMES",
    "BenchConfig",
    "BenchRow",
    "BenchSize",
    "candidate_entries",
    "check_dtypes",
    "flops_per_step",
    "format_table",
    "machine_info",
    "matrix_entries",
    "preset_sizes",
    "run_bench",
    "supported_backends",
    "to_json",
]

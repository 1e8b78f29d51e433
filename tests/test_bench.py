"""``lstmkit bench`` end to end on tiny sizes, every cell of the registry, its FLOP count,
its choice of backends, its interleaved timing, a candidate that fails, several dtypes in one
run, and its bad input."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
import torch
from helpers import cli_error
from torch import nn

from lstmkit._cli_bench import cell_list, dtype_list
from lstmkit.bench import (
    BenchConfig,
    BenchRow,
    BenchSize,
    candidate_entries,
    flops_per_step,
    format_table,
    preset_sizes,
    run_bench,
    supported_backends,
)
from lstmkit.bench import run as bench_run
from lstmkit.bench.cells import CELL_NAMES, DEFAULT_CELLS, build_layer, matrix_entries
from lstmkit.bench.memory import saved_activation_bytes
from lstmkit.bench.report import TIMING_ENVIRONMENT
from lstmkit.bench.run import CELL_LOOP, DTYPES, PEERS, TORCH_LSTM
from lstmkit.bench.timing import interleaved_medians
from lstmkit.cli import main
from lstmkit.layers.backends import Backend, choose_backend, unsupported_reason
from lstmkit.layers.base import RecurrentLayer
from lstmkit.layers.named import MODERN_CELLS

FAST = ["--repeats", "1", "--warmup", "0", "--quiet"]
QUICK = ["--quick", *FAST]
ROW_KEYS = {
    "config",
    "T",
    "B",
    "I",
    "H",
    "cell",
    "backend",
    "resolved",
    "resolved_fwd_bwd",
    "dtype",
    "fwd_ms",
    "fwd_bwd_ms",
    "ms_per_step",
    "ratio_fwd",
    "ratio_fwd_bwd",
    "ratio_first_dtype_fwd",
    "ratio_first_dtype_fwd_bwd",
    "gflops_fwd",
    "gflops_fwd_bwd",
    "saved_mb",
    "ratio_saved",
    "error",
}
TINY = BenchSize("tiny", 3, 2, 3, 4, "test")
THE_SEVEN = ("lstm", "peephole", "cifg", "lstm-noforget", "gru", "rnn", "rnn-relu")
BENCH_ONLY = ("rnn-relu", "slstm-4heads")  # the bench's cells that the registry does not have
"""What a bare ``lstmkit bench`` timed before the registry's cells joined, and still times."""
STACKS = ("depth-gated", "grid-lstm")
"""The registry's cells whose layer is not a RecurrentLayer: their own plain-PyTorch loop."""


def meta_layer(cell: str, size: BenchSize = TINY) -> nn.Module:
    """The cell's layer as the bench builds it, on the meta device (shapes only)."""
    return build_layer(cell, size.I, size.H, device="meta")


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    threads = torch.get_num_threads()  # --threads sets it for the process; keep it from leaking
    yield
    torch.set_num_threads(threads)


def run_json(capsys, *argv: str) -> dict:
    assert main(["bench", "--quick", *FAST, "--json", *argv]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # --quiet: no progress bar
    return json.loads(captured.out)


# -- the command end to end -----------------------------------------------------------------------


def test_quick_table_has_the_peers_and_every_cell(capsys):
    assert main(["bench", "--quick", *FAST]) == 0
    out = capsys.readouterr().out
    for size in preset_sizes(["quick"]):
        assert f"{size.name}: T={size.T} B={size.B} I={size.I} H={size.H}" in out
    lines = out.splitlines()
    for peer in PEERS:  # one row per size
        assert sum(line.startswith(f"  lstm           {peer}  ") for line in lines) == 2
    torch_rows = [line for line in lines if line.startswith(f"  lstm           {TORCH_LSTM}  ")]
    # it is the denominator of the two time ratios and the memory ratio
    assert all(line.count("1.00x") == 3 for line in torch_rows)
    for cell in THE_SEVEN:  # the default cells; each cell's auto row names what auto chose
        chosen = choose_backend(Backend.AUTO, meta_layer(cell).family, tracing=False).value
        assert any(line.startswith(f"  {cell} ") and f" auto ({chosen}) " in line for line in lines)
    assert not any(line.startswith(f"  {cell} ") for cell in STACKS for line in lines)
    assert "error" not in out
    assert "layers (the fewest" not in out  # no stack, no line about stacks


@pytest.fixture(scope="module")
def all_cells_json() -> dict:
    """One --quick run of --cells all on every backend, as JSON (run once: about 20 s)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["bench", "--cells", "all", "--quick", *FAST, "--json"]) == 0
    return json.loads(out.getvalue())


def test_cells_all_times_every_registry_cell_without_error(all_cells_json):
    rows = all_cells_json["rows"]
    everything = [*MODERN_CELLS, *BENCH_ONLY]  # read from the registry itself, not the bench
    assert all_cells_json["settings"]["cells"] == everything
    for size in preset_sizes(["quick"]):
        cells = {row["cell"] for row in rows if row["config"] == size.name}
        assert cells == set(everything), size
    assert all(set(row) >= ROW_KEYS | {"matrix_entries", "num_layers"} for row in rows)
    for row in rows:
        assert row["error"] is None, row
        assert row["fwd_ms"] > 0 and row["fwd_bwd_ms"] > 0 and row["saved_mb"] > 0, row
        assert row["flops_per_step"] == 2 * row["B"] * row["matrix_entries"] > 0, row


@pytest.mark.parametrize("cell", STACKS)
def test_a_stack_is_timed_on_its_own_backends(all_cells_json, cell):
    """The depth-gated and the Grid LSTM are not RecurrentLayers: they choose among
    reference, fused and auto themselves; auto takes their fused kernels on the CPU. Each
    row times the two layers the registry builds them with."""
    layer = meta_layer(cell)
    assert not isinstance(layer, RecurrentLayer) and layer.num_layers == 2
    rows = [row for row in all_cells_json["rows"] if row["cell"] == cell]
    assert {(row["backend"], row["resolved"]) for row in rows} == {
        ("reference", "reference"), ("fused", "fused"), ("auto", "fused"),
    }  # fmt: skip
    assert len(rows) == 3 * len(preset_sizes(["quick"]))
    for row in rows:
        assert row["num_layers"] == 2 and row["fwd_ms"] > 0 and row["error"] is None


@pytest.mark.parametrize(
    ("backends", "expected"),
    [(("auto",), ["auto"]), (("reference", "torch"), ["reference"]), (("torch", "manual"), [])],
)
def test_a_stack_gets_the_backends_asked_for_that_it_has(backends, expected):
    for cell in STACKS:
        entries = candidate_entries(BenchConfig(cells=(cell,), backends=backends), TINY)
        assert [e.backend for e in entries] == [*PEERS, *expected]


def test_on_cuda_a_stack_is_timed_on_triton_and_auto_takes_the_loop(monkeypatch):
    """As for every cell: 'fused' runs the Triton kernels there, and auto does not take them
    until they have been run on a GPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # only the config checks it
    for cell in STACKS:
        entries = candidate_entries(BenchConfig(device="cuda", cells=(cell,)), TINY)
        assert [(e.backend, e.resolved["float32"].fwd) for e in entries[len(PEERS) :]] == [
            ("reference", "reference"), ("fused", "fused"), ("auto", "reference"),
        ]  # fmt: skip


def test_the_table_names_the_stacks_and_their_layers(capsys):
    assert main(["bench", "--quick", *FAST, "--forward-only", "--cells", "lstm,grid-lstm"]) == 0
    out = capsys.readouterr().out
    assert "grid-lstm: 2 layers (the fewest the registry builds)" in out
    grid = [line for line in out.splitlines() if line.startswith("  grid-lstm ")]
    backends = {line.split()[1] for line in grid}
    assert len(grid) == 2 * len(backends) and backends  # two quick sizes
    assert backends <= {"reference", "fused", "auto"}


def test_json_has_the_promised_keys_and_positive_ratios(capsys):
    out = run_json(capsys, "--cells", "lstm,cifg,gru", "--threads", "1")
    assert out["machine"]["threads"] == 1
    machine_keys = {"torch", "threads", "cpu", "gpu", "dtype", "dtypes", "device", "environment"}
    assert machine_keys <= set(out["machine"])
    assert out["machine"]["dtype"] == "float32" and out["machine"]["dtypes"] == ["float32"]
    rows = out["rows"]
    assert rows and all(set(row) >= ROW_KEYS for row in rows)
    assert {row["cell"] for row in rows} == {"lstm", "cifg", "gru"}
    for row in rows:
        assert row["error"] is None
        assert row["dtype"] == "float32"
        assert row["ratio_first_dtype_fwd"] is None and row["ratio_first_dtype_fwd_bwd"] is None
        keys = ("fwd_ms", "fwd_bwd_ms", "ms_per_step", "ratio_fwd", "ratio_fwd_bwd", "saved_mb")
        for key in (*keys, "ratio_saved"):
            assert row[key] > 0, (row, key)
        assert row["gflops_fwd"] > 0 and row["gflops_fwd_bwd"] > 0
    torch_rows = [row for row in rows if row["backend"] == TORCH_LSTM]
    ratios = [(r["ratio_fwd"], r["ratio_fwd_bwd"], r["ratio_saved"]) for r in torch_rows]
    assert ratios == [(1.0, 1.0, 1.0)] * 2
    assert all(row["resolved"] != "auto" for row in rows)


def test_the_settings_that_move_times_are_reported_when_set(capsys, monkeypatch):
    """An allocator or a product switch set in the environment changes the figures, so the
    table names it and the JSON carries it; unset, the table has no such line."""
    for name in TIMING_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    argv = ["bench", "--quick", *FAST, "--cells", "rnn", "--backends", "torch", "--forward-only"]
    assert main(argv) == 0
    assert "environment:" not in capsys.readouterr().out
    monkeypatch.setenv("THP_MEM_ALLOC_ENABLE", "1")
    monkeypatch.setenv("LSTMKIT_NO_ONEDNN", "1")
    assert main(argv) == 0
    assert "environment: THP_MEM_ALLOC_ENABLE=1, LSTMKIT_NO_ONEDNN=1" in capsys.readouterr().out
    out = run_json(capsys, *argv[2 + len(FAST) :])
    assert out["machine"]["environment"] == {"THP_MEM_ALLOC_ENABLE": "1", "LSTMKIT_NO_ONEDNN": "1"}


def test_forward_only_leaves_the_backward_columns_empty(capsys):
    out = run_json(capsys, "--cells", "rnn", "--backends", "torch", "--forward-only")
    assert [row["backend"] for row in out["rows"]][:3] == [*PEERS, "torch"]
    assert all(row["fwd_ms"] > 0 and row["fwd_bwd_ms"] is None for row in out["rows"])


# -- what is counted and timed --------------------------------------------------------------------


def test_flops_per_step():
    assert flops_per_step(8, 1) == 16  # an LSTM at B=1 I=H=1: E = 4*1*(1+1)
    row = BenchRow(TINY, "rnn", "torch", "torch", TINY.H * (TINY.I + TINY.H), 2.0, 4.0, 1.0, 1.0)
    per_step = 2 * TINY.B * 1 * TINY.H * (TINY.I + TINY.H)
    assert row.flops_per_step == per_step
    assert row.ms_per_step == pytest.approx(2.0 / TINY.T)
    assert row.gflops_fwd == pytest.approx(per_step * TINY.T / 2e-3 / 1e9)
    assert row.gflops_fwd_bwd == pytest.approx(3 * per_step * TINY.T / 4e-3 / 1e9)


GATE_BLOCKS = {"lstm": 4, "peephole": 4, "cifg": 3, "lstm-noforget": 3, "gru": 3, "rnn": 1}
GATE_BLOCKS["rnn-relu"] = 1


@pytest.mark.parametrize("cell", list(GATE_BLOCKS))
@pytest.mark.parametrize(("I", "H", "B"), [(3, 4, 2), (512, 512, 64), (7, 5, 1)])
def test_flops_are_the_old_gate_block_count_for_the_shared_layout(cell, I, H, B):
    """2*B*(weight-matrix entries) gives the figure the bench gave before, 2*B*G*H*(I+H)
    with G gate blocks: peepholes, a vector each, add nothing."""
    size = BenchSize("s", 3, B, I, H, "test")
    old = 2 * B * GATE_BLOCKS[cell] * H * (I + H)
    assert flops_per_step(matrix_entries(meta_layer(cell, size)), B) == old
    entries = candidate_entries(BenchConfig(cells=(cell,)), size)[len(PEERS) :]
    assert entries and all(e.cell == cell for e in entries)
    assert {flops_per_step(e.matrix_entries, B) for e in entries} == {old}


def test_the_peers_count_as_the_four_gate_lstm():
    size = BenchSize("s", 3, 64, 256, 512, "test")
    for entry in candidate_entries(BenchConfig(cells=("rnn",)), size)[: len(PEERS)]:
        assert entry.backend in PEERS
        assert flops_per_step(entry.matrix_entries, 64) == 2 * 64 * 4 * 512 * (256 + 512)


@pytest.mark.parametrize(
    ("cell", "entries"),
    [  # E from each family's documented shapes, I = 3, H = 4
        ("lstm-fgr", 4 * 4 * (3 + 4) + (3 * 4) ** 2),  # + weight_gg, i, f, o from i, f, o
        ("lstm-ln", 4 * 4 * (3 + 4)),  # layer-norm gains and biases are vectors
        ("slstm", 4 * 4 * (3 + 4)),  # weight_hh (4, 1 head, H, H)
        ("slstm-4heads", 4 * 4 * 3 + 4 * 4 * 1),  # weight_hh (4, 4 heads, 1, 1)
        ("clockwork", 4 * (3 + 4)),  # W_H stored whole, mask and all
        ("mingru", 2 * 4 * 3),  # weight_ih only: (z, h~) from x_t
        ("minlstm", 3 * 4 * 3),  # (f, i, h~) from x_t
        # two layers: layer 1 reads H; its depth gate's weight_xd (H, H)
        ("depth-gated", 4 * 4 * (3 + 4) + 4 * 4 * (4 + 4) + 4 * 4),
        # two layers of a time and a depth transform, each torch.nn.LSTM's shapes
        ("grid-lstm", 2 * 4 * 4 * (3 + 4) + 2 * 4 * 4 * (4 + 4)),
    ],
)
def test_flops_count_every_weight_matrix_of_the_layer(cell, entries):
    assert matrix_entries(meta_layer(cell, BenchSize("s", 3, 2, 3, 4, "test"))) == entries


@pytest.mark.parametrize("cell", [c for c in CELL_NAMES if c not in STACKS])
def test_every_supported_backend_and_auto_are_timed(cell):
    family = meta_layer(cell).family
    supported = [
        b for b in Backend if b is not Backend.AUTO and unsupported_reason(b, family) is None
    ]
    assert supported_backends(family) == supported
    config = BenchConfig(cells=(cell,), dtypes=("float32", "bfloat16"))
    entries = candidate_entries(config, TINY)
    assert [e.backend for e in entries] == [*PEERS, *(b.value for b in supported), "auto"]
    for dtype in ("float32", "bfloat16"):
        for graph, chosen in zip((False, True), entries[-1].resolved[dtype], strict=True):
            expected = choose_backend(Backend.AUTO, family, False, dtype=DTYPES[dtype], graph=graph)
            assert chosen == expected.value, (dtype, graph)


def test_auto_rows_name_what_ran_the_forward_and_the_forward_backward(capsys):
    """At batch 1 in bfloat16 auto runs the LSTM's forward on torch's kernel and its
    forward+backward on lstmkit's (at the other quick size, H=4 and B=2, both on torch's);
    the table says both where they differ, the JSON has each, and float32's rows are torch's."""
    argv = ["--cells", "lstm", "--backends", "auto", "--dtype", "float32,bfloat16"]
    rows = run_json(capsys, *argv)["rows"]
    auto = {(row["B"], row["dtype"], row["resolved"], row["resolved_fwd_bwd"]) for row in rows
            if row["backend"] == "auto"}  # fmt: skip
    assert auto == {
        (2, "float32", "torch", "torch"), (1, "float32", "torch", "torch"),
        (2, "bfloat16", "torch", "torch"), (1, "bfloat16", "torch", "fused"),
    }  # fmt: skip
    assert main(["bench", "--quick", *FAST, *argv]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(" auto (torch; f+b fused) " in line and "bfloat16" in line for line in lines) == 1
    assert sum(" auto (torch) " in line for line in lines) == 3


def test_backends_the_device_refuses_are_left_out(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # only the config checks it
    for entry in candidate_entries(BenchConfig(device="cuda", cells=CELL_NAMES), TINY):
        if entry.backend not in PEERS and entry.cell not in STACKS:  # accepted on CUDA
            family = meta_layer(entry.cell).family
            choose_backend(Backend(entry.backend), family, False, device_type="cuda")


def test_cells_option_takes_names_or_all():
    assert BenchConfig().cells == DEFAULT_CELLS == THE_SEVEN
    assert cell_list("gru, lstm,gru") == ("gru", "lstm")
    assert cell_list("all") == cell_list("lstm,ALL") == CELL_NAMES
    assert set(CELL_NAMES) == {*MODERN_CELLS, *BENCH_ONLY}


def test_help_lists_every_cell(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--help"])
    assert exit_info.value.code == 0
    text = "".join(capsys.readouterr().out.split())  # argparse wraps the help, at hyphens too
    for cell in [*MODERN_CELLS, *BENCH_ONLY, "all"]:
        assert cell in text
    assert "2*B*E" in text


def test_presets_hold_the_fields_sizes():
    fastrnns = preset_sizes(["fastrnns"])
    assert [(s.T, s.B, s.I, s.H) for s in fastrnns] == [(100, 64, 512, 512)]
    assert [(s.T, s.B, s.H) for s in preset_sizes(["flashrnn"])] == [(1024, 16, 768)]
    assert all(s.B == 1 for s in preset_sizes(["streaming"]))
    assert preset_sizes(["default", "fastrnns"]).count(fastrnns[0]) == 1


def test_candidates_take_turns_and_failures_are_kept():
    order: list[str] = []
    ticks = []

    def fails() -> None:
        order.append("bad")
        raise RuntimeError("CUDA out of memory (simulated)\nmore detail")

    calls = {"a": lambda: order.append("a"), "bad": fails, "b": lambda: order.append("b")}
    timings = interleaved_medians(
        calls, torch.device("cpu"), repeats=2, warmup=1, tick=lambda: ticks.append(1)
    )
    assert order == ["a", "bad", "b", "a", "b", "a", "b"]  # in turn; the failed one dropped
    assert len(ticks) == 3 * 3
    assert timings["bad"].seconds is None
    assert timings["bad"].error == "RuntimeError: CUDA out of memory (simulated)"
    assert timings["a"].seconds >= 0 and timings["a"].error is None


def test_a_failing_candidate_gets_an_error_row(monkeypatch):
    build = bench_run._build

    def build_or_fail(entry, size, device, dtype):
        if entry.backend == "manual":
            raise torch.OutOfMemoryError("out of memory (simulated)")
        return build(entry, size, device, dtype)

    monkeypatch.setattr(bench_run, "_build", build_or_fail)
    config = BenchConfig(sizes=(TINY,), cells=("lstm",), repeats=1, warmup=0, progress=False)
    rows = run_bench(config)
    failed = [row for row in rows if row.error]
    assert [row.backend for row in failed] == ["manual"]
    assert failed[0].error == "OutOfMemoryError: out of memory (simulated)"
    assert failed[0].fwd_ms is None and failed[0].ratio_fwd is None
    assert all(row.fwd_ms > 0 for row in rows if not row.error)
    assert "error: OutOfMemoryError: out of memory (simulated)" in format_table(rows, config)


# -- several dtypes in one run ---------------------------------------------------------------------

TWO_DTYPES = ("float32", "float64")  # float64 is cheap on any CPU, unlike bfloat16 on some


@pytest.fixture(scope="module")
def two_dtype_json() -> dict:
    """One --quick run of every cell in float32 and float64, as JSON (run once: a few seconds)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["bench", "--quick", *FAST, "--json", "--dtype", ",".join(TWO_DTYPES)]) == 0
    return json.loads(out.getvalue())


def _by_candidate(rows: list[dict], dtype: str) -> dict[tuple[str, str, str], dict]:
    """The rows of one dtype by (size, cell, backend)."""
    return {(r["config"], r["cell"], r["backend"]): r for r in rows if r["dtype"] == dtype}


def test_dtype_option_takes_a_comma_list():
    assert dtype_list("float32") == ("float32",)
    assert dtype_list("float32,bfloat16") == ("float32", "bfloat16")
    assert dtype_list(" Float64 , float32 ") == ("float64", "float32")  # the order is kept
    assert BenchConfig(dtypes=("bfloat16", "float32")).first_dtype == "bfloat16"


@pytest.mark.parametrize(
    ("dtypes", "message"),
    [
        (("float32", "float16"), "unknown dtype 'float16'; expected one of float32, bfloat16"),
        (("float32", "float64", "float32"), "dtype 'float32' given twice"),
        ((), "at least one"),
        ("float32", "got the string 'float32'"),
    ],
)
def test_config_refuses_bad_dtypes(dtypes, message):
    with pytest.raises(ValueError, match=message):
        BenchConfig(dtypes=dtypes)


def test_every_candidate_runs_in_every_dtype(two_dtype_json):
    rows = two_dtype_json["rows"]
    assert two_dtype_json["machine"]["dtypes"] == list(TWO_DTYPES)
    assert two_dtype_json["machine"]["dtype"] == "float32"  # the first, as before
    assert all(set(row) >= ROW_KEYS and row["error"] is None for row in rows)
    first, second = (_by_candidate(rows, dtype) for dtype in TWO_DTYPES)
    assert len(first) + len(second) == len(rows)
    assert set(first) == set(second)
    assert {cell for _, cell, _ in first} == set(THE_SEVEN)
    assert {backend for _, _, backend in first} >= set(PEERS)


def test_each_dtype_is_really_used(two_dtype_json):
    """The plain loop keeps its activations in the row's dtype: float64 keeps twice the
    bytes, so the rows are not float32 runs under another name."""
    first, second = (_by_candidate(two_dtype_json["rows"], dtype) for dtype in TWO_DTYPES)
    for key, row in first.items():
        if key[2] in (CELL_LOOP, "reference"):
            assert second[key]["saved_mb"] == pytest.approx(2 * row["saved_mb"]), key


def test_ratio_to_the_first_dtype_is_the_same_candidates_time(two_dtype_json):
    first, second = (_by_candidate(two_dtype_json["rows"], dtype) for dtype in TWO_DTYPES)
    for row in first.values():
        assert row["ratio_first_dtype_fwd"] is None and row["ratio_first_dtype_fwd_bwd"] is None
    for key, row in second.items():
        counterpart = first[key]
        assert row["ratio_first_dtype_fwd"] == pytest.approx(row["fwd_ms"] / counterpart["fwd_ms"])
        assert row["ratio_first_dtype_fwd_bwd"] == pytest.approx(
            row["fwd_bwd_ms"] / counterpart["fwd_bwd_ms"]
        )


def test_ratio_to_torch_lstm_stays_within_a_dtype(two_dtype_json):
    for dtype in TWO_DTYPES:
        rows = _by_candidate(two_dtype_json["rows"], dtype)
        for (size, _, _), row in rows.items():
            torch_row = rows[(size, "lstm", TORCH_LSTM)]
            assert row["ratio_fwd"] == pytest.approx(row["fwd_ms"] / torch_row["fwd_ms"])
            assert row["ratio_fwd_bwd"] == pytest.approx(
                row["fwd_bwd_ms"] / torch_row["fwd_bwd_ms"]
            )
            assert row["ratio_saved"] == pytest.approx(row["saved_mb"] / torch_row["saved_mb"])


def test_all_dtypes_of_a_size_share_the_rounds(monkeypatch):
    """Forward and forward+backward: one interleaved timing each per size, holding every
    candidate of every dtype, so a slow moment of the machine hits them all."""
    timed: list[set[str]] = []

    def recording(calls, *args, **kwargs):
        timed.append({key.dtype for key in calls})
        assert len(calls) == 2 * len(candidate_entries(config, TINY))
        return interleaved_medians(calls, *args, **kwargs)

    monkeypatch.setattr(bench_run, "interleaved_medians", recording)
    config = BenchConfig(
        sizes=(TINY,), cells=("rnn",), dtypes=TWO_DTYPES, repeats=1, warmup=0, progress=False
    )
    run_bench(config)
    assert timed == [set(TWO_DTYPES)] * 2


def test_every_dtype_gets_the_same_input_values():
    inputs = bench_run._inputs(TINY, TWO_DTYPES, torch.device("cpu"))
    x32, x64 = inputs["float32"].x, inputs["float64"].x
    assert x64.dtype == torch.float64 and x64.requires_grad and x64.is_leaf
    assert x32.requires_grad and x32.is_leaf
    torch.testing.assert_close(x64, x32.double(), rtol=0, atol=0)
    grad32, grad64 = inputs["float32"].grad_output, inputs["float64"].grad_output
    torch.testing.assert_close(grad64, grad32.double(), rtol=0, atol=0)


def test_a_failed_counterpart_leaves_the_dtype_ratio_empty(monkeypatch):
    build = bench_run._build

    def fail_in_float32(entry, size, device, dtype):
        if entry.backend == "torch" and dtype == torch.float32:
            raise RuntimeError("no float32 kernel (simulated)")
        return build(entry, size, device, dtype)

    monkeypatch.setattr(bench_run, "_build", fail_in_float32)
    config = BenchConfig(
        sizes=(TINY,), cells=("rnn",), dtypes=TWO_DTYPES, repeats=1, warmup=0, progress=False
    )
    rows = {(row.dtype, row.backend): row for row in run_bench(config)}
    assert rows[("float32", "torch")].error == "RuntimeError: no float32 kernel (simulated)"
    assert rows[("float64", "torch")].fwd_ms > 0
    assert rows[("float64", "torch")].ratio_first_dtype_fwd is None
    assert rows[("float64", "fused")].ratio_first_dtype_fwd > 0


def _table(capsys, dtypes: str) -> list[str]:
    argv = ["bench", "--quick", *FAST, "--cells", "rnn", "--backends", "torch", "--dtype", dtypes]
    assert main(argv) == 0
    return capsys.readouterr().out.splitlines()


def test_table_has_a_dtype_column_only_with_several_dtypes(capsys):
    single = _table(capsys, "float64")
    assert single[0].endswith(", float64")
    header = next(line for line in single if line.startswith("  cell "))
    assert " dtype " not in header and "x float" not in header
    assert header.split()[:3] == ["cell", "backend", "fwd"]

    several = _table(capsys, "float64,float32")
    assert several[0].endswith(", float64, float32")
    header = next(line for line in several if line.startswith("  cell "))
    assert header.split()[:3] == ["cell", "backend", "dtype"]
    assert "x float64 fwd" in header and "x float64 f+b" in header
    torch_rows = [
        line.split() for line in several if line.startswith(f"  lstm           {TORCH_LSTM}  ")
    ]
    # cell, backend, dtype, fwd ms, fwd+bwd ms, ms/step, x LSTM fwd, x LSTM f+b, x float64 fwd,
    # x float64 f+b, ..., x LSTM mem
    assert [row[2] for row in torch_rows] == ["float64", "float32"] * 2  # two sizes
    for row in torch_rows:  # each dtype's torch.nn.LSTM is its own yardstick
        assert row[6:8] == ["1.00x", "1.00x"] and row[-1] == "1.00x"
        first_dtype_ratios = row[8:10]
        if row[2] == "float64":
            assert first_dtype_ratios == ["-", "-"]
        else:
            assert all(ratio.endswith("x") and ratio != "-" for ratio in first_dtype_ratios)


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--cells", "lstm,warp"], "'warp'"),
        ([*QUICK, "--cells", "all,warp"], "unknown cell 'warp'; expected a comma-separated"),
        ([*QUICK, "--cells", ","], "expected a comma-separated list of lstm, gru"),
        (["--backends", "torch,warp"], "'warp'"),
        (["--sizes", "fastrnns,huge"], "'huge'"),
        (["--dtype", "float16"], "'float16'"),
        # --quick: should the check regress, a smoke run starts, not the default benchmark
        ([*QUICK, "--dtype", "float32,float16"], "unknown dtype 'float16'"),
        ([*QUICK, "--dtype", "float32,float64,float32"], "dtype 'float32' given twice"),
        ([*QUICK, "--dtype", ","], "at least one"),
        (["--device", "tpu"], "'tpu'"),
        (["--repeats", "0"], "'0'"),
        (["--quick", "--sizes", "fastrnns"], "--quick"),
    ],
)
def test_bad_input_is_one_line(capsys, argv, named):
    assert named in cli_error(capsys, ["bench", *argv])


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_one_line(capsys):
    assert "'cuda'" in cli_error(capsys, ["bench", "--quick", "--device", "cuda"])


def test_saved_bytes_count_what_autograd_keeps_once_and_leave_out_the_inputs():
    """On 1,000 float32 values: exp keeps its result (4,000 bytes) and the sine after it
    keeps its input, the same tensor, counted once; the product keeps x and the held weight,
    left out, and the sine after it keeps the product (4,000 more)."""
    x = torch.randn(1000, requires_grad=True)
    weight = torch.randn(1000, requires_grad=True)
    assert saved_activation_bytes(lambda x: x.exp().sin(), x, []) == 4000
    assert saved_activation_bytes(lambda x: (x * weight).sin().exp(), x, [weight]) == 8000

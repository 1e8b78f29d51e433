"""``lstmkit bench`` end to end on tiny sizes, its FLOP count, its choice of backends, its
interleaved timing, a candidate that fails, and its bad input."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import cli_error

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
from lstmkit.bench.memory import saved_activation_bytes
from lstmkit.bench.run import CELL_NAMES, CELLS, PEERS, TORCH_LSTM
from lstmkit.bench.timing import interleaved_medians
from lstmkit.cli import main
from lstmkit.layers.backends import Backend, choose_backend, unsupported_reason

FAST = ["--repeats", "1", "--warmup", "0", "--quiet"]
ROW_KEYS = {
    "config",
    "T",
    "B",
    "I",
    "H",
    "cell",
    "backend",
    "resolved",
    "fwd_ms",
    "fwd_bwd_ms",
    "ms_per_step",
    "ratio_fwd",
    "ratio_fwd_bwd",
    "gflops_fwd",
    "gflops_fwd_bwd",
    "saved_mb",
    "ratio_saved",
    "error",
}
TINY = BenchSize("tiny", 3, 2, 3, 4, "test")


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
    for cell in CELL_NAMES:  # each cell's auto row names what auto chose
        chosen = choose_backend(Backend.AUTO, CELLS[cell](4), tracing=False).value
        assert any(line.startswith(f"  {cell} ") and f" auto ({chosen}) " in line for line in lines)
    assert "error" not in out


def test_json_has_the_promised_keys_and_positive_ratios(capsys):
    out = run_json(capsys, "--cells", "lstm,cifg,gru", "--threads", "1")
    assert out["machine"]["threads"] == 1
    assert {"torch", "threads", "cpu", "gpu", "dtype", "device"} <= set(out["machine"])
    rows = out["rows"]
    assert rows and all(set(row) >= ROW_KEYS for row in rows)
    assert {row["cell"] for row in rows} == {"lstm", "cifg", "gru"}
    for row in rows:
        assert row["error"] is None
        keys = ("fwd_ms", "fwd_bwd_ms", "ms_per_step", "ratio_fwd", "ratio_fwd_bwd", "saved_mb")
        for key in (*keys, "ratio_saved"):
            assert row[key] > 0, (row, key)
        assert row["gflops_fwd"] > 0 and row["gflops_fwd_bwd"] > 0
    torch_rows = [row for row in rows if row["backend"] == TORCH_LSTM]
    ratios = [(r["ratio_fwd"], r["ratio_fwd_bwd"], r["ratio_saved"]) for r in torch_rows]
    assert ratios == [(1.0, 1.0, 1.0)] * 2
    assert all(row["resolved"] != "auto" for row in rows)


def test_forward_only_leaves_the_backward_columns_empty(capsys):
    out = run_json(capsys, "--cells", "rnn", "--backends", "torch", "--forward-only")
    assert [row["backend"] for row in out["rows"]][:3] == [*PEERS, "torch"]
    assert all(row["fwd_ms"] > 0 and row["fwd_bwd_ms"] is None for row in out["rows"])


# -- what is counted and timed --------------------------------------------------------------------


def test_flops_per_step():
    assert flops_per_step(4, 1, 1, 1) == 16  # LSTM, T=1 B=1 I=H=1: 2*1*4*1*(1+1)
    assert flops_per_step(3, 2, 3, 4) == 2 * 2 * 3 * 4 * 7  # GRU
    row = BenchRow(TINY, "rnn", "torch", "torch", 1, 2.0, 4.0, 1.0, 1.0)
    per_step = 2 * TINY.B * 1 * TINY.H * (TINY.I + TINY.H)
    assert row.flops_per_step == per_step
    assert row.ms_per_step == pytest.approx(2.0 / TINY.T)
    assert row.gflops_fwd == pytest.approx(per_step * TINY.T / 2e-3 / 1e9)
    assert row.gflops_fwd_bwd == pytest.approx(3 * per_step * TINY.T / 4e-3 / 1e9)


def test_gate_blocks_per_cell():
    blocks = {entry.cell: entry.gate_blocks for entry in candidate_entries(BenchConfig(), 8)}
    assert blocks == {
        "lstm": 4,
        "peephole": 4,
        "cifg": 3,
        "lstm-noforget": 3,
        "gru": 3,
        "rnn": 1,
        "rnn-relu": 1,
    }


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_every_supported_backend_and_auto_are_timed(cell):
    family = CELLS[cell](8)
    supported = [
        b for b in Backend if b is not Backend.AUTO and unsupported_reason(b, family) is None
    ]
    assert supported_backends(family) == supported
    entries = candidate_entries(BenchConfig(cells=(cell,)), 8)
    assert [e.backend for e in entries] == [*PEERS, *(b.value for b in supported), "auto"]
    assert entries[-1].resolved == choose_backend(Backend.AUTO, family, tracing=False).value


def test_backends_the_device_refuses_are_left_out(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # only the config checks it
    for entry in candidate_entries(BenchConfig(device="cuda"), 8):
        if entry.backend not in PEERS:  # choose_backend accepts it on CUDA: no ValueError
            family = CELLS[entry.cell](8)
            choose_backend(Backend(entry.backend), family, False, device_type="cuda")


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


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--cells", "lstm,warp"], "'warp'"),
        (["--backends", "torch,warp"], "'warp'"),
        (["--sizes", "fastrnns,huge"], "'huge'"),
        (["--dtype", "float16"], "'float16'"),
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

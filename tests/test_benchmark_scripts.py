"""Smoke tests of the scripts in benchmarks/: each runs on its --quick sizes and says what
its full run would say (the measurements themselves are in the docs, with their commands)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / name), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def test_compare_precision_trains_both_runs_and_draws_both_curves(tmp_path):
    out = tmp_path / "runs"
    result = _script(
        "compare_precision.py", "--quick", "--quiet", "--out", str(out), "--json",
        str(tmp_path / "c.json"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    comparison = json.loads((tmp_path / "c.json").read_text())
    full, mixed = comparison["runs"]["32"], comparison["runs"]["bf16-mixed"]
    assert full["config_precision"] == "32" and mixed["config_precision"] == "bf16-mixed"
    assert [s for s, _ in full["valid"]] == [s for s, _ in mixed["valid"]] != []
    assert (
        comparison["final_loss_difference"] == mixed["final_valid_loss"] - full["final_valid_loss"]
    )
    assert (out / "loss-curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "whole validation text: float32" in result.stdout


def test_gpu_check_runs_its_checks_on_the_interpreter(tmp_path):
    """The GPU machine's prepared command, here on CPU tensors through Triton's interpreter:
    the fused kernels of two cells and a projected LSTM against the reference loop, both
    dtypes, within bounds."""
    cells = ("rnn", "mingru", "lstm-ln-cell+proj")
    result = _script(
        "gpu_check.py", "--interpret", "--quick", "--cells", ",".join(cells), "--out", str(tmp_path)
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    checks = json.loads((tmp_path / "check.json").read_text())
    assert {(c["cell"], c["dtype"]) for c in checks} == {
        (cell, dtype) for cell in cells for dtype in ("float32", "bfloat16")
    }
    assert all(c["error"] is not None and c["error"] <= c["bound"] for c in checks)
    assert "mingru" in (tmp_path / "check.txt").read_text()


def test_gpu_check_prints_each_result_and_takes_chosen_shapes(tmp_path):
    """Step by step, as a short GPU lease wants it: the shapes by name, each result printed
    (and check.txt rewritten) as it comes; a wrong name or step is a one-line usage error."""
    result = _script(
        "gpu_check.py", "--interpret", "--quick", "--shapes", "tiny", "--cells", "rnn",
        "--no-timing", "--out", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["cell", "shape", "dtype", "error", "bound", "result"]
    assert [line.split()[:3] for line in lines[1:3]] == [
        ["rnn", "tiny", "float32"],
        ["rnn", "tiny", "bfloat16"],
    ]
    assert (tmp_path / "check.txt").read_text().splitlines() == lines[:3]
    for wrong, message in (
        (["--shapes", "tiny,huge"], "--shapes: unknown huge; expected names from tiny"),
        (["--timing-only"], "--timing-only times on the GPU"),
    ):
        bad = _script("gpu_check.py", "--interpret", "--quick", *wrong, "--out", str(tmp_path))
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr


def test_tanh_speed_times_three_functions_and_checks_the_kernels_tanh():
    result = _script("tanh_speed.py", "--values", "4096")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("4,096 float32 values")
    assert [line.split()[0] for line in lines[1:4]] == ["torch.tanh", "torch.sigmoid", "kernels'"]
    worst = float(lines[4].split(":")[1].split()[0])
    assert 0 <= worst <= 3.0, lines[4]
    bad = _script("tanh_speed.py", "--values", "0")
    assert bad.returncode == 2 and "--values must be at least 1" in bad.stderr


def test_small_batch_products_times_three_paths_and_names_the_rules_pick():
    result = _script("small_batch_products.py", "--hidden", "8,16", "--rounds", "1", "--steps", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split() for line in result.stdout.splitlines()[2:]]
    expected = [(dtype, h) for dtype in ("float32", "bfloat16") for h in ("8", "16")]
    assert [(r[0], r[1]) for r in rows] == expected
    assert all(r[6] == "vec_mat" and r[7] == "1.00x" for r in rows)  # tiny: vec_mat's
    bad = _script("small_batch_products.py", "--hidden", "8,x")
    assert bad.returncode == 2 and "--hidden must be a comma list of whole numbers" in bad.stderr


def test_gpu_check_times_every_fused_bench_cell_and_only_those(monkeypatch):
    """The timing step's configuration is one lstmkit bench accepts: the fused cells that
    are bench cells, the plain LSTM first; the layers left out are only the projected LSTMs,
    which the checks run and the bench has no name for."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import gpu_check
    import torch

    from lstmkit.bench.cells import CELL_NAMES

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # only the config checks it
    config = gpu_check.timing_config()
    assert config.cells[0] == "lstm" and set(config.cells) <= set(CELL_NAMES)
    left_out = set(gpu_check.fused_cells()) - set(config.cells)
    assert left_out == set(gpu_check.PROJECTED)
    assert "slstm-4heads" in config.cells and "rnn-relu" not in config.cells


def test_bfloat16_ceiling_prints_both_dtypes_and_the_three_speed_ups():
    result = _script("bfloat16_ceiling.py", "--quick", "--cells", "lstm,gru")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("  ")]
    tables = [tuple(r[:2]) for r in rows if r[1] in ("float32", "bfloat16")]
    cells = [(c, d) for c in ("lstm", "gru") for d in ("float32", "bfloat16")]
    assert tables == cells * 2  # the two quick sizes
    summaries = [line for line in result.stdout.splitlines() if "the ceiling" in line]
    assert len(summaries) == 4 and all("the whole call" in s for s in summaries)
    for wrong, message in (
        (["--cells", "lstm,nope"], "--cells: unknown nope"),
        (["--sizes", "huge"], "--sizes:"),
        (["--rounds", "0"], "--rounds must be at least 1"),
    ):
        bad = _script("bfloat16_ceiling.py", *wrong)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr


def test_bfloat16_ceiling_counts_the_product_operators_and_nothing_else(monkeypatch):
    """A profile of matrix products alone is all products; one of elementwise work, none."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bfloat16_ceiling
    import torch
    from torch.profiler import profile

    a, b = torch.randn(256, 256), torch.randn(256, 256)
    with profile() as products:
        for _ in range(5):
            torch.mm(a, b)
            torch.addmm(a, a, b)
    with profile() as elementwise:
        for _ in range(5):
            torch.tanh(a).add_(b).mul_(b)
    assert bfloat16_ceiling.products_ms(elementwise) == 0
    measured = bfloat16_ceiling.products_ms(products)
    expected = sum(e.self_cpu_time_total for e in products.key_averages()) / 1e3
    assert 0 < measured <= expected and measured > 0.5 * expected


def test_lstm_auto_grid_prints_each_point_with_autos_pick():
    result = _script("lstm_auto_grid.py", "--quick")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["H", "B=1", "B=4"]
    rows = [line.split() for line in lines[2:]]
    assert [row[0] for row in rows] == ["8", "16"]
    # at H < 512 auto trains a bfloat16 LSTM on the fused kernels at batch 1 only
    assert [row[2::2] for row in rows] == [["F", "t"], ["F", "t"]]
    assert all(float(v.rstrip("x")) > 0 for row in rows for v in row[1::2])
    bad = _script("lstm_auto_grid.py", "--batch", "1,x")
    assert bad.returncode == 2 and "--batch must be a comma list of whole numbers" in bad.stderr


def test_lstm_auto_grid_times_a_projected_stack_and_the_forward_alone():
    projected = _script(
        "lstm_auto_grid.py", "--quick", "--layers", "2", "--bidirectional", "--proj-size", "4"
    )
    assert projected.returncode == 0, projected.stderr[-3000:]
    lines = projected.stdout.splitlines()
    assert "2 layers, both directions, projection to 4; fused forward+backward" in lines[0]
    # a projected LSTM runs on the fused kernels on the CPU in every call
    assert [line.split()[2::2] for line in lines[2:]] == [["F", "F"], ["F", "F"]]
    forward = _script("lstm_auto_grid.py", "--quick", "--forward")
    assert forward.returncode == 0, forward.stderr[-3000:]
    lines = forward.stdout.splitlines()
    assert "1 layer, one direction; fused forward / torch's" in lines[0]
    # auto runs a plain LSTM's forward alone on torch's kernel
    assert [line.split()[2::2] for line in lines[2:]] == [["t", "t"], ["t", "t"]]
    bad = _script("lstm_auto_grid.py", "--quick", "--proj-size", "8")
    assert bad.returncode == 2
    assert "--proj-size must be 0 or below every --hidden, got 8" in bad.stderr

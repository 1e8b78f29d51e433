"""The speed benchmark runs end to end on tiny sizes and reports a row per candidate."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_lstm.py"


def load_benchmark():
    spec = importlib.util.spec_from_file_location("bench_lstm", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_quick_benchmark(tmp_path, capsys):
    bench = load_benchmark()
    out = tmp_path / "rows.json"
    assert bench.main(["--quick", "--repeats", "1", "--warmup", "0", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    candidates = {"torch.nn.LSTM", *bench.CANDIDATES}
    assert {(r["candidate"], r["mode"]) for r in rows} == {
        (c, m) for c in candidates for m in ("forward", "forward+backward")
    }
    assert all(r["seconds"] > 0 for r in rows)
    assert {r["backend"] for r in rows if r["candidate"] == "peephole"} == {"manual"}
    printed = capsys.readouterr().out
    assert "ratio = time / torch.nn.LSTM" in printed and "cifg" in printed


def test_targets_are_checked():
    bench = load_benchmark()
    slow = bench.Row("large", "peephole", "manual", "forward", 1.0, 3.5)
    fast = bench.Row("large", "plain", "torch", "forward", 1.0, 1.05)
    assert bench.check_targets([slow, fast]) == ["peephole forward: 3.50x > 3.0x"]


def test_quick_language_model_benchmark(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_lm", BENCH.with_name("bench_lm.py"))
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)
    out = tmp_path / "rows.json"
    assert bench.main(["--quick", "--repeats", "1", "--warmup", "0", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["model"] for r in rows] == ["torch.nn.LSTM", "lstmkit"]
    assert all(r["tokens_per_second"] > 0 for r in rows)
    assert rows[0]["ratio"] == 1.0


def test_explorer_benchmark_times_every_action(capsys):
    spec = importlib.util.spec_from_file_location(
        "bench_explorer", BENCH.with_name("bench_explorer.py")
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--tokens", "60", "--units", "8", "--repeats", "1"]) == 0
    printed = capsys.readouterr().out
    assert "page: 60 tokens, 1 x 8 units" in printed
    for action in ("open", *bench.ACTIONS):
        assert action in printed

"""The command line: the demo end to end with tiny settings, and bad input answered by one
line on stderr and exit status 2. Also the demo's data generator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import lstmkit
from lstmkit.cli import main
from lstmkit.demo import long_lag_batch

TINY = ["demo", "--lag", "5", "--steps", "20", "--hidden", "8", "--batch-size", "8"]


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    # The demo command may set torch's thread count; keep it from leaking into other tests.
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def table_rows(stdout: str) -> dict[str, list[str]]:
    """The demo's table as {cell: [lag, test acc, chance, solved, sequences, seconds]}."""
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["cell", "lag"])
    return {line.split()[0]: line.split()[1:] for line in lines[header + 1 :] if line.strip()}


# -- the demo ---------------------------------------------------------------------------


def test_demo_prints_a_row_per_cell(capsys):
    assert main([*TINY, "--cells", "lstm,rnn,gru", "--quiet"]) == 0
    captured = capsys.readouterr()
    rows = table_rows(captured.out)
    assert list(rows) == ["lstm", "rnn", "gru"]
    for lag, acc, chance, solved, sequences, seconds in rows.values():
        assert lag == "5"
        assert 0.0 <= float(acc) <= 1.0
        assert chance == "0.250"
        assert solved == ("yes" if float(acc) >= 0.95 else "no")
        assert sequences == str(20 * 8)
        assert float(seconds) >= 0.0
    assert captured.err == ""  # --quiet: no progress bar


def test_demo_shows_progress_on_stderr_and_is_reproducible(capsys):
    assert main([*TINY, "--cells", "rnn", "--seed", "3"]) == 0
    first = capsys.readouterr()
    assert "20/20" in first.err and "step/s" in first.err
    assert "20/20" not in first.out
    assert main([*TINY, "--cells", "rnn", "--seed", "3", "--quiet"]) == 0
    second = capsys.readouterr()
    # same seed, same accuracy (the last column, seconds, is allowed to differ)
    assert table_rows(first.out)["rnn"][:5] == table_rows(second.out)["rnn"][:5]


def test_default_cells_are_lstm_and_rnn(capsys):
    assert main([*TINY, "--steps", "1", "--quiet"]) == 0
    assert list(table_rows(capsys.readouterr().out)) == ["lstm", "rnn"]


def test_long_lag_batch_encoding():
    g = torch.Generator().manual_seed(0)
    x, y = long_lag_batch(batch_size=64, lag=7, num_classes=3, num_distractors=5, generator=g)
    assert x.shape == (64, 8, 8) and x.dtype == torch.float32
    assert y.shape == (64,) and y.dtype == torch.int64
    assert torch.equal(x.sum(dim=2), torch.ones(64, 8))  # one symbol per step
    symbols = x.argmax(dim=2)
    assert torch.equal(symbols[:, 0], y)  # the class symbol opens the sequence
    assert bool((symbols[:, 1:] >= 3).all())  # then only distractors
    assert set(y.tolist()) == {0, 1, 2}
    assert set(symbols[:, 1:].unique().tolist()) == {3, 4, 5, 6, 7}
    g2 = torch.Generator().manual_seed(0)
    x2, y2 = long_lag_batch(batch_size=64, lag=7, num_classes=3, num_distractors=5, generator=g2)
    assert torch.equal(x, x2) and torch.equal(y, y2)


# -- help -------------------------------------------------------------------------------


def test_no_subcommand_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: lstmkit")
    assert "demo" in err


@pytest.mark.parametrize(
    "argv, expected",
    [(["--help"], ["demo"]), (["demo", "--help"], ["--lag", "--cells", "--quiet"])],
)
def test_help(argv, expected, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for word in expected:
        assert word in out


# -- bad input ----------------------------------------------------------------------------

BAD_INPUT = {
    "lag-zero": (["demo", "--lag", "0"], ["--lag", "positive integer", "'0'"]),
    "lag-negative": (["demo", "--lag", "-3"], ["--lag", "positive integer", "'-3'"]),
    "lag-missing-value": (["demo", "--lag"], ["--lag", "expected one argument"]),
    "steps-not-a-number": (["demo", "--steps", "many"], ["--steps", "positive integer"]),
    "hidden-zero": (["demo", "--hidden", "0"], ["--hidden", "positive integer"]),
    "batch-size-fraction": (["demo", "--batch-size", "1.5"], ["--batch-size", "'1.5'"]),
    "seed-negative": (["demo", "--seed", "-1"], ["--seed", "[0, 2**32)"]),
    "unknown-cell": (
        ["demo", "--cells", "lstm,transformer"],
        ["--cells", "'transformer'", "lstm, rnn, gru"],
    ),
    "empty-cells": (["demo", "--cells", ","], ["--cells", "lstm, rnn, gru"]),
    "forget-bias-word": (["demo", "--forget-bias", "open"], ["--forget-bias", "'none'"]),
    "unknown-option": (["demo", "--epochs", "3"], ["--epochs", "lstmkit demo --help"]),
    "unknown-top-option": (["--verbose"], ["--verbose", "lstmkit --help"]),
    "unknown-subcommand": (["fit"], ["'fit'", "'train'"]),
    "abbreviated-option": (["demo", "--la", "5"], ["--la"]),
}


@pytest.mark.parametrize("argv, fragments", BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_one_line_and_exit_2(argv, fragments, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.endswith("\n") and captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("lstmkit: error: ")
    for fragment in fragments:
        assert fragment in captured.err


def test_bad_input_in_a_real_process_has_no_traceback():
    src = str(Path(lstmkit.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-m", "lstmkit", "demo", "--lag", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "lstmkit: error: argument --lag: expected a positive integer, got '0'"
    ]


@pytest.mark.parametrize("command", ["task", "horizon", "gradients", "compare", "bench", "train"])
def test_help_never_splits_a_cell_name_over_two_lines(command, capsys):
    """The comma lists of cell names wrap after a comma, never inside a name."""
    import re

    from lstmkit.layers.named import MODERN_CELLS

    with pytest.raises(SystemExit):
        main([command, "--help"])
    words = set(re.split(r"[\s,{}()]+", capsys.readouterr().out))
    named = [name for name in MODERN_CELLS if name in words]
    assert "lstm-noforget" in named and "gru-cho" in named, sorted(words)
    for fragment in ("noforg", "depth-gat", "gru-", "lstm-"):
        assert fragment not in words

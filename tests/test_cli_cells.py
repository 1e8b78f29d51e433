"""lstmkit cells: every registered cell with its parameter count, checked against torch's
own modules where torch has the cell, and the ratios the explainers quote."""

from __future__ import annotations

import json

import pytest
from helpers import cli_error
from torch import nn

from lstmkit.cli import main
from lstmkit.layers.named import MODERN_CELLS


def _rows(capsys, *args: str) -> dict[str, dict]:
    assert main(["cells", "--json", *args]) == 0
    return {row["cell"]: row for row in json.loads(capsys.readouterr().out)["cells"]}


def test_every_registered_cell_is_listed_with_torchs_counts_where_torch_has_it(capsys):
    rows = _rows(capsys, "--input", "7", "--hidden", "8")
    assert list(rows) == list(MODERN_CELLS)
    for name, module in [("lstm", nn.LSTM), ("gru", nn.GRU), ("rnn", nn.RNN)]:
        assert rows[name]["parameters"] == sum(p.numel() for p in module(7, 8).parameters())
    # the explainers' claim at equal sizes: four gate blocks against one, plus the peepholes
    assert rows["lstm"]["ratio_to_rnn"] == 4.0
    assert rows["gru"]["ratio_to_rnn"] == rows["cifg"]["ratio_to_rnn"] == 3.0
    assert rows["peephole"]["parameters"] == rows["lstm"]["parameters"] + 3 * 8
    assert rows["lstm"]["backends"] == ["reference", "manual", "torch", "fused"]
    assert rows["mgu"]["backends"] == rows["gru-cho"]["backends"] == ["reference", "fused"]
    assert rows["slstm"]["backends"] == rows["mingru"]["backends"] == ["reference", "fused"]
    assert (
        rows["depth-gated"]["backends"] == rows["grid-lstm"]["backends"] == ["reference", "fused"]
    )


def test_the_stacks_joined_through_memory_are_counted_at_two_layers(capsys):
    rows = _rows(capsys, "--input", "7", "--hidden", "8")
    two_lstm_layers = sum(p.numel() for p in nn.LSTM(7, 8, num_layers=2).parameters())
    assert rows["lstm"]["layers"] == 1
    assert rows["depth-gated"]["layers"] == rows["grid-lstm"]["layers"] == 2
    # Yao et al.'s depth gate on layer 1: W_xd (H, H), b_d, and the diagonal w_cd and w_ld
    assert rows["depth-gated"]["parameters"] == two_lstm_layers + 8 * 8 + 3 * 8
    # each grid block has a time and a depth transform of LSTM shape
    assert rows["grid-lstm"]["parameters"] == 2 * two_lstm_layers


def test_the_table_has_a_line_per_cell(capsys):
    assert main(["cells"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 + len(MODERN_CELLS)
    assert lines[2].split()[:3] == ["lstm", "132,096", "4.00x"]


@pytest.mark.parametrize("args", [["--hidden", "0"], ["--input", "x"]])
def test_bad_sizes_end_in_one_line(capsys, args):
    assert "--" in cli_error(capsys, ["cells", *args])


@pytest.mark.parametrize("name", ["depth-gated", "grid-lstm"])
def test_the_registry_builds_the_memory_joined_stacks_two_deep_and_has_no_step_cell(name):
    cell = MODERN_CELLS[name]
    assert cell.layer(3, 4, forget_bias=1.0, num_layers=1).num_layers == 2
    assert cell.layer(3, 4, forget_bias=1.0, num_layers=3).num_layers == 3
    with pytest.raises(ValueError, match="no single-step cell"):
        cell.cell(3, 4)


def test_gradients_refuses_a_cell_without_a_step_cell_in_one_line(capsys):
    message = cli_error(capsys, ["gradients", "--cells", "lstm,depth-gated"])
    assert "depth-gated" in message and "lstm" in message

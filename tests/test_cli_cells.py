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
    assert rows["mgu"]["backends"] == ["reference"]


def test_the_table_has_a_line_per_cell(capsys):
    assert main(["cells"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 + len(MODERN_CELLS)
    assert lines[2].split()[:3] == ["lstm", "132,096", "4.00x"]


@pytest.mark.parametrize("args", [["--hidden", "0"], ["--input", "x"]])
def test_bad_sizes_end_in_one_line(capsys, args):
    assert "--" in cli_error(capsys, ["cells", *args])

"""The cells the experiments can train, by the names the CLI uses.

Every name but ``lstm1997`` is a modern cell (:mod:`lstmkit.layers.named`): an lstmkit layer
trained with Adam on batches and full backpropagation through time
(``lstmkit.experiments.train``). ``lstm1997`` is the 1997 network itself, memory blocks and
truncated gradient and online SGD (``lstmkit.paper1997``); ``lstm-noforget`` is its cell
equations without the rest, trained the modern way, which separates what the cell
contributes from what the training does.
"""

from __future__ import annotations

from lstmkit.layers.named import MODERN_CELLS, ModernCell

__all__ = ["CELL_NAMES", "MODERN_CELLS", "PAPER_CELL", "ModernCell", "check_cell"]

PAPER_CELL = "lstm1997"
CELL_NAMES: tuple[str, ...] = (*MODERN_CELLS, PAPER_CELL)


def check_cell(name: str) -> str:
    """The name if lstmkit knows the cell, else a ValueError listing the ones it knows."""
    if name not in CELL_NAMES:
        raise ValueError(f"unknown cell {name!r}; expected one of {', '.join(CELL_NAMES)}")
    return name

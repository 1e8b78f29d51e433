"""``GRUCell``: torch.nn.GRUCell's interface. Equations: ``lstmkit.cellmath.gru``."""

from __future__ import annotations

from lstmkit.cellmath.gru import GRUFamily
from lstmkit.cells.base import RecurrentCell


class GRUCell(RecurrentCell):
    """One GRU step: ``h_1 = cell(input, h_0)``. Args as torch.nn.GRUCell."""

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__(GRUFamily(hidden_size), input_size, bias, None, device, dtype)

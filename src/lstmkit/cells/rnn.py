"""``RNNCell``: torch.nn.RNNCell's interface. Equation: ``lstmkit.cellmath.rnn``."""

from __future__ import annotations

from lstmkit.cellmath.rnn import RNNFamily
from lstmkit.cells.base import RecurrentCell


class RNNCell(RecurrentCell):
    """One plain RNN step: ``h_1 = cell(input, h_0)``. Args as torch.nn.RNNCell."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(
            RNNFamily(hidden_size, nonlinearity), input_size, bias, None, device, dtype
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, nonlinearity={self.family.nonlinearity!r}"

"""``MGUCell``: one step of the minimal gated unit, with torch.nn.GRUCell's interface.
Equations: ``lstmkit.cellmath.mgu``."""

from __future__ import annotations

from lstmkit.cellmath.mgu import MGUFamily
from lstmkit.cells.base import RecurrentCell


class MGUCell(RecurrentCell):
    """One MGU step (Zhou et al. 2016): ``h_1 = cell(input, h_0)``. Args as
    torch.nn.GRUCell; parameters ``weight_ih`` (2*hidden_size, input_size), ``weight_hh``
    (2*hidden_size, hidden_size), ``bias_ih`` and ``bias_hh`` (2*hidden_size,), gate blocks
    forget then candidate."""

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__(MGUFamily(hidden_size), input_size, bias, None, device, dtype)

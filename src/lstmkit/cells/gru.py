"""``GRUCell``: torch.nn.GRUCell's interface, and Cho et al.'s reset placement.
Equations: ``lstmkit.cellmath.gru``."""

from __future__ import annotations

from lstmkit.cellmath.gru import GRUFamily
from lstmkit.cells.base import RecurrentCell


class GRUCell(RecurrentCell):
    """One GRU step: ``h_1 = cell(input, h_0)``. Args as torch.nn.GRUCell, and keyword-only
    ``reset_after``: True (default) for torch's form, False for Cho et al.'s (2014), where the
    reset gate scales h_{t-1} before its product with W_hn."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        reset_after: bool = True,
    ) -> None:
        family = GRUFamily(hidden_size, reset_after=reset_after)
        super().__init__(family, input_size, bias, None, device, dtype)

    @property
    def reset_after(self) -> bool:
        return self.family.reset_after

    def extra_repr(self) -> str:
        return ", ".join([super().extra_repr(), *self.family.variant_options()])

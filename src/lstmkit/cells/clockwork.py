"""``ClockworkCell``: one step of the Clockwork RNN of Koutník et al. (2014), with its state
(h, clock). Equations, the clock, the mask, the shapes: ``lstmkit.cellmath.clockwork``."""

from __future__ import annotations

from torch import Tensor

from lstmkit.cellmath.clockwork import ClockworkFamily, check_clock
from lstmkit.cells.base import RecurrentCell


class ClockworkCell(RecurrentCell):
    """One Clockwork RNN step: ``(h_1, clock_1) = cell(input, (h_0, clock_0))``.

    Args: ``input_size``, ``hidden_size``, ``bias``, ``device``, ``dtype`` as
    torch.nn.RNNCell's, and keyword-only ``num_modules`` (the paper's periods 1, 2, 4, ...)
    or ``periods`` (any strictly increasing positive integers), exactly one of them.

    ``clock`` (batch, 1) is the step's t (the steps already taken, modulo the periods'
    least common multiple): the modules with t mod T_i = 0 update, the others keep their
    units of h. ``hx`` None starts from h = 0 at t = 0. With ``return_gates=True`` also
    returns the step's named quantities: hidden, active.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        num_modules: int | None = None,
        periods: tuple[int, ...] | None = None,
    ) -> None:
        family = ClockworkFamily(hidden_size, periods=periods, num_modules=num_modules)
        super().__init__(family, input_size, bias, None, device, dtype)

    def reset_parameters(self) -> None:
        """torch.nn.RNNCell's initialisation, then W_H's masked entries at 0."""
        super().reset_parameters()
        self.family.zero_masked_(self.weight_hh)

    def forward(self, input: Tensor, hx=None, *, return_gates: bool = False):
        if isinstance(hx, tuple | list) and len(hx) == 2 and isinstance(hx[1], Tensor):
            check_clock(hx[1], type(self).__name__)
        return super().forward(input, hx, return_gates=return_gates)

    def extra_repr(self) -> str:
        return ", ".join([super().extra_repr(), *self.family.variant_options()])

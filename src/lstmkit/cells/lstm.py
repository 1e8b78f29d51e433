"""``LSTMCell``: torch.nn.LSTMCell's interface, plus peepholes, coupled gates, the 1997 cell
without a forget gate, and a forget-gate bias. Equations: ``lstmkit.cellmath.lstm``."""

from __future__ import annotations

from lstmkit.cellmath.lstm import LSTMFamily
from lstmkit.cells.base import RecurrentCell


class LSTMCell(RecurrentCell):
    """One LSTM step: ``(h_1, c_1) = cell(input, (h_0, c_0))``.

    Args: as torch.nn.LSTMCell (``input_size``, ``hidden_size``, ``bias``, ``device``,
    ``dtype``), and keyword-only:

    - ``peephole``: gates look at the cell state (Gers & Schmidhuber 2000); adds
      ``weight_ci``, ``weight_cf``, ``weight_co`` of shape (hidden_size,).
    - ``coupled``: f_t = 1 - i_t (CIFG, Greff et al. 2015); the forget block is dropped from
      the stacked weights, which become (3*hidden_size, ·) in the order i, g, o.
    - ``forget_gate``: False gives the 1997 cell C_t = C_{t-1} + i_t*C~_t (also i, g, o).
    - ``forget_bias``: initial total forget-gate bias; None keeps torch's initialisation.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        peephole: bool = False,
        coupled: bool = False,
        forget_gate: bool = True,
        forget_bias: float | None = None,
    ) -> None:
        family = LSTMFamily(
            hidden_size,
            peephole=bool(peephole),
            coupled=bool(coupled),
            forget_gate=bool(forget_gate),
        )
        super().__init__(family, input_size, bias, forget_bias, device, dtype)

    def extra_repr(self) -> str:
        options = self.family.variant_options()
        if self.forget_bias is not None:
            options.append(f"forget_bias={self.forget_bias}")
        return ", ".join([super().extra_repr(), *options])

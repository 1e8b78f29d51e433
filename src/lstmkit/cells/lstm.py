"""``LSTMCell``: torch.nn.LSTMCell's interface, plus peepholes, coupled gates, the 1997 cell
without a forget gate, Greff et al.'s (2015) ablations, layer normalisation (Ba et al. 2016)
and a forget-gate bias. Equations: ``lstmkit.cellmath.lstm``."""

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
    - ``input_gate``, ``output_gate``: False fixes that gate at 1 (NIG, NOG) and drops its
      block from the stacked weights.
    - ``input_activation``, ``output_activation``: False removes the candidate's tanh (NIAF)
      or the tanh of C_t before the output gate (NOAF).
    - ``gate_recurrence``: True feeds the previous gate activations back into the gates
      (FGR); adds ``weight_gg``, and the state is ``(h, c, gates)``, gates (batch, K*H).
    - ``layer_norm``: ``"ba2016"``, ``"per-gate"`` or ``"cell"``; see
      :mod:`lstmkit.cellmath.lstm_options`.
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
        input_gate: bool = True,
        output_gate: bool = True,
        input_activation: bool = True,
        output_activation: bool = True,
        gate_recurrence: bool = False,
        layer_norm: str | None = None,
        forget_bias: float | None = None,
    ) -> None:
        family = LSTMFamily(
            hidden_size,
            peephole=bool(peephole),
            coupled=bool(coupled),
            forget_gate=bool(forget_gate),
            input_gate=bool(input_gate),
            output_gate=bool(output_gate),
            input_activation=bool(input_activation),
            output_activation=bool(output_activation),
            gate_recurrence=bool(gate_recurrence),
            layer_norm=layer_norm,
        )
        super().__init__(family, input_size, bias, forget_bias, device, dtype)

    def extra_repr(self) -> str:
        options = self.family.variant_options()
        if self.forget_bias is not None:
            options.append(f"forget_bias={self.forget_bias}")
        return ", ".join([super().extra_repr(), *options])

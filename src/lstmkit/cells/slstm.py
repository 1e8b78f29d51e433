"""``SLSTMCell``: one step of the sLSTM of Beck et al. (2024), with its four states
(h, c, n, m). Equations, gate order, parameter shapes: ``lstmkit.cellmath.slstm``."""

from __future__ import annotations

from lstmkit.cellmath.slstm import SLSTMFamily
from lstmkit.cells.base import RecurrentCell


class SLSTMCell(RecurrentCell):
    """One sLSTM step: ``(h_1, c_1, n_1, m_1) = cell(input, (h_0, c_0, n_0, m_0))``.

    Args: ``input_size``, ``hidden_size``, ``bias``, ``device``, ``dtype`` as
    torch.nn.LSTMCell's, and keyword-only:

    - ``num_heads``: heads of hidden_size / num_heads units; the recurrent matrices are
      block-diagonal, one block per head (``weight_hh`` (4, num_heads, D, D), D the head size).
    - ``forget_activation``: ``"sigmoid"`` (default) or ``"exp"``.
    - ``stabilized``: True (default) for the stabilised form, False for the plain equations.
    - ``forget_bias``: initial total forget-gate bias; None keeps the uniform initialisation.

    ``hx`` None starts from zeros. With ``return_gates=True`` also returns the step's named
    quantities: input, forget, candidate, output, cell, normalizer, stabilizer, hidden.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        num_heads: int = 1,
        forget_activation: str = "sigmoid",
        stabilized: bool = True,
        forget_bias: float | None = None,
    ) -> None:
        family = SLSTMFamily(
            hidden_size,
            num_heads=num_heads,
            forget_activation=forget_activation,
            stabilized=stabilized,
        )
        super().__init__(family, input_size, bias, forget_bias, device, dtype)

    def extra_repr(self) -> str:
        options = self.family.variant_options()
        if self.forget_bias is not None:
            options.append(f"forget_bias={self.forget_bias}")
        return ", ".join([super().extra_repr(), *options])

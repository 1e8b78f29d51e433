"""``SLSTMCell``: one step of the sLSTM of Beck et al. (2024), with its four states
(h, c, n, m). Equations, gate order, parameter shapes: ``lstmkit.cellmath.slstm``."""

from __future__ import annotations

from torch import Tensor

from lstmkit._checks import expect_like, expect_shape, expect_tensor
from lstmkit.cellmath.slstm import SLSTMFamily
from lstmkit.cells.base import RecurrentCell

STATE_ARG_NAMES = tuple(
    f"hx[{k}] ({name}_0)" for k, name in enumerate(SLSTMFamily.state_names)
)  # how messages name the parts of hx: "hx[2] (n_0)"


def state_tuple(hx, owner: str) -> tuple[Tensor, ...]:
    """The user's initial state (h_0, c_0, n_0, m_0) as a tuple of four tensors.

    lstmkit._state names the parts of a one- or two-tensor state only; the sLSTM has four,
    so its modules check them here."""
    if not isinstance(hx, tuple | list) or len(hx) != len(STATE_ARG_NAMES):
        raise TypeError(
            f"{owner}: hx must be a tuple (h_0, c_0, n_0, m_0) of 4 tensors (hidden, cell, "
            f"normalizer, stabilizer), got {type(hx).__name__}"
            + (f" of length {len(hx)}" if isinstance(hx, tuple | list) else "")
        )
    return tuple(expect_tensor(s, name, owner) for s, name in zip(hx, STATE_ARG_NAMES, strict=True))


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

    def _initial_state(self, hx, x: Tensor, batched: bool, owner: str) -> tuple[Tensor, ...]:
        if hx is None:
            return super()._initial_state(None, x, batched, owner)  # zeros
        state = state_tuple(hx, owner)
        for tensor, name in zip(state, STATE_ARG_NAMES, strict=True):
            expected = (x.shape[0], self.hidden_size) if batched else (self.hidden_size,)
            meaning = "(batch, hidden_size)" if batched else "(hidden_size,) for unbatched input"
            expect_shape(tensor, expected, name, owner, meaning)
            expect_like(tensor, self.weight_ih, name, owner)
        return state if batched else tuple(s.unsqueeze(0) for s in state)

    def extra_repr(self) -> str:
        options = self.family.variant_options()
        if self.forget_bias is not None:
            options.append(f"forget_bias={self.forget_bias}")
        return ", ".join([super().extra_repr(), *options])

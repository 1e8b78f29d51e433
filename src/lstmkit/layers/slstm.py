"""``SLSTM``: a sequence layer of the sLSTM of Beck et al. (2024), "xLSTM", Sec. 2.2.

Equations, gate order and shapes: :mod:`lstmkit.cellmath.slstm`.
"""

from __future__ import annotations

from lstmkit.cellmath.slstm import SLSTMFamily
from lstmkit.layers.backends import Backend
from lstmkit.layers.base import RecurrentLayer


class SLSTM(RecurrentLayer):
    """A multi-layer, optionally bidirectional sLSTM with torch.nn.LSTM's interface.

    Positional arguments and defaults are torch.nn.LSTM's (without ``proj_size``):
    ``input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, device=None, dtype=None``. Keyword-only:

    - ``num_heads``: heads of hidden_size / num_heads units each (it must divide
      hidden_size); the recurrent matrices are block-diagonal, one block per head, and only
      the blocks are stored: ``weight_hh_l{k}`` has shape (4, num_heads, D, D), D the head
      size.
    - ``forget_activation``: ``"sigmoid"`` (default) or ``"exp"``.
    - ``stabilized``: True (default) for the stabilised form; False for the plain
      equations, which overflow once an input-gate pre-activation passes log(max float).
    - ``forget_bias``: initial total forget-gate bias; None keeps the uniform initialisation.
    - ``backend``: ``"fused"`` runs every option on lstmkit's own kernels, C++ for CPU
      tensors and Triton for CUDA tensors, with hand-written backward passes (first
      derivatives only); ``"auto"`` takes the C++ kernels on the CPU and the reference loop
      elsewhere and for traced calls; ``"reference"`` is the loop over the family's step
      under autograd; ``"torch"`` and ``"manual"`` are refused (torch has no sLSTM).
    - ``recompute_every``, ``weight_drop`` (on the stored blocks of the recurrent
      matrices): see :class:`~lstmkit.layers.base.RecurrentLayer`. Zoneout is offered for h
      alone, as the attribute ``zoneout = (h_rate, 0, 0, 0)``: c, n and m together represent
      one cell value (c and n scaled by exp(-m)), and keeping some of them at their old
      values but not the others would change that value arbitrarily.

    ``forward(input, hx=None, *, lengths=None, return_trace=False)`` returns ``output,
    (h_n, c_n, n_n, m_n)``; ``hx`` is that 4-tuple, zeros when None. Shapes (N batch, L
    length, D directions, H hidden_size): output (L, N, D*H), each state (D*num_layers, N, H).
    Trace names: input, forget, candidate, output, cell, normalizer, stabilizer, hidden.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        num_heads: int = 1,
        forget_activation: str = "sigmoid",
        stabilized: bool = True,
        forget_bias: float | None = None,
        backend: Backend | str = Backend.AUTO,
        recompute_every: int | None = None,
        weight_drop: float = 0.0,
    ) -> None:
        family = SLSTMFamily(
            hidden_size,
            num_heads=num_heads,
            forget_activation=forget_activation,
            stabilized=stabilized,
        )
        super().__init__(
            family,
            input_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            device,
            dtype,
            forget_bias=forget_bias,
            backend=backend,
            recompute_every=recompute_every,
            weight_drop=weight_drop,
        )

    @property
    def num_heads(self) -> int:
        return self.family.num_heads

    def extra_repr(self) -> str:
        parts = [super().extra_repr(), *self.family.variant_options()]
        if self.forget_bias is not None:
            parts.append(f"forget_bias={self.forget_bias}")
        return ", ".join(parts)

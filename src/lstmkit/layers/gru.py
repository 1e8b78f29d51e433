"""``GRU``: torch.nn.GRU's interface and parameters, and Cho et al.'s reset placement.
Equations: :mod:`lstmkit.cellmath.gru`."""

from __future__ import annotations

from lstmkit.cellmath.gru import GRUFamily
from lstmkit.layers.backends import Backend
from lstmkit.layers.base import RecurrentLayer


class GRU(RecurrentLayer):
    """A drop-in for ``torch.nn.GRU``: same arguments (``input_size, hidden_size,
    num_layers=1, bias=True, batch_first=False, dropout=0.0, bidirectional=False, device=None,
    dtype=None``), parameters and outputs ``(output, h_n)``; plus keyword-only:

    - ``reset_after``: True (default) is torch's and cuDNN's GRU, whose reset gate scales
      h_{t-1} W_hn^T + b_hn; False is Cho et al.'s (2014), whose reset gate scales h_{t-1}
      before W_hn (ONNX's ``linear_before_reset=0``). Same parameters either way. lstmkit's
      fused kernels run both (torch's kernels only True), so ``backend='auto'`` takes them
      on the CPU.
    - ``backend``, ``recompute_every`` and the recurrent regularisers ``recurrent_dropout``,
      ``zoneout`` and ``weight_drop`` (see :class:`~lstmkit.layers.base.RecurrentLayer`).

    ``forward`` also takes ``lengths=`` and ``return_trace=``."""

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
        reset_after: bool = True,
        backend: Backend | str = Backend.AUTO,
        recompute_every: int | None = None,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        weight_drop: float = 0.0,
    ) -> None:
        super().__init__(
            GRUFamily(hidden_size, reset_after=reset_after),
            input_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            device,
            dtype,
            backend=backend,
            recompute_every=recompute_every,
            recurrent_dropout=recurrent_dropout,
            zoneout=zoneout,
            weight_drop=weight_drop,
        )

    @property
    def reset_after(self) -> bool:
        return self.family.reset_after

    def extra_repr(self) -> str:
        return ", ".join([super().extra_repr(), *self.family.variant_options()])

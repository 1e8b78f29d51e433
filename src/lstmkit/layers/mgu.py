"""``MGU``: the minimal gated unit as a sequence layer with torch.nn.GRU's interface.
Equations: :mod:`lstmkit.cellmath.mgu`."""

from __future__ import annotations

from lstmkit.cellmath.mgu import MGUFamily
from lstmkit.layers.backends import Backend
from lstmkit.layers.base import RecurrentLayer


class MGU(RecurrentLayer):
    """The minimal gated unit (Zhou et al. 2016) with torch.nn.GRU's arguments
    (``input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, device=None, dtype=None``) and outputs ``(output, h_n)``; plus
    keyword-only ``backend``, ``recompute_every``, ``zoneout`` and ``weight_drop`` (see
    :class:`~lstmkit.layers.base.RecurrentLayer`; recurrent dropout is implemented for the
    LSTM, GRU and RNN only), and ``lengths=`` and ``return_trace=`` in
    ``forward``. Parameters are named as torch's GRU names them (``weight_ih_l0``,
    ``bias_hh_l1_reverse``, ...), with two gate blocks (forget, candidate) instead of three:
    ``weight_ih_l{k}`` (2*hidden_size, input), ``weight_hh_l{k}`` (2*hidden_size,
    hidden_size). The reference loop and lstmkit's fused kernels run it; ``backend='auto'``
    takes the fused ones on the CPU."""

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
        backend: Backend | str = Backend.AUTO,
        recompute_every: int | None = None,
        zoneout: float | tuple[float, ...] = 0.0,
        weight_drop: float = 0.0,
    ) -> None:
        super().__init__(
            MGUFamily(hidden_size),
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
            zoneout=zoneout,
            weight_drop=weight_drop,
        )

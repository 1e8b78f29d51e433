"""``GRU``: torch.nn.GRU's interface and parameters. Equations: :mod:`lstmkit.cellmath.gru`."""

from __future__ import annotations

from lstmkit.cellmath.gru import GRUFamily
from lstmkit.layers.backends import Backend
from lstmkit.layers.base import RecurrentLayer


class GRU(RecurrentLayer):
    """A drop-in for ``torch.nn.GRU``: same arguments (``input_size, hidden_size,
    num_layers=1, bias=True, batch_first=False, dropout=0.0, bidirectional=False, device=None,
    dtype=None``), parameters and outputs ``(output, h_n)``; plus keyword-only ``backend``
    and ``recompute_every`` (see :class:`~lstmkit.layers.base.RecurrentLayer`), and
    ``lengths=`` and ``return_trace=`` in ``forward``."""

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
    ) -> None:
        super().__init__(
            GRUFamily(hidden_size),
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
        )

"""``RNN``: torch.nn.RNN's interface and parameters. Equation: :mod:`lstmkit.cellmath.rnn`."""

from __future__ import annotations

from lstmkit.cellmath.rnn import RNNFamily
from lstmkit.layers.backends import Backend
from lstmkit.layers.base import RecurrentLayer


class RNN(RecurrentLayer):
    """A drop-in for ``torch.nn.RNN``: same arguments, in torch's order (``input_size,
    hidden_size, num_layers=1, nonlinearity='tanh', bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, device=None, dtype=None``), parameters and outputs
    ``(output, h_n)``; plus keyword-only ``backend``, ``recompute_every`` and the recurrent
    regularisers ``recurrent_dropout``, ``zoneout`` and ``weight_drop`` (see
    :class:`~lstmkit.layers.base.RecurrentLayer`), and ``lengths=`` and ``return_trace=`` in
    ``forward``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        backend: Backend | str = Backend.AUTO,
        recompute_every: int | None = None,
        recurrent_dropout: float = 0.0,
        zoneout: float = 0.0,
        weight_drop: float = 0.0,
    ) -> None:
        super().__init__(
            RNNFamily(hidden_size, nonlinearity),
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
    def nonlinearity(self) -> str:
        return self.family.nonlinearity

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, nonlinearity={self.nonlinearity!r}"

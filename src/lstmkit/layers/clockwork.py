"""``ClockworkRNN``: a sequence layer of the Clockwork RNN of Koutník et al. (2014), Sec. 3.

Equations, the clock state, the mask and the shapes: :mod:`lstmkit.cellmath.clockwork`.
"""

from __future__ import annotations

from torch import Tensor

from lstmkit.cellmath.clockwork import ClockworkFamily, check_clock
from lstmkit.layers.backends import Backend
from lstmkit.layers.base import RecurrentLayer


class ClockworkRNN(RecurrentLayer):
    """A multi-layer, optionally bidirectional Clockwork RNN with torch.nn.RNN's interface.

    Positional arguments and defaults are torch.nn.RNN's without ``nonlinearity`` (the
    Clockwork RNN's is tanh): ``input_size, hidden_size, num_layers=1, bias=True,
    batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None``.
    Keyword-only:

    - ``num_modules``: g modules of hidden_size / g units with the paper's periods 1, 2, 4,
      ..., 2**(g-1); or
    - ``periods``: the modules' periods (T_1, ..., T_g), any strictly increasing positive
      integers. Exactly one of the two; g must divide hidden_size.
    - ``backend``: ``"fused"`` runs lstmkit's kernels, C++ for CPU tensors and Triton for
      CUDA ones, which compute at each step only the running modules' rows of W_H h_{t-1},
      over the columns of modules at least as slow (the paper's saving, Sec. 3);
      ``"auto"`` takes the C++ kernels on the CPU and the reference loop elsewhere and for
      traced calls; ``"reference"`` is the Python loop; ``"torch"`` and ``"manual"`` are
      refused.
    - ``recompute_every``, ``weight_drop`` (on the stored W_H; its masked entries stay
      inactive) and ``zoneout`` of h alone, ``(h_rate, 0.0)``: see
      :class:`~lstmkit.layers.base.RecurrentLayer`. The clock must count every step.

    ``forward(input, hx=None, *, lengths=None, return_trace=False)`` returns ``output,
    (h_n, clock_n)``. The state is ``(h, clock)``: clock (D*num_layers, N, 1) holds the steps
    each layer, direction and sequence has taken (modulo the periods' least common
    multiple), in the parameters' dtype; zeros when ``hx`` is None. Passing a final state
    back in continues the modules' schedule where it stopped. Shapes (N batch, L length, D
    directions, H hidden_size): output (L, N, D*H), h (D*num_layers, N, H).

    ``weight_hh_l{k}`` is (H, H) as torch.nn.RNN's; the step uses it times the fixed
    block-upper-triangular mask (slower modules feed faster ones), so its masked entries
    start at 0, never act and get zero gradient. Trace names: hidden, active.
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
        num_modules: int | None = None,
        periods: tuple[int, ...] | None = None,
        backend: Backend | str = Backend.AUTO,
        recompute_every: int | None = None,
        zoneout: float | tuple[float, ...] = 0.0,
        weight_drop: float = 0.0,
    ) -> None:
        family = ClockworkFamily(hidden_size, periods=periods, num_modules=num_modules)
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
            backend=backend,
            recompute_every=recompute_every,
            zoneout=zoneout,
            weight_drop=weight_drop,
        )

    @property
    def periods(self) -> tuple[int, ...]:
        return self.family.periods

    @property
    def num_modules(self) -> int:
        return len(self.family.periods)

    def reset_parameters(self) -> None:
        """torch.nn.RNN's initialisation, then W_H's masked entries at 0."""
        super().reset_parameters()
        for layer in range(self.num_layers):
            for direction in range(self.num_directions):
                self.family.zero_masked_(self.layer_weights(layer, direction)["weight_hh"])

    def forward(self, input, hx=None, *, lengths=None, return_trace: bool = False):
        if isinstance(hx, tuple | list) and len(hx) == 2 and isinstance(hx[1], Tensor):
            check_clock(hx[1], type(self).__name__)
        return super().forward(input, hx, lengths=lengths, return_trace=return_trace)

    def extra_repr(self) -> str:
        return ", ".join([super().extra_repr(), *self.family.variant_options()])

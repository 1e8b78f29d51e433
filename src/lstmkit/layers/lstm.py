"""``LSTM``: torch.nn.LSTM's interface and parameters, plus the variants torch lacks.

Equations, gate order and shapes: :mod:`lstmkit.cellmath.lstm`.
"""

from __future__ import annotations

from lstmkit.cellmath.lstm import LSTMFamily
from lstmkit.layers.backends import Backend
from lstmkit.layers.base import RecurrentLayer


class LSTM(RecurrentLayer):
    """A drop-in for ``torch.nn.LSTM``.

    Positional arguments and defaults are torch's: ``input_size, hidden_size, num_layers=1,
    bias=True, batch_first=False, dropout=0.0, bidirectional=False, proj_size=0, device=None,
    dtype=None``. Parameters are named and shaped as torch's (``weight_ih_l0``,
    ``bias_hh_l1_reverse``, ``weight_hr_l0``, ...), so state dicts move both ways. Keyword-only
    variant options (each with its paper in :mod:`lstmkit.cellmath.lstm`):

    - ``peephole``: gates look at the cell state; adds ``weight_ci_l{k}``, ``weight_cf_l{k}``,
      ``weight_co_l{k}`` of shape (hidden_size,).
    - ``coupled``: forget gate f_t = 1 - i_t (CIFG); gate blocks become i, g, o.
    - ``forget_gate``: False gives the 1997 cell without a forget gate; gate blocks i, g, o.
    - ``input_gate``, ``output_gate``: False fixes that gate at 1 (Greff et al.'s NIG, NOG)
      and drops its block from the stacked weights (and its peephole).
    - ``input_activation``, ``output_activation``: False removes the tanh of the candidate
      (NIAF) or of the cell state before the output gate (NOAF).
    - ``gate_recurrence``: True feeds the previous step's gate activations back into the
      gates (FGR); adds ``weight_gg_l{k}``, and the state becomes ``(h, c, gates)`` with
      gates (D*num_layers, N, K*hidden_size), K the number of sigmoid gates.
    - ``layer_norm``: ``"ba2016"`` (Ba et al. 2016), ``"per-gate"`` (TensorFlow's
      LayerNormBasicLSTMCell) or ``"cell"``; adds ``ln_weight_*``/``ln_bias_*`` parameters,
      gains initialised to 1 and shifts to 0 (:mod:`lstmkit.cellmath.lstm_options`).
    - ``forget_bias``: initial total forget-gate bias (1.0 per Jozefowicz et al. 2015);
      None keeps torch's initialisation.
    - ``backend``: ``"auto"``, ``"reference"``, ``"manual"``, ``"torch"`` or ``"fused"``;
      see :mod:`lstmkit.layers.backends`.
    - ``recompute_every``: keep the state every N steps for the backward and recompute the
      rest (see :class:`~lstmkit.layers.base.RecurrentLayer`).
    - ``recurrent_dropout``, ``zoneout`` (one rate, or ``(h_rate, c_rate)``), ``weight_drop``:
      the recurrent regularisers, off by default (:mod:`lstmkit.layers.regularize`).

    ``forward(input, hx=None, *, lengths=None, return_trace=False)`` returns
    ``output, (h_n, c_n)`` like torch's, and the :class:`~lstmkit.trace.Trace` third with
    ``return_trace=True``. Shapes (N batch, L length, D directions, H_out = proj_size or
    hidden_size): output (L, N, D*H_out), h_n (D*num_layers, N, H_out), c_n
    (D*num_layers, N, hidden_size). With ``gate_recurrence`` the state is
    ``(h_n, c_n, gates_n)``, and ``hx`` takes the same three.
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
        proj_size: int = 0,
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
        backend: Backend | str = Backend.AUTO,
        recompute_every: int | None = None,
        recurrent_dropout: float = 0.0,
        zoneout: float | tuple[float, ...] = 0.0,
        weight_drop: float = 0.0,
    ) -> None:
        _check_proj_size(proj_size, hidden_size)
        family = LSTMFamily(
            hidden_size,
            proj_size=proj_size,
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
            recurrent_dropout=recurrent_dropout,
            zoneout=zoneout,
            weight_drop=weight_drop,
        )

    @property
    def proj_size(self) -> int:
        return self.family.proj_size

    def extra_repr(self) -> str:
        parts = [super().extra_repr()]
        if self.proj_size:
            parts.append(f"proj_size={self.proj_size}")
        parts += self.family.variant_options()
        if self.forget_bias is not None:
            parts.append(f"forget_bias={self.forget_bias}")
        return ", ".join(parts)


def _check_proj_size(proj_size, hidden_size) -> None:
    if isinstance(proj_size, bool) or not isinstance(proj_size, int) or proj_size < 0:
        raise ValueError(f"LSTM: proj_size must be an integer >= 0, got {proj_size!r}")
    if proj_size and isinstance(hidden_size, int) and proj_size >= hidden_size:
        raise ValueError(
            f"LSTM: proj_size must be smaller than hidden_size, got proj_size={proj_size} "
            f"and hidden_size={hidden_size}"
        )

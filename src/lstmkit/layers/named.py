"""The modern cells by the names the command line uses (lstm, gru, rnn, peephole, cifg,
lstm-noforget, gru-cho, mgu, ...), each buildable as a stacked layer (for training) or a
single-step cell. A cell joins the tasks, the horizon, the language model and the forecaster
by its entry here.

Two entries are stacks whose layers are joined through their memory (the depth-gated and the
Grid LSTM): with one layer the depth-gated LSTM has no memory below it and is a plain LSTM,
and a one-block grid hands nothing up its depth memory, so the registry builds them with at
least two layers (``min_layers``), and they have no single-step cell (``cell_class`` None):
one step of theirs is a step of the whole stack.

The LSTMs start with the forget-gate bias at ``forget_bias`` (1.0 unless changed), the
default of Keras (``unit_forget_bias=True``) and the recommendation of Jozefowicz et al.
(2015): with torch's initialisation the forget gate starts near 0.5, and 0.5**T erases the
carousel's memory of a long lag before training can learn to keep it. CIFG has no forget
gate of its own (f = 1 - i), so its input-gate bias starts at -forget_bias instead, which
opens f just as far.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from lstmkit.cells import GRUCell, LSTMCell, RNNCell
from lstmkit.cells.clockwork import ClockworkCell
from lstmkit.cells.mgu import MGUCell
from lstmkit.cells.minrnn import MinGRUCell, MinLSTMCell
from lstmkit.cells.slstm import SLSTMCell
from lstmkit.layers.clockwork import ClockworkRNN
from lstmkit.layers.depth_gated import DepthGatedLSTM
from lstmkit.layers.grid_lstm import GridLSTM
from lstmkit.layers.gru import GRU
from lstmkit.layers.lstm import LSTM
from lstmkit.layers.mgu import MGU
from lstmkit.layers.minrnn import MinGRU, MinLSTM
from lstmkit.layers.rnn import RNN
from lstmkit.layers.slstm import SLSTM


@dataclass(frozen=True)
class ModernCell:
    """How to build one modern cell as a layer (for training) or a cell (for stepping)."""

    name: str
    family: str
    """The cell family's name (its equations and diagrams): 'lstm', 'gru', 'rnn', 'mgu', ..."""
    description: str
    layer_class: type[nn.Module]
    """The sequence layer, with torch.nn.LSTM's constructor (input_size, hidden_size, ...)."""
    cell_class: type[nn.Module] | None
    """The matching single-step cell, with torch.nn.LSTMCell's constructor; None for the
    stacks joined through their memory, whose step is a step of every layer."""
    options: dict[str, object] = field(default_factory=dict)
    """Keyword options of both classes (peephole, coupled, forget_gate, reset_after, ...)."""
    min_layers: int = 1
    """The fewest layers the cell means anything with; ``layer`` builds at least these."""

    @property
    def has_forget_gate(self) -> bool:
        """Whether ``forget_bias`` applies: the LSTMs (the depth-gated and Grid LSTM's
        transforms included) but the 1997 cell, which does not forget (CIFG does, as 1 - i)."""
        return self.family in _FORGETTING_FAMILIES and self.options.get("forget_gate", True)

    def layer(
        self,
        input_size: int,
        hidden: int,
        forget_bias: float | None,
        *,
        num_layers: int = 1,
        dropout: float = 0.0,
        batch_first: bool = True,
        **layer_options,
    ) -> nn.Module:
        """An lstmkit layer of ``max(num_layers, min_layers)`` layers, with ``dropout``
        between them, batch-first unless told otherwise. ``forget_bias`` is for the cells
        with a forget gate; the others ignore it. ``layer_options`` go to the layer class
        as they are (``backend=``, ``device=``, ``dtype=``)."""
        stack = {
            "num_layers": max(num_layers, self.min_layers),
            "dropout": dropout,
            "batch_first": batch_first,
            **layer_options,
        }
        if self.family not in _FORGETTING_FAMILIES:
            return self.layer_class(input_size, hidden, **stack, **self.options)
        coupled = self.options.get("coupled", False)
        own_bias = forget_bias if self.has_forget_gate and not coupled else None
        layer = self.layer_class(input_size, hidden, **stack, **self.options, forget_bias=own_bias)
        if coupled and forget_bias is not None:
            _open_coupled_forget_gate(layer, hidden, forget_bias)
        return layer

    def cell(self, input_size: int, hidden: int) -> nn.Module:
        """The matching single-step cell; its parameters are the layer's without '_l0'."""
        if self.cell_class is None:
            raise ValueError(
                f"cell {self.name!r} has no single-step cell: one step of it runs its whole "
                f"stack of {self.min_layers}+ layers; use its layer"
            )
        return self.cell_class(input_size, hidden, **self.options)

    def parameter_count(self, input_size: int, hidden: int) -> int:
        """Parameters of the smallest layer ``layer`` builds at these sizes: one layer, or
        ``min_layers`` (counted on the meta device: shapes only)."""
        with torch.device("meta"):
            layer = self.layer(input_size, hidden, forget_bias=None)
        return sum(p.numel() for p in layer.parameters())

    def family_of(self, hidden: int = 4):
        """The cell family at this hidden size (built on the meta device: shapes only)."""
        with torch.device("meta"):
            return self.layer(hidden, hidden, forget_bias=None).family

    @property
    def state_count(self) -> int:
        """How many tensors one layer's state has (h first): 2 for the LSTMs, 1 for most."""
        return len(self.family_of().state_sizes)


_FORGETTING_FAMILIES = ("lstm", "depth-gated-lstm", "grid-lstm")
"""The families whose layers take ``forget_bias``."""


def _open_coupled_forget_gate(layer: nn.Module, hidden: int, forget_bias: float) -> None:
    """CIFG's forget gate is 1 - i: start it at sigmoid(forget_bias) like the other LSTMs'
    by setting every layer's input-gate bias (rows 0..H of the (i, g, o) blocks) to
    -forget_bias."""
    with torch.no_grad():
        for k in range(layer.num_layers):
            for suffix in ("", "_reverse") if layer.bidirectional else ("",):
                getattr(layer, f"bias_ih_l{k}{suffix}")[:hidden] = -forget_bias
                getattr(layer, f"bias_hh_l{k}{suffix}")[:hidden] = 0.0


def _lstm(name: str, description: str, **options) -> ModernCell:
    return ModernCell(name, "lstm", description, LSTM, LSTMCell, options)


MODERN_CELLS: dict[str, ModernCell] = {
    cell.name: cell
    for cell in (
        _lstm("lstm", "LSTM with a forget gate, torch.nn.LSTM's cell"),
        ModernCell("gru", "gru", "GRU (Cho et al. 2014), torch.nn.GRU's cell", GRU, GRUCell),
        ModernCell(
            "rnn", "rnn", "plain tanh RNN (Elman 1990)", RNN, RNNCell, {"nonlinearity": "tanh"}
        ),
        _lstm("peephole", "LSTM with peepholes (Gers & Schmidhuber 2000)", peephole=True),
        _lstm("cifg", "LSTM with coupled input and forget gates (CIFG)", coupled=True),
        _lstm(
            "lstm-noforget",
            "the 1997 cell equations (no forget gate) trained the modern way",
            forget_gate=False,
        ),
        _lstm("lstm-nig", "LSTM without an input gate (Greff et al. 2015, NIG)", input_gate=False),
        _lstm(
            "lstm-nog", "LSTM without an output gate (Greff et al. 2015, NOG)", output_gate=False
        ),
        _lstm(
            "lstm-niaf",
            "LSTM without the candidate's tanh (Greff et al. 2015, NIAF)",
            input_activation=False,
        ),
        _lstm(
            "lstm-noaf",
            "LSTM without the output tanh (Greff et al. 2015, NOAF)",
            output_activation=False,
        ),
        _lstm(
            "lstm-fgr",
            "LSTM with full gate recurrence (Greff et al. 2015, FGR)",
            gate_recurrence=True,
        ),
        _lstm("lstm-ln", "layer-normalised LSTM (Ba et al. 2016)", layer_norm="ba2016"),
        ModernCell(
            "gru-cho",
            "gru",
            "GRU with Cho et al.'s reset before the recurrent product",
            GRU,
            GRUCell,
            {"reset_after": False},
        ),
        ModernCell("mgu", "mgu", "minimal gated unit (Zhou et al. 2016)", MGU, MGUCell),
        ModernCell(
            "slstm", "slstm", "sLSTM, exponential gating (Beck et al. 2024)", SLSTM, SLSTMCell
        ),
        ModernCell(
            "clockwork",
            "clockwork",
            "Clockwork RNN, modules at periods 1, 2, 4, 8 (Koutnik et al. 2014)",
            ClockworkRNN,
            ClockworkCell,
            {"num_modules": 4},
        ),
        ModernCell(
            "mingru", "mingru", "minGRU, gates from x_t only (Feng et al. 2024)", MinGRU, MinGRUCell
        ),
        ModernCell(
            "minlstm",
            "minlstm",
            "minLSTM, gates from x_t only (Feng et al. 2024)",
            MinLSTM,
            MinLSTMCell,
        ),
        ModernCell(
            "depth-gated",
            "depth-gated-lstm",
            "depth-gated LSTM, 2+ layers joined by a depth gate on c (Yao et al. 2015)",
            DepthGatedLSTM,
            None,
            min_layers=2,
        ),
        ModernCell(
            "grid-lstm",
            "grid-lstm",
            "2-D Grid LSTM over time and depth, 2+ layers (Kalchbrenner et al. 2015)",
            GridLSTM,
            None,
            min_layers=2,
        ),
    )
}

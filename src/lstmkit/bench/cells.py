"""The cells ``lstmkit bench`` can time, and what it counts of each.

Every cell of the registry (:data:`lstmkit.layers.named.MODERN_CELLS`) by its name, plus
two that only the bench has: ``rnn-relu`` (torch.nn.RNN's other nonlinearity, a yardstick
for its kernels) and ``slstm-4heads`` (the sLSTM of four heads, R block-diagonal as in
xLSTM's blocks, whose fused kernels work per head where the registry's one head is dense).
Each is built through the registry's ``ModernCell.layer``, time-major as the bench's inputs
(T, B, I), so a cell added to the registry is timed with no change here. A cell keeps the
fewest layers the registry builds it with: one for most, two for the stacks joined through
their memory (the depth-gated and the Grid LSTM).

FLOPs: the forward matrix products of one step cost 2*B*E, with E the entries of the
layer's weight matrices (a multiply and an add per entry and sequence), where a weight
matrix is every parameter of two or more dimensions: torch's ``weight_ih`` and
``weight_hh``, and the extras that multiply a vector each step, as full gate recurrence's
``weight_gg``, the depth gate's ``weight_xd`` and the Grid LSTM's depth transforms; a stack
of matrices counts all of them (the sLSTM's per-head blocks of ``weight_hh``, (G, heads,
H/heads, H/heads)). Vectors (biases, peepholes, layer-norm gains) are left out: their work
is elementwise, as the gate arithmetic, which is not counted either. For the LSTM, E =
4H*I + 4H*H, so 2*B*E is the field's 2*B*4H*(I+H); for G gate blocks of the shared layout
it is 2*B*G*H*(I+H) (GRU and CIFG 3, RNN 1), the figure the bench has always given. The min
cells' matrices read x_t only, but they are still a product per step. Over several layers,
E is the whole stack's.
"""

from __future__ import annotations

from torch import nn

from lstmkit.cells import RNNCell
from lstmkit.cells.slstm import SLSTMCell
from lstmkit.layers.named import MODERN_CELLS, ModernCell
from lstmkit.layers.rnn import RNN
from lstmkit.layers.slstm import SLSTM

_BENCH_ONLY = (
    ModernCell(
        "rnn-relu",
        "rnn",
        "plain ReLU RNN, torch.nn.RNN(nonlinearity='relu')'s cell",
        RNN,
        RNNCell,
        {"nonlinearity": "relu"},
    ),
    ModernCell(
        "slstm-4heads",
        "slstm",
        "sLSTM of four heads, R block-diagonal (Beck et al. 2024's blocks)",
        SLSTM,
        SLSTMCell,
        {"num_heads": 4},
    ),
)

BENCH_CELLS: dict[str, ModernCell] = MODERN_CELLS | {
    cell.name: cell for cell in _BENCH_ONLY if cell.name not in MODERN_CELLS
}
"""Every cell the bench can time by name: the registry's, in its order, then the bench's own
(the registry's entry wins should it ever take one of their names)."""

CELL_NAMES: tuple[str, ...] = tuple(BENCH_CELLS)
DEFAULT_CELLS: tuple[str, ...] = (
    "lstm",
    "peephole",
    "cifg",
    "lstm-noforget",
    "gru",
    "rnn",
    "rnn-relu",
)
"""What a bare ``lstmkit bench`` times: the cells torch's or lstmkit's fast kernels run, so
that the default run stays a few minutes."""
ALL_CELLS = "all"
"""The ``--cells`` value that names every cell of :data:`CELL_NAMES`."""


def build_layer(cell: str, input_size: int, hidden_size: int, **layer_options) -> nn.Module:
    """The registry's layer of ``cell``, time-major, without a forget-gate bias (torch's
    initialisation, as the peers'); ``layer_options`` (``backend``, ``device``, ``dtype``) go
    to the layer class."""
    return BENCH_CELLS[cell].layer(
        input_size, hidden_size, None, batch_first=False, **layer_options
    )


def matrix_entries(module: nn.Module) -> int:
    """E of the module docstring: the entries of the parameters of two or more dimensions.

    What is stored is counted: the Clockwork RNN keeps its block-upper-triangular W_H whole
    (the masked blocks are zeros that still go through the product), so its E is the full
    H*H, not the live blocks."""
    return sum(p.numel() for p in module.parameters() if p.dim() >= 2)


def flops_per_step(matrix_entries: int, batch: int) -> int:
    """Forward FLOPs of one step: 2*B*E, a multiply and an add per weight-matrix entry and
    sequence (see the module docstring). Elementwise gate arithmetic is not counted."""
    return 2 * batch * matrix_entries


__all__ = [
    "ALL_CELLS",
    "BENCH_CELLS",
    "CELL_NAMES",
    "DEFAULT_CELLS",
    "build_layer",
    "flops_per_step",
    "matrix_entries",
]

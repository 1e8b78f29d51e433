"""Cell math: the equations of each cell family as pure step functions.

Nothing here owns parameters or loops over time. A family object holds the structural options
of one cell (peepholes, coupled gates, ...) and knows its parameter layout; its ``step`` maps
one time step's pre-computed input projection and the previous state to the next state and
the named gate activations. Cells (``lstmkit.cells``) and sequence layers (``lstmkit.layers``)
are built on top of these.
"""

from lstmkit.cellmath.clockwork import ClockworkFamily
from lstmkit.cellmath.depth_gated import DepthGatedLSTMFamily
from lstmkit.cellmath.family import CellFamily, StepResult
from lstmkit.cellmath.grid_lstm import GridLSTMFamily
from lstmkit.cellmath.gru import GRUFamily
from lstmkit.cellmath.lstm import LSTMFamily
from lstmkit.cellmath.mgu import MGUFamily
from lstmkit.cellmath.minrnn import MinGRUFamily, MinLSTMFamily
from lstmkit.cellmath.rnn import RNNFamily
from lstmkit.cellmath.slstm import SLSTMFamily

__all__ = [
    "CellFamily",
    "ClockworkFamily",
    "DepthGatedLSTMFamily",
    "GRUFamily",
    "GridLSTMFamily",
    "LSTMFamily",
    "MGUFamily",
    "MinGRUFamily",
    "MinLSTMFamily",
    "RNNFamily",
    "SLSTMFamily",
    "StepResult",
]

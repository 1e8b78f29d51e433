"""Cells: one time step of a recurrent network, as a module that owns its parameters.

Drop-in replacements of ``torch.nn.LSTMCell``, ``GRUCell`` and ``RNNCell``; the LSTM cell
also takes lstmkit's variant options. Each computes its family's equations from
``lstmkit.cellmath``.
"""

from lstmkit.cells.base import RecurrentCell
from lstmkit.cells.clockwork import ClockworkCell
from lstmkit.cells.gru import GRUCell
from lstmkit.cells.lstm import LSTMCell
from lstmkit.cells.mgu import MGUCell
from lstmkit.cells.minrnn import MinGRUCell, MinLSTMCell
from lstmkit.cells.rnn import RNNCell
from lstmkit.cells.slstm import SLSTMCell

__all__ = [
    "ClockworkCell",
    "GRUCell",
    "LSTMCell",
    "MGUCell",
    "MinGRUCell",
    "MinLSTMCell",
    "RNNCell",
    "RecurrentCell",
    "SLSTMCell",
]

"""lstmkit: LSTM networks as the literature writes them, on PyTorch.

The layers (``LSTM``, ``GRU``, ``RNN``) and cells (``LSTMCell``, ``GRUCell``, ``RNNCell``) are
drop-in replacements of torch.nn's, with the LSTM variants torch lacks (peepholes, coupled
gates, the 1997 cell without a forget gate, a forget-gate bias) and traces of every gate.
"""

from lstmkit.cells import (
    ClockworkCell,
    GRUCell,
    LSTMCell,
    MGUCell,
    MinGRUCell,
    MinLSTMCell,
    RNNCell,
    SLSTMCell,
)
from lstmkit.layers import GRU, LSTM, MGU, RNN, SLSTM, Backend, ClockworkRNN, MinGRU, MinLSTM
from lstmkit.trace import Trace

__version__ = "0.1.0"

__all__ = [
    "GRU",
    "LSTM",
    "MGU",
    "RNN",
    "SLSTM",
    "Backend",
    "ClockworkCell",
    "ClockworkRNN",
    "GRUCell",
    "LSTMCell",
    "MGUCell",
    "MinGRU",
    "MinGRUCell",
    "MinLSTM",
    "MinLSTMCell",
    "RNNCell",
    "SLSTMCell",
    "Trace",
]

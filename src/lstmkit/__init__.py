"""lstmkit: LSTM networks as the literature writes them, on PyTorch.

The layers (``LSTM``, ``GRU``, ``RNN``) and cells (``LSTMCell``, ``GRUCell``, ``RNNCell``) are
drop-in replacements of torch.nn's, with the LSTM variants torch lacks (peepholes, coupled
gates, the 1997 cell without a forget gate, a forget-gate bias, Greff et al.'s ablations,
layer norm) and traces of every gate; beside them the cells that came after (MGU, sLSTM,
minGRU, minLSTM, the Clockwork RNN, the depth-gated and the Grid LSTM).
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
from lstmkit.layers import (
    GRU,
    LSTM,
    MGU,
    RNN,
    SLSTM,
    Backend,
    ClockworkRNN,
    DepthGatedLSTM,
    GridLSTM,
    MinGRU,
    MinLSTM,
)
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
    "DepthGatedLSTM",
    "GRUCell",
    "GridLSTM",
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

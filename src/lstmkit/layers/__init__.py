"""Sequence layers: the time loop over a cell family, stacked and optionally bidirectional,
with a choice of backend. Drop-in replacements of torch.nn.LSTM, GRU and RNN."""

from lstmkit.layers.backends import Backend
from lstmkit.layers.base import RecurrentLayer
from lstmkit.layers.clockwork import ClockworkRNN
from lstmkit.layers.depth_gated import DepthGatedLSTM
from lstmkit.layers.grid_lstm import GridLSTM
from lstmkit.layers.gru import GRU
from lstmkit.layers.lstm import LSTM
from lstmkit.layers.mgu import MGU
from lstmkit.layers.minrnn import MinGRU, MinLSTM
from lstmkit.layers.rnn import RNN
from lstmkit.layers.slstm import SLSTM

__all__ = [
    "GRU",
    "LSTM",
    "MGU",
    "RNN",
    "SLSTM",
    "Backend",
    "ClockworkRNN",
    "DepthGatedLSTM",
    "GridLSTM",
    "MinGRU",
    "MinLSTM",
    "RecurrentLayer",
]

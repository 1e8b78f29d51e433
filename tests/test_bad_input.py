"""Bad input gets a ValueError or TypeError naming the argument, what was expected and
what was given."""

from __future__ import annotations

import pytest
import torch

import lstmkit

I, H, T, B = 3, 4, 5, 2


@pytest.fixture(params=["auto", "reference"])
def lstm(request):
    return lstmkit.LSTM(I, H, 2, backend=request.param)


def test_wrong_rank(lstm):
    with pytest.raises(ValueError, match=r"input must be 3-D .* got a 4-D tensor of shape"):
        lstm(torch.randn(T, B, I, 1))
    with pytest.raises(ValueError, match=r"got a 1-D tensor"):
        lstm(torch.randn(I))


def test_wrong_feature_size(lstm):
    with pytest.raises(ValueError, match=r"input has 7 features .* expected input_size = 3"):
        lstm(torch.randn(T, B, 7))


def test_not_a_tensor(lstm):
    with pytest.raises(TypeError, match=r"input must be a torch\.Tensor, got list"):
        lstm([[1.0, 2.0, 3.0]])


def test_state_of_the_wrong_shape(lstm):
    h0, c0 = torch.zeros(2, B, H), torch.zeros(2, B, H)
    with pytest.raises(
        ValueError, match=r"hx\[0\] \(h_0\) has shape \(2, 3, 4\); expected .* = \(2, 2, 4\)"
    ):
        lstm(torch.randn(T, B, I), (torch.zeros(2, 3, H), c0))
    with pytest.raises(ValueError, match=r"hx\[1\] \(c_0\) has shape \(1, 2, 4\)"):
        lstm(torch.randn(T, B, I), (h0, torch.zeros(1, B, H)))
    with pytest.raises(ValueError, match="for unbatched 2-D input the initial state must be 2-D"):
        lstm(torch.randn(T, I), (h0, c0))
    with pytest.raises(
        TypeError, match=r"hx must be a tuple \(h_0, c_0\) of 2 tensors, got Tensor"
    ):
        lstm(torch.randn(T, B, I), h0)


def test_gru_state_of_the_wrong_shape():
    gru = lstmkit.GRU(I, H, bidirectional=True)
    with pytest.raises(ValueError, match=r"hx has shape \(1, 2, 4\); expected .* = \(2, 2, 4\)"):
        gru(torch.randn(T, B, I), torch.zeros(1, B, H))


def test_mismatched_dtype(lstm):
    with pytest.raises(
        TypeError, match=r"input has dtype torch.float64, but the parameters are torch.float32"
    ):
        lstm(torch.randn(T, B, I, dtype=torch.float64))
    h0 = torch.zeros(2, B, H, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"hx\[0\] \(h_0\) has dtype torch.float64"):
        lstm(torch.randn(T, B, I), (h0, torch.zeros(2, B, H)))


def test_mismatched_device(lstm):
    with pytest.raises(ValueError, match=r"input is on device meta, but the parameters are on cpu"):
        lstm(torch.randn(T, B, I, device="meta"))


def test_lengths_that_do_not_fit(lstm):
    x = torch.randn(T, B, I)
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 5\] .* got values from 0 to 5"):
        lstm(x, lengths=[5, 0])
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 5\] .* from 2 to 9"):
        lstm(x, lengths=[9, 2])
    with pytest.raises(
        ValueError, match=r"lengths has shape \(3,\); expected one length per sequence = \(2,\)"
    ):
        lstm(x, lengths=[5, 4, 3])
    with pytest.raises(TypeError, match=r"lengths must hold integers, got dtype torch\.float32"):
        lstm(x, lengths=torch.tensor([5.0, 4.0]))
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, [5, 3])
    with pytest.raises(ValueError, match="a PackedSequence carries its own lengths"):
        lstm(packed, lengths=[5, 3])


def test_empty_sequence(lstm):
    with pytest.raises(ValueError, match=r"no time steps \(seq_len = 0\)"):
        lstm(torch.randn(0, B, I))


@pytest.mark.parametrize(
    ("kwargs", "error", "needle"),
    [
        (dict(input_size=0), ValueError, "input_size must be an integer >= 1, got 0"),
        (dict(hidden_size=-2), ValueError, "hidden_size must be an integer >= 1, got -2"),
        (dict(num_layers=1.5), ValueError, "num_layers must be an integer >= 1, got 1.5"),
        (dict(dropout=1.5), ValueError, r"dropout must be a number in \[0, 1\], got 1.5"),
        (dict(proj_size=-1), ValueError, "proj_size must be an integer >= 0, got -1"),
    ],
)
def test_bad_constructor_arguments(kwargs, error, needle):
    args = dict(input_size=I, hidden_size=H) | kwargs
    with pytest.raises(error, match=needle):
        lstmkit.LSTM(**args)


def test_bad_nonlinearity():
    with pytest.raises(
        ValueError, match=r"nonlinearity must be one of \('tanh', 'relu'\), got 'sigmoid'"
    ):
        lstmkit.RNN(I, H, nonlinearity="sigmoid")


def test_dropout_on_one_layer_warns():
    with pytest.warns(UserWarning, match="dropout=0.5 has no effect with num_layers=1"):
        lstmkit.GRU(I, H, dropout=0.5)


@pytest.mark.parametrize("cell_cls", [lstmkit.LSTMCell, lstmkit.GRUCell, lstmkit.RNNCell])
def test_cells_check_their_input(cell_cls):
    cell = cell_cls(I, H)
    with pytest.raises(ValueError, match=r"input must be 1-D \(unbatched\) or 2-D"):
        cell(torch.randn(T, B, I))
    with pytest.raises(ValueError, match=r"input has 5 features .* expected input_size = 3"):
        cell(torch.randn(B, 5))
    with pytest.raises(TypeError, match=r"input has dtype torch\.float64"):
        cell(torch.randn(B, I, dtype=torch.float64))
    h = torch.zeros(B + 1, H)
    hx = (h, h) if cell_cls is lstmkit.LSTMCell else h
    with pytest.raises(
        ValueError, match=r"has shape \(3, 4\); expected \(batch, size\) = \(2, 4\)"
    ):
        cell(torch.randn(B, I), hx)

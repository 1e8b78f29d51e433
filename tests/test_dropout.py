"""Dropout between layers, as torch.nn.LSTM applies it: only in training, never after the
last layer."""

from __future__ import annotations

import pytest
import torch

import lstmkit

I, H, T, B = 3, 8, 5, 4


@pytest.mark.parametrize(
    ("cls", "options"),
    [
        (lstmkit.LSTM, dict(backend="torch")),
        (lstmkit.LSTM, dict(backend="reference")),
        (lstmkit.LSTM, dict(backend="manual", peephole=True)),
        (lstmkit.GRU, dict(backend="reference")),
    ],
    ids=["lstm-torch", "lstm-reference", "lstm-manual", "gru-reference"],
)
def test_dropout_acts_in_training_only(cls, options):
    layer = cls(I, H, 2, dropout=0.5, **options)
    x = torch.randn(T, B, I)
    layer.eval()
    first, second = layer(x)[0], layer(x)[0]
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    layer.train()
    torch.manual_seed(0)
    noisy = layer(x)[0]
    assert (noisy - first).abs().max() > 1e-3


def test_no_dropout_after_the_last_layer():
    """With one layer there is nothing between layers: training and eval agree."""
    with pytest.warns(UserWarning):
        layer = lstmkit.LSTM(I, H, 1, dropout=0.9, backend="reference")
    x = torch.randn(T, B, I)
    train_out = layer.train()(x)[0]
    torch.testing.assert_close(train_out, layer.eval()(x)[0], rtol=0, atol=0)

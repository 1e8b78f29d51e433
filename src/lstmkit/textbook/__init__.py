"""The textbook LSTM: NumPy only, forward and hand-derived backward, read like the equations."""

from lstmkit.textbook.numpy_lstm import (
    TORCH_GATE_ORDER,
    StepCache,
    TextbookGrads,
    TextbookParams,
    TorchLSTMLayout,
    grads_to_torch_layout,
    linear_backward,
    lstm_backward,
    lstm_forward,
    lstm_step,
    lstm_step_backward,
    params_from_torch_layout,
    params_to_torch_layout,
    sigmoid,
)

__all__ = [
    "TORCH_GATE_ORDER",
    "StepCache",
    "TextbookGrads",
    "TextbookParams",
    "TorchLSTMLayout",
    "grads_to_torch_layout",
    "linear_backward",
    "lstm_backward",
    "lstm_forward",
    "lstm_step",
    "lstm_step_backward",
    "params_from_torch_layout",
    "params_to_torch_layout",
    "sigmoid",
]

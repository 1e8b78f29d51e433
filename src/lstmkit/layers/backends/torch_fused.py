"""The torch backend: torch's fused kernels, as torch.nn.LSTM/GRU/RNN call them.

``torch._VF`` is torch's internal entry to the ATen RNN kernels (oneDNN on CPU, cuDNN on
GPU); torch.nn.modules.rnn calls it the same way, so this path is torch's own arithmetic
and speed. Only the plain configurations reach here (see ``unsupported_reason``).
"""

from __future__ import annotations

from torch import _VF, Tensor
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstmkit.cellmath.family import CellFamily
from lstmkit.layers.sequence import SequenceBatch


def kernel_for(family: CellFamily):
    if family.name == "lstm":
        return _VF.lstm
    if family.name == "gru":
        return _VF.gru
    return _VF.rnn_tanh if family.nonlinearity == "tanh" else _VF.rnn_relu


def run(
    family: CellFamily,
    seq: SequenceBatch,
    initial: tuple[Tensor, ...],
    flat_weights: list[Tensor],
    bias: bool,
    num_layers: int,
    dropout: float,
    training: bool,
    bidirectional: bool,
):
    """Returns the output (T, B, D*R), or a PackedSequence when the input was packed, and
    the final states (L*D, B, size), in batch order."""
    kernel = kernel_for(family)
    hx = initial if len(initial) > 1 else initial[0]
    options = (flat_weights, bias, num_layers, dropout, training, bidirectional)
    if seq.lengths is None and seq.packed is None:
        result = kernel(seq.data, hx, *options, False)
        return result[0], tuple(result[1:])

    packed = seq.packed
    if packed is None:  # lengths= beside a padded batch
        packed = pack_padded_sequence(seq.data, seq.lengths, enforce_sorted=False)
    order = packed.sorted_indices
    if order is not None:  # the kernel wants the state in the packed (sorted) order
        initial = tuple(s.index_select(1, order) for s in initial)
        hx = initial if len(initial) > 1 else initial[0]
    result = kernel(packed.data, packed.batch_sizes, hx, *options)
    output, final = result[0], tuple(result[1:])
    if packed.unsorted_indices is not None:
        final = tuple(s.index_select(1, packed.unsorted_indices) for s in final)
    if seq.packed is not None:
        return packed._replace(data=output), final
    padded, _ = pad_packed_sequence(
        packed._replace(data=output), total_length=seq.steps
    )  # (T, B, D*R), batch order
    return padded, final

"""Bringing every accepted input form to one: time-major padded data plus lengths.

Accepted (as torch.nn.LSTM): a batched 3-D tensor ``(T, B, I)`` or ``(B, T, I)`` with
``batch_first``, an unbatched 2-D tensor ``(T, I)``, or a ``PackedSequence``; lstmkit also
takes ``lengths=`` beside a padded batch. Backends see a :class:`SequenceBatch` and give
their output back in the same time-major form; :func:`restore_output` returns it in the
user's form.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from lstmkit._checks import expect_lengths, expect_tensor


@dataclass(frozen=True)
class SequenceBatch:
    data: Tensor
    """(T, B, I), time-major, zero past each sequence's end."""
    lengths: Tensor | None
    """(B,) int64 on the CPU, in batch order; None when every sequence has T steps."""
    packed: PackedSequence | None
    """The input as given, when it was packed."""
    batched: bool
    batch_first: bool

    @property
    def steps(self) -> int:
        return self.data.shape[0]

    @property
    def batch(self) -> int:
        return self.data.shape[1]

    def to_dtype(self, dtype: torch.dtype) -> SequenceBatch:
        """The same batch with its data (and the packed input's) in ``dtype``."""
        packed = None if self.packed is None else self.packed.to(dtype)
        return replace(self, data=self.data.to(dtype), packed=packed)

    def step_mask(self) -> Tensor | None:
        """(T, B, 1) bool, True where step t is inside sequence b; None when all are."""
        if self.lengths is None:
            return None
        steps = torch.arange(self.steps).unsqueeze(1)  # (T, 1)
        return (steps < self.lengths.unsqueeze(0)).unsqueeze(-1).to(self.data.device)


def prepare_input(input, lengths, batch_first: bool, input_size: int, owner: str) -> SequenceBatch:
    if isinstance(input, PackedSequence):
        if lengths is not None:
            raise ValueError(
                f"{owner}: lengths= is for padded input; a PackedSequence carries its own lengths"
            )
        _check_features(input.data, input_size, owner)
        data, packed_lengths = pad_packed_sequence(input)  # (T, B, I), batch order
        steps = data.shape[0]
        lengths = None if bool((packed_lengths == steps).all()) else packed_lengths
        return SequenceBatch(data, lengths, input, batched=True, batch_first=False)

    expect_tensor(input, "input", owner)
    if input.dim() not in (2, 3):
        raise ValueError(
            f"{owner}: input must be 3-D (batched: (seq_len, batch, input_size), or "
            f"(batch, seq_len, input_size) with batch_first=True) or 2-D (unbatched: "
            f"(seq_len, input_size)), got a {input.dim()}-D tensor of shape {tuple(input.shape)}"
        )
    _check_features(input, input_size, owner)
    batched = input.dim() == 3
    if not batched:
        data = input.unsqueeze(1)
    else:
        data = input.transpose(0, 1) if batch_first else input
    if data.shape[0] == 0:
        raise ValueError(f"{owner}: input has no time steps (seq_len = 0); expected at least 1")
    if lengths is not None:
        lengths = expect_lengths(lengths, data.shape[1], data.shape[0], owner)
        if bool((lengths == data.shape[0]).all()):
            lengths = None
        else:  # steps past a sequence's end must not leak into anything, even as NaN
            mask = torch.arange(data.shape[0]).unsqueeze(1) < lengths.unsqueeze(0)
            data = data * mask.unsqueeze(-1).to(data.device, data.dtype)
    return SequenceBatch(data, lengths, None, batched, batch_first)


def restore_output(output: Tensor | PackedSequence, seq: SequenceBatch):
    """Time-major output (T, B, F) back in the form the input came in. A backend that ran
    on the packed input itself hands its PackedSequence output through unchanged."""
    if isinstance(output, PackedSequence):
        return output
    if seq.packed is not None:
        return repack_like(output, seq)
    if not seq.batched:
        return output.squeeze(1)
    return output.transpose(0, 1) if seq.batch_first else output


def repack_like(output: Tensor, seq: SequenceBatch) -> PackedSequence:
    """Pack (T, B, F) with the input's own batch sizes and sort order, as torch returns it."""
    packed = seq.packed
    lengths = seq.lengths if seq.lengths is not None else torch.full((seq.batch,), seq.steps)
    if packed.sorted_indices is not None:
        order = packed.sorted_indices
        output = output.index_select(1, order)
        lengths = lengths.index_select(0, order.cpu())
    data = pack_padded_sequence(output, lengths, enforce_sorted=True).data
    return PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)


def _check_features(data: Tensor, input_size: int, owner: str) -> None:
    if data.shape[-1] != input_size:
        raise ValueError(
            f"{owner}: input has {data.shape[-1]} features in its last dimension; expected "
            f"input_size = {input_size}"
        )

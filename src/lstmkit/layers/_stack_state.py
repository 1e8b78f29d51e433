"""The initial state of the modules that run their own stack of LSTM layers (the depth-gated
and the Grid LSTM): torch.nn.LSTM's ``hx = (h_0, c_0)``, checked and split per layer."""

from __future__ import annotations

from torch import Tensor

from lstmkit._checks import expect_like, expect_shape
from lstmkit._state import state_arg_names, state_to_tuple
from lstmkit.layers.sequence import SequenceBatch


def layer_states(
    hx, seq: SequenceBatch, num_layers: int, hidden: int, param: Tensor, owner: str
) -> list[tuple[Tensor, Tensor]]:
    """Per layer the pair (h_0, c_0), each (B, H); zeros when hx is None. ``hx`` is
    (h_0, c_0), each (num_layers, B, H), or (num_layers, H) for unbatched input."""
    if hx is None:
        zeros = seq.data.new_zeros(num_layers, seq.batch, hidden)
        return [(zeros[k], zeros[k]) for k in range(num_layers)]
    state = state_to_tuple(hx, ("h", "c"), owner)
    names = state_arg_names(("h", "c"))
    if seq.batched:
        expected, meaning = (num_layers, seq.batch, hidden), "(num_layers, batch, hidden_size)"
    else:
        expected, meaning = (num_layers, hidden), "(num_layers, hidden_size) for unbatched input"
    checked = []
    for tensor, name in zip(state, names, strict=True):
        expect_shape(tensor, expected, name, owner, meaning)
        expect_like(tensor, param, name, owner)
        checked.append(tensor if seq.batched else tensor.unsqueeze(1))
    h_0, c_0 = checked
    return [(h_0[k], c_0[k]) for k in range(num_layers)]

"""lstmkit's recurrent layers as ONNX graphs, run by onnxruntime: the oracle of test_onnx_oracle.

Three parts: mapping one lstmkit layer's parameters into the ONNX operator's W, R, B, P
(:func:`onnx_weights`); one graph builder per operator (:func:`lstm_model`,
:func:`gru_model`, :func:`rnn_model`), which chains one node per layer as lstmkit stacks
layers; one runner (:func:`onnx_forward`) that feeds a graph and returns its results in
lstmkit's layout.

Legend: T time, B batch, I input size, H hidden size, D directions, L layers, G gate blocks.
ONNX layouts (https://onnx.ai/onnx/operators/onnx__LSTM.html, onnx__GRU, onnx__RNN):

- X (T, B, I); W (D, G*H, I); R (D, G*H, H); B (D, 2*G*H) = input biases then recurrent
  biases; sequence_lens (B,) int32; initial_h, initial_c (D, B, H); P (D, 3H).
- Y (T, D, B, H), zero past each sequence's length; Y_h, Y_c (D, B, H), the state at each
  sequence's last valid step (for the reverse direction, after step 0).
- gate blocks: LSTM i, o, f, c (c the candidate); GRU z, r, h; RNN one block; P is
  (p_i, p_o, p_f).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from lstmkit.layers.base import RecurrentLayer

# Opset 21 has every operator here in its newest form that onnxruntime's CPU provider runs.
# The IR version is pinned because the newest onnx writes IR versions that onnxruntime may not
# read yet ("Unsupported model IR version: 14, max supported IR version: 13").
OPSET = 21
IR_VERSION = 10

# Each operator's gate blocks, in ONNX's order, by lstmkit's gate names (cellmath's `gates`).
ONNX_GATE_ORDER = {
    "lstm": ("input", "output", "forget", "candidate"),
    "gru": ("update", "reset", "candidate"),
    "rnn": ("hidden",),
}


# -- weight mapping ------------------------------------------------------------------------


def onnx_weights(
    layer: RecurrentLayer, index: int, filler: np.random.Generator | None = None
) -> dict[str, np.ndarray]:
    """W, R, B (absent without bias) and P (peephole LSTMs only) of lstmkit layer ``index``,
    both directions stacked along ONNX's first axis, as float32.

    A coupled (CIFG) LSTM has no forget-gate weights, but ONNX's W, R, B and P keep a slot for
    them, which ``input_forget=1`` leaves unused: ``filler`` fills the slot with random values,
    so a test can show that onnxruntime ignores them.
    """
    family = layer.family
    if family.name == "lstm" and not family.forget_gate:
        raise ValueError("ONNX's LSTM has no cell without a forget gate (forget_gate=False)")
    if getattr(family, "coupled", False) and filler is None:
        raise ValueError("a coupled LSTM needs a filler for ONNX's unused forget-gate slot")
    directions = [
        _direction_weights(layer.layer_weights(index, d), family, filler)
        for d in range(layer.num_directions)
    ]
    return {name: np.stack([w[name] for w in directions]) for name in directions[0]}


def _direction_weights(weights, family, filler) -> dict[str, np.ndarray]:
    hidden = family.hidden_size
    order = ONNX_GATE_ORDER[family.name]

    def reorder(tensor: torch.Tensor) -> np.ndarray:  # lstmkit's blocks -> ONNX's blocks
        array = tensor.detach().cpu().numpy().astype(np.float32)
        blocks = dict(zip(family.gates, np.split(array, len(family.gates)), strict=True))
        missing = [g for g in order if g not in blocks]  # the coupled LSTM's forget gate
        blocks |= {g: _fill(filler, hidden, array) for g in missing}
        return np.concatenate([blocks[g] for g in order])

    mapped = {"W": reorder(weights["weight_ih"]), "R": reorder(weights["weight_hh"])}
    if "bias_ih" in weights:
        mapped["B"] = np.concatenate([reorder(weights["bias_ih"]), reorder(weights["bias_hh"])])
    if "weight_ci" in weights:
        peepholes = [weights["weight_ci"], weights["weight_co"]]
        peepholes = [p.detach().cpu().numpy().astype(np.float32) for p in peepholes]
        forget = weights.get("weight_cf")
        if forget is None:
            peepholes.append(_fill(filler, hidden, peepholes[0]))
        else:
            peepholes.append(forget.detach().cpu().numpy().astype(np.float32))
        mapped["P"] = np.concatenate(peepholes)  # (3H,): p_i, p_o, p_f
    return mapped


def _fill(filler: np.random.Generator, hidden: int, like: np.ndarray) -> np.ndarray:
    """A random block for a gate lstmkit does not have, shaped as one of ``like``'s blocks."""
    return filler.uniform(-2.0, 2.0, size=(hidden, *like.shape[1:])).astype(np.float32)


# -- graph builders ------------------------------------------------------------------------


def lstm_model(layers, x_shape, *, bidirectional, lengths, initial, **attributes):
    """An ONNX LSTM per layer; ``layers`` holds each layer's :func:`onnx_weights`, ``x_shape``
    is X's (T, B, I). Keywords: see :func:`_stacked_model`, then operator attributes."""
    return _stacked_model(
        "LSTM", ("h", "c"), layers, x_shape, bidirectional, lengths, initial, attributes
    )


def gru_model(layers, x_shape, *, bidirectional, lengths, initial, **attributes):
    """An ONNX GRU per layer in torch's form: the reset gate applies after the recurrent
    product, ``linear_before_reset=1`` (overridable, for a negative control)."""
    attributes = {"linear_before_reset": 1, **attributes}
    return _stacked_model(
        "GRU", ("h",), layers, x_shape, bidirectional, lengths, initial, attributes
    )


def rnn_model(layers, x_shape, *, bidirectional, lengths, initial, **attributes):
    """An ONNX RNN per layer; ``activations`` (one per direction, "Tanh" or "Relu") in
    ``attributes``."""
    return _stacked_model(
        "RNN", ("h",), layers, x_shape, bidirectional, lengths, initial, attributes
    )


def _stacked_model(
    op, states, layers, x_shape, bidirectional, lengths, initial, attrs
) -> onnx.ModelProto:
    """One ``op`` node per layer, each reading the previous layer's Y as lstmkit does:
    Y (T, D, B, H) -> (T, B, D*H). Graph inputs: X, sequence_lens (when ``lengths``),
    initial_{h,c}_{k} (when ``initial``); outputs: the last layer's Y, each layer's Y_h (and
    Y_c), named ``Y_h_{k}``. The weights are initializers."""
    steps, batch, input_size = x_shape
    directions = 2 if bidirectional else 1
    hidden = layers[0]["R"].shape[-1]  # R (D, G*H, H)
    direction = "bidirectional" if bidirectional else "forward"
    attrs = {"hidden_size": hidden, "direction": direction, **attrs}
    floats = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("X", floats, [steps, batch, input_size])]
    if lengths:
        inputs.append(helper.make_tensor_value_info("sequence_lens", TensorProto.INT32, [batch]))
    nodes, initializers, outputs = [], [], []
    state_shape = [directions, batch, hidden]
    x = "X"
    for k, weights in enumerate(layers):
        if k > 0:  # (T, D, B, H) -> (T, B, D, H) -> (T, B, D*H)
            nodes.append(helper.make_node("Transpose", [x], [f"Yt_{k - 1}"], perm=[0, 2, 1, 3]))
            nodes.append(helper.make_node("Reshape", [f"Yt_{k - 1}", "shape_TBF"], [f"X_{k}"]))
            x = f"X_{k}"
        named = {}
        for name, array in weights.items():
            named[name] = f"{name}_{k}"
            initializers.append(numpy_helper.from_array(array, named[name]))
        if lengths:
            named["sequence_lens"] = "sequence_lens"
        for s in states if initial else ():
            named[f"initial_{s}"] = f"initial_{s}_{k}"
            inputs.append(helper.make_tensor_value_info(f"initial_{s}_{k}", floats, state_shape))
        slots = ["W", "R", "B", "sequence_lens", "initial_h"]
        slots += ["initial_c", "P"] if op == "LSTM" else []
        node_inputs = [x] + [named.get(slot, "") for slot in slots]
        while node_inputs[-1] == "":  # trailing optional inputs are simply left out
            node_inputs.pop()
        node_outputs = [f"Y_{k}"] + [f"Y_{s}_{k}" for s in states]
        nodes.append(helper.make_node(op, node_inputs, node_outputs, **attrs))
        outputs += [
            helper.make_tensor_value_info(f"Y_{s}_{k}", floats, state_shape) for s in states
        ]
        x = f"Y_{k}"
    if len(layers) > 1:
        initializers.append(numpy_helper.from_array(np.array([0, 0, -1], np.int64), "shape_TBF"))
    outputs.insert(0, helper.make_tensor_value_info(x, floats, [steps, directions, batch, hidden]))
    graph = helper.make_graph(nodes, f"lstmkit_{op.lower()}", inputs, outputs, initializers)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION
    )
    onnx.checker.check_model(model, full_check=True)  # also checks every declared shape
    return model


# -- runner --------------------------------------------------------------------------------

MODEL_BUILDERS = {"lstm": lstm_model, "gru": gru_model, "rnn": rnn_model}


def onnx_attributes(layer: RecurrentLayer) -> dict:
    """The operator attributes that give lstmkit ``layer``'s cell."""
    family = layer.family
    if family.name == "lstm":
        return {"input_forget": int(family.coupled)}
    if family.name == "rnn":  # one activation per direction
        return {"activations": [family.nonlinearity.capitalize()] * layer.num_directions}
    return {}


def onnx_forward(
    layer: RecurrentLayer,
    x: torch.Tensor,
    hx=None,
    lengths: torch.Tensor | None = None,
    *,
    filler: np.random.Generator | None = None,
    leave_out: tuple[str, ...] = (),
    **attributes,
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """lstmkit ``layer`` run by onnxruntime: ``x`` (T, B, I) padded, ``hx`` as lstmkit takes
    it (h0 or (h0, c0), each (L*D, B, H)), ``lengths`` (B,). Returns lstmkit's layout:
    output (T, B, D*H) and the final states, each (L*D, B, H), as float32 arrays.

    ``leave_out`` names ONNX inputs not to pass ("P", "B"), and ``attributes`` override the
    operator's: both for negative controls, which must then disagree with lstmkit.
    """
    steps, batch, _ = x.shape
    directions, hidden = layer.num_directions, layer.hidden_size
    layers = []
    for k in range(layer.num_layers):
        weights = onnx_weights(layer, k, filler)
        layers.append({name: w for name, w in weights.items() if name not in leave_out})
    inputs = {"lengths": lengths is not None, "initial": hx is not None}
    attributes = {**onnx_attributes(layer), **attributes}
    build = MODEL_BUILDERS[layer.family.name]
    model = build(layers, x.shape, bidirectional=layer.bidirectional, **inputs, **attributes)

    feeds = {"X": _numpy(x)}
    if lengths is not None:
        feeds["sequence_lens"] = _numpy(lengths).astype(np.int32)
    states = ("h", "c") if layer.family.name == "lstm" else ("h",)
    if hx is not None:
        hx = hx if isinstance(hx, tuple) else (hx,)
        for s, tensor in zip(states, hx, strict=True):
            for k in range(layer.num_layers):  # layer k's slice of (L*D, B, H)
                feeds[f"initial_{s}_{k}"] = _numpy(tensor[k * directions : (k + 1) * directions])

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    results = dict(zip(names, session.run(None, feeds), strict=True))
    y = results[names[0]]  # (T, D, B, H)
    output = y.transpose(0, 2, 1, 3).reshape(steps, batch, directions * hidden)
    finals = tuple(
        np.concatenate([results[f"Y_{s}_{k}"] for k in range(layer.num_layers)]) for s in states
    )  # each (L*D, B, H)
    return output, finals


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    array = tensor.detach().cpu().numpy()
    return array.astype(np.float32) if array.dtype.kind == "f" else array


def padded(output, steps: int) -> torch.Tensor:
    """lstmkit's output as a padded (T, B, F) tensor, whether it came back packed or not."""
    if isinstance(output, PackedSequence):
        output, _ = pad_packed_sequence(output, total_length=steps)
    return output

"""The 1997 network's gradient against the paper's own learning rule, written forwards.

The paper does not backpropagate: App. A.1 learns with a variant of RTRL that carries, for
every memory cell, the partial derivatives of its state s_c with respect to the weights into
the cell and into its input gate, and combines them with the
error arriving at the cell's output at each step. The output gate and the output units take
only the error of the current step. ``MemoryBlockNetwork`` instead runs a reverse pass (a
reverse cumulative sum along the constant error carrousel). The two must give the same
weight change for a whole sequence: "each weight's total update is the sum of the
contributions of all time steps" (App. A.1). This file holds a plain numpy version of the
forward rule, written from the appendix and not from the module, and compares them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstmkit.paper1997 import MemoryBlockNetwork
from lstmkit.paper1997.specs import ADDING, LONG_LAG, REBER_3X2, TEMPORAL_ORDER


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _rtrl_gradients(net: MemoryBlockNetwork, inputs, targets, mask):
    """dE/dw of one sequence by forward sensitivities; E = 1/2 sum of squared errors over
    the target steps. Returns a dict shaped like the module's parameters (trial dim 1)."""
    a = net.architecture
    n, size, h = a.blocks, a.cells_per_block, a.hidden_units
    p = {
        name: None if t is None else t.detach()[0].double().numpy()
        for name, t in (
            ("w_input", net.w_input),
            ("w_recurrent", net.w_recurrent),
            ("b_gate", net.b_gate),
            ("b_cell", net.b_cell),
            ("w_output", net.w_output),
            ("b_output", net.b_output),
        )
    }
    # unit indices in the module's block layout [in_j, out_j, c_j^1..c_j^S]
    layout = np.arange(h).reshape(n, size + 2)
    in_units, out_units, cell_units = layout[:, 0], layout[:, 1], layout[:, 2:].ravel()
    block_of_cell = np.repeat(np.arange(n), size)
    bias = np.zeros(h)
    if p["b_gate"] is not None:
        bias[in_units], bias[out_units] = p["b_gate"][:, 0], p["b_gate"][:, 1]
    if p["b_cell"] is not None:
        bias[cell_units] = p["b_cell"].ravel()
    # every gate and cell sees the sources z(t) = [x(t), y(t-1), 1]
    w = np.concatenate([p["w_input"], p["w_recurrent"], bias[None]], axis=0)
    w_out = p["w_output"]
    b_out = np.zeros(a.outputs) if p["b_output"] is None else p["b_output"]

    d_w = np.zeros_like(w)
    d_w_out = np.zeros_like(w_out)
    d_b_out = np.zeros_like(b_out)
    y = np.zeros(h)
    s = np.zeros(a.cells)
    sens_cell = np.zeros((a.cells, w.shape[0]))  # ds_c / dw_{c, m}
    sens_gate = np.zeros((a.cells, w.shape[0]))  # ds_c / dw_{in_j, m}, j the cell's block
    for t in range(inputs.shape[0]):
        z = np.concatenate([inputs[t], y, [1.0]])
        net_in = z @ w
        y_in, y_out = _sigmoid(net_in[in_units]), _sigmoid(net_in[out_units])
        f_cell = _sigmoid(net_in[cell_units])
        g = 4.0 * f_cell - 2.0
        g_prime = 4.0 * f_cell * (1.0 - f_cell)
        gate = y_in[block_of_cell]
        s = s + gate * g
        h_s = 2.0 * _sigmoid(s) - 1.0
        h_prime = 0.5 * (1.0 - h_s * h_s)
        y_cell = y_out[block_of_cell] * h_s
        # the sensitivities grow only through s(t) = s(t-1) + y_in g: the truncation
        sens_cell += np.outer(gate * g_prime, z)
        sens_gate += np.outer(g * gate * (1.0 - gate), z)
        y = np.zeros(h)
        y[in_units], y[out_units], y[cell_units] = y_in, y_out, y_cell
        out = _sigmoid(y_cell @ w_out + b_out)
        if not mask[t]:
            continue
        e_k = (out - targets[t]) * out * (1.0 - out)  # dE/dnet_k
        d_w_out += np.outer(y_cell, e_k)
        d_b_out += e_k
        e_cell_out = w_out @ e_k  # dE/dy_c
        e_out_gate = (
            y_out * (1.0 - y_out) * np.bincount(block_of_cell, e_cell_out * h_s, minlength=n)
        )
        e_state = e_cell_out * y_out[block_of_cell] * h_prime  # dE/ds_c at this step
        d_w[:, out_units] += np.outer(z, e_out_gate)
        d_w[:, cell_units] += (e_state[:, None] * sens_cell).T
        per_block = np.zeros((n, w.shape[0]))
        np.add.at(per_block, block_of_cell, e_state[:, None] * sens_gate)
        d_w[:, in_units] += per_block.T

    i = a.inputs
    grads = {
        "w_input": d_w[:i],
        "w_recurrent": d_w[i : i + h],
        "w_output": d_w_out,
        "b_output": d_b_out,
        "b_gate": np.stack([d_w[-1, in_units], d_w[-1, out_units]], axis=1),
        "b_cell": d_w[-1, cell_units].reshape(n, size),
    }
    return grads


@pytest.mark.parametrize(
    "spec", [REBER_3X2, LONG_LAG, ADDING, TEMPORAL_ORDER], ids=lambda s: s.task
)
def test_reverse_pass_equals_the_papers_forward_rule(spec):
    arch = spec.architecture.with_io(5, 3)
    net = MemoryBlockNetwork(arch, 1, seeds=[7], dtype=torch.float64)
    gen = torch.Generator().manual_seed(3)
    steps = 17
    inputs = torch.rand(steps, arch.inputs, generator=gen, dtype=torch.float64)
    targets = torch.rand(steps, arch.outputs, generator=gen, dtype=torch.float64)
    mask = torch.rand(steps, generator=gen) < 0.6
    mask[-1] = True

    output = net(inputs[None, None], torch.tensor([[steps]]))[0, 0]
    loss = 0.5 * (((output - targets) ** 2) * mask[:, None]).sum()
    loss.backward()

    expected = _rtrl_gradients(net, inputs.numpy(), targets.numpy(), mask.numpy())
    checked = 0
    for name, param in net.named_parameters():
        got = param.grad[0].numpy()
        assert np.abs(got).max() > 0, name  # every parameter takes part in this test
        np.testing.assert_allclose(got, expected[name], rtol=1e-9, atol=1e-12, err_msg=name)
        checked += 1
    assert checked == sum(1 for _ in net.parameters())


def test_the_forward_rule_would_notice_a_wrong_gradient():
    """Negative control: the comparison fails when the module's gradient is the full BPTT
    one (no truncation), which differs from the paper's rule after the first step."""
    arch = REBER_3X2.architecture.with_io(4, 2)
    net = MemoryBlockNetwork(arch, 1, seeds=[1], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    inputs = torch.rand(9, 4, generator=gen, dtype=torch.float64)
    targets = torch.rand(9, 2, generator=gen, dtype=torch.float64)
    mask = torch.ones(9, dtype=torch.bool)
    run = net.forward_reference(inputs[None, None], torch.tensor([[9]]), truncated=False)
    (0.5 * ((run.output[0, 0] - targets) ** 2).sum()).backward()
    expected = _rtrl_gradients(net, inputs.numpy(), targets.numpy(), mask.numpy())
    got = net.w_recurrent.grad[0].numpy()
    assert not np.allclose(got, expected["w_recurrent"], rtol=1e-6, atol=1e-9)

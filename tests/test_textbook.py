"""The textbook NumPy LSTM checked against oracles nobody here wrote: torch.nn.LSTM and finite
differences."""

import doctest
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import lstmkit
from lstmkit.textbook import (
    TextbookParams,
    grads_to_torch_layout,
    lstm_backward,
    lstm_forward,
    lstm_step,
    numpy_lstm,
    params_from_torch_layout,
    params_to_torch_layout,
)

# T time steps, B batch, I input size, H hidden size (I != H so a transposed block cannot pass)
SHAPES = [(1, 1, 3, 2), (1, 3, 2, 5), (7, 1, 4, 3), (7, 3, 3, 5)]
SHAPE_IDS = [f"T{T}-B{B}-I{I}-H{H}" for T, B, I, H in SHAPES]
TORCH_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def random_inputs(rng, T, B, I, H):
    """x, h0, c0 and upstream gradients for hs, h_T, c_T, all float64."""
    x = rng.standard_normal((T, B, I))
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    dhs = rng.standard_normal((T, B, H))
    dh_T, dc_T = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    return x, h0, c0, dhs, dh_T, dc_T


def torch_lstm_run(lstm, x, h0, c0, dhs, dh_T, dc_T):
    """Forward and backward through a torch.nn.LSTM-like module, results as numpy arrays:
    {"out", "h_T", "c_T", "x", "h0", "c0", "weight_ih_l0", ...}, gradients under input names."""
    x_, h0_, c0_ = (torch.tensor(a, requires_grad=True) for a in (x, h0[None], c0[None]))
    out, (h_T, c_T) = lstm(x_, (h0_, c0_))
    upstream = [torch.tensor(dhs), torch.tensor(dh_T[None]), torch.tensor(dc_T[None])]
    torch.autograd.backward([out, h_T, c_T], upstream)
    results = {"out": out.detach().numpy(), "h_T": h_T[0].detach().numpy()}
    results |= {"c_T": c_T[0].detach().numpy(), "x": x_.grad.numpy()}
    results |= {"h0": h0_.grad[0].numpy(), "c0": c0_.grad[0].numpy()}
    return results | {n: getattr(lstm, n).grad.numpy() for n in TORCH_NAMES}


def textbook_run(p, x, h0, c0, dhs, dh_T, dc_T):
    """The same as torch_lstm_run through the textbook, parameter gradients in torch's layout."""
    hs, (h_T, c_T), cache = lstm_forward(p, x, h0, c0)
    g = lstm_backward(p, cache, dhs, dh_T, dc_T)
    results = {"out": hs, "h_T": h_T, "c_T": c_T, "x": g.x, "h0": g.h0, "c0": g.c0}
    return results | dict(zip(TORCH_NAMES, grads_to_torch_layout(g.params), strict=True))


def assert_textbook_matches(lstm, T, B, I, H):
    """Run `lstm` (float64, torch's parameter names) and the textbook with its weights, sending
    random upstream gradients into every output and both final states; compare everything."""
    inputs = random_inputs(np.random.default_rng(1), T, B, I, H)
    expected = torch_lstm_run(lstm, *inputs)
    p = params_from_torch_layout(*(getattr(lstm, n).detach().numpy() for n in TORCH_NAMES))
    actual = textbook_run(p, *inputs)
    assert actual.keys() == expected.keys()
    for name, ref in expected.items():
        np.testing.assert_allclose(actual[name], ref, rtol=1e-10, atol=1e-10, err_msg=name)


@pytest.mark.parametrize(("T", "B", "I", "H"), SHAPES, ids=SHAPE_IDS)
def test_matches_torch_lstm(T, B, I, H):
    torch.manual_seed(0)
    assert_textbook_matches(torch.nn.LSTM(I, H, dtype=torch.float64), T, B, I, H)


@pytest.mark.parametrize("backend", ["reference", "torch"])
@pytest.mark.parametrize(("T", "B", "I", "H"), SHAPES, ids=SHAPE_IDS)
def test_matches_lstmkit_lstm(T, B, I, H, backend):
    """lstmkit.LSTM is a drop-in for torch.nn.LSTM, so the same comparison applies to it."""
    torch.manual_seed(0)
    lstm = lstmkit.LSTM(I, H, dtype=torch.float64, backend=backend)
    assert_textbook_matches(lstm, T, B, I, H)


def numerical_gradient(f, a, eps=1e-6):
    """Central differences, one entry at a time: ∂f/∂a[k] ≈ (f(a + ε e_k) - f(a - ε e_k)) / 2ε.

    Perturbs `a` in place and restores it; `f` takes no arguments and reads `a` itself.
    """
    grad = np.zeros_like(a)
    for k in np.ndindex(a.shape):
        old = a[k]
        a[k] = old + eps
        f_plus = f()
        a[k] = old - eps
        f_minus = f()
        a[k] = old
        grad[k] = (f_plus - f_minus) / (2 * eps)
    return grad


PARAM_NAMES = ["W_f", "W_i", "W_C", "W_o", "b_f", "b_i", "b_C", "b_o"]


@pytest.mark.parametrize("wrt", [*PARAM_NAMES, "x", "h0", "c0"])
def test_backward_matches_finite_differences(wrt):
    T, B, I, H = 4, 2, 3, 2
    rng = np.random.default_rng(2)
    p = TextbookParams.random(I, H, rng)
    x, h0, c0, dhs, dh_T, dc_T = random_inputs(rng, T, B, I, H)
    inputs = {"x": x, "h0": h0, "c0": c0}

    def loss():  # a scalar whose gradient w.r.t. hs, h_T, c_T is exactly dhs, dh_T, dc_T
        hs, (h_T, c_T), _ = lstm_forward(p, x, h0, c0)
        return np.sum(dhs * hs) + np.sum(dh_T * h_T) + np.sum(dc_T * c_T)

    _, _, cache = lstm_forward(p, x, h0, c0)
    g = lstm_backward(p, cache, dhs, dh_T, dc_T)
    if wrt in PARAM_NAMES:
        analytic, array = getattr(g.params, wrt), getattr(p, wrt)
    else:
        analytic, array = getattr(g, wrt), inputs[wrt]
    numeric = numerical_gradient(loss, array)
    rel_error = np.linalg.norm(analytic - numeric) / (
        np.linalg.norm(analytic) + np.linalg.norm(numeric)
    )
    assert rel_error < 1e-6, f"{wrt}: relative error {rel_error:.2e}"


def test_sequence_equals_step_by_step():
    T, B, I, H = 5, 3, 4, 3
    rng = np.random.default_rng(3)
    p = TextbookParams.random(I, H, rng)
    x, h, C, *_ = random_inputs(rng, T, B, I, H)
    hs, (h_T, c_T), _ = lstm_forward(p, x, h, C)
    for t in range(T):
        h, C, _ = lstm_step(p, x[t], h, C)
        np.testing.assert_array_equal(hs[t], h)
    np.testing.assert_array_equal(h_T, h)
    np.testing.assert_array_equal(c_T, C)


def test_zero_initial_state_by_default():
    p = TextbookParams.random(3, 2, rng=4)
    x = np.random.default_rng(5).standard_normal((3, 2, 3))
    zeros = np.zeros((2, 2))
    hs, (h_T, c_T), _ = lstm_forward(p, x)
    hs0, (h_T0, c_T0), _ = lstm_forward(p, x, zeros, zeros)
    for a, b in ((hs, hs0), (h_T, h_T0), (c_T, c_T0)):
        np.testing.assert_array_equal(a, b)


def test_torch_layout_round_trip():
    p = TextbookParams.random(3, 4, rng=6)
    layout = params_to_torch_layout(p)
    assert layout.weight_ih.shape == (16, 3)
    assert layout.weight_hh.shape == (16, 4)
    q = params_from_torch_layout(*layout)
    for name in PARAM_NAMES:
        np.testing.assert_array_equal(getattr(q, name), getattr(p, name), err_msg=name)


def test_params_to_torch_layout_loads_into_torch_lstm():
    T, B, I, H = 4, 2, 3, 5
    p = TextbookParams.random(I, H, rng=7)
    lstm = torch.nn.LSTM(I, H, dtype=torch.float64)
    with torch.no_grad():
        for name, a in zip(TORCH_NAMES, params_to_torch_layout(p), strict=True):
            getattr(lstm, name).copy_(torch.from_numpy(a))
    x = np.random.default_rng(8).standard_normal((T, B, I))
    out, _ = lstm(torch.from_numpy(x))
    hs, _, _ = lstm_forward(p, x)
    np.testing.assert_allclose(hs, out.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_bad_shapes_raise_precise_errors():
    p = TextbookParams.random(3, 2, rng=0)
    with pytest.raises(ValueError, match=r"expected x of shape \(T, B, 3\) with T >= 1, got"):
        lstm_forward(p, np.zeros((4, 2, 5)))
    with pytest.raises(ValueError, match=r"expected x of shape .* got \(0, 2, 3\)"):
        lstm_forward(p, np.zeros((0, 2, 3)))
    with pytest.raises(ValueError, match=r"expected h0 of shape \(2, 2\), got \(1, 2\)"):
        lstm_forward(p, np.zeros((4, 2, 3)), h0=np.zeros((1, 2)))
    _, _, cache = lstm_forward(p, np.zeros((4, 2, 3)))
    with pytest.raises(ValueError, match=r"expected dhs of shape \(4, 2, 2\), got \(3, 2, 2\)"):
        lstm_backward(p, cache, np.zeros((3, 2, 2)))


def test_module_imports_no_torch():
    # lstmkit/__init__.py imports torch, so load the file on its own instead of via the package
    path = Path(numpy_lstm.__file__)
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('numpy_lstm', {str(path)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "sys.modules['numpy_lstm'] = module\n"  # dataclasses look their module up here
        "spec.loader.exec_module(module)\n"
        "assert 'torch' not in sys.modules, 'numpy_lstm imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


DOCS = Path(__file__).parents[1] / "docs" / "textbook.md"


def test_docs_quote_the_code():
    """Every line of a ```python block in docs/textbook.md appears in numpy_lstm.py."""
    source = Path(numpy_lstm.__file__).read_text()
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    assert blocks, "no python blocks found in docs/textbook.md"
    for line in "".join(blocks).splitlines():
        assert line.strip() in source, f"docs/textbook.md quotes a line not in the code: {line}"


def test_docs_example_runs():
    """The ```pycon session in docs/textbook.md runs and prints what it shows."""
    blocks = re.findall(r"```pycon\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    assert blocks, "no pycon blocks found in docs/textbook.md"
    for block in blocks:
        test = doctest.DocTestParser().get_doctest(block, {}, "textbook.md", str(DOCS), 0)
        failed, _ = doctest.DocTestRunner().run(test)
        assert failed == 0

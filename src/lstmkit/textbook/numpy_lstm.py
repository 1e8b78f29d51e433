"""The textbook LSTM: NumPy only, a forward pass and a hand-derived backward pass through time.

The equations as Olah writes them in "Understanding LSTM Networks" (colah.github.io, 2015),
every gate reading the concatenation [h_{t-1}, x_t]:

    f_t  = σ(W_f · [h_{t-1}, x_t] + b_f)        forget gate
    i_t  = σ(W_i · [h_{t-1}, x_t] + b_i)        input gate
    C~_t = tanh(W_C · [h_{t-1}, x_t] + b_C)     candidate cell state
    C_t  = f_t * C_{t-1} + i_t * C~_t           new cell state
    o_t  = σ(W_o · [h_{t-1}, x_t] + b_o)        output gate
    h_t  = o_t * tanh(C_t)                      new hidden state

`*` is the elementwise product, `·` the matrix product. The code computes one sample per row,
so W · [h_{t-1}, x_t] is written `hx @ W.T`.

Shape legend:
    T  time steps      B  batch      I  input size      H  hidden size
    x        (T, B, I)       the input sequence, time first
    h0, c0   (B, H)          initial hidden state h_0 and cell state C_0
    hs       (T, B, H)       every h_t, t = 1..T
    hx       (B, H + I)      the concatenation [h_{t-1}, x_t]
    W_*      (H, H + I)      the first H columns act on h_{t-1}, the last I on x_t
    b_*      (H,)

torch.nn.LSTM keeps the same numbers in another layout: weight_ih (4H, I), weight_hh (4H, H),
bias_ih (4H,), bias_hh (4H,), with the gates stacked in the order i, f, g, o (g is C~).
`params_from_torch_layout` and `params_to_torch_layout` move between the two; the module never
imports torch, so the caller passes `tensor.detach().numpy()`.

Initialisation (`TextbookParams.random`): every entry uniform in (-1/√H, 1/√H), as torch does.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np

TORCH_GATE_ORDER = ("i", "f", "g", "o")  # torch's row blocks; its g is our candidate C~


def sigmoid(z: np.ndarray) -> np.ndarray:
    """σ(z) = 1 / (1 + e^{-z}), written through tanh so large |z| cannot overflow exp."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


# ---------------------------------------------------------------------------------------------
# Parameters


@dataclass
class TextbookParams:
    """The eight LSTM parameters, named after the equations. Also used for their gradients."""

    W_f: np.ndarray  # (H, H + I) forget gate
    W_i: np.ndarray  # (H, H + I) input gate
    W_C: np.ndarray  # (H, H + I) candidate cell state
    W_o: np.ndarray  # (H, H + I) output gate
    b_f: np.ndarray  # (H,)
    b_i: np.ndarray  # (H,)
    b_C: np.ndarray  # (H,)
    b_o: np.ndarray  # (H,)

    @property
    def hidden_size(self) -> int:
        return self.W_f.shape[0]

    @property
    def input_size(self) -> int:
        return self.W_f.shape[1] - self.hidden_size

    @classmethod
    def random(
        cls,
        input_size: int,
        hidden_size: int,
        rng: int | np.random.Generator | None = None,
        dtype: np.dtype | type = np.float64,
    ) -> TextbookParams:
        """Uniform(-1/√H, 1/√H) entries, like torch.nn.LSTM. `rng` is a seed or a Generator."""
        rng = np.random.default_rng(rng)
        k = 1.0 / np.sqrt(hidden_size)
        H, I = hidden_size, input_size

        def draw(*shape: int) -> np.ndarray:
            return rng.uniform(-k, k, size=shape).astype(dtype)

        return cls(
            W_f=draw(H, H + I), W_i=draw(H, H + I), W_C=draw(H, H + I), W_o=draw(H, H + I),
            b_f=draw(H), b_i=draw(H), b_C=draw(H), b_o=draw(H),
        )  # fmt: skip

    @classmethod
    def zeros_like(cls, other: TextbookParams) -> TextbookParams:
        return cls(**{f.name: np.zeros_like(getattr(other, f.name)) for f in fields(cls)})

    def __add__(self, other: TextbookParams) -> TextbookParams:
        return TextbookParams(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )


class StepCache(NamedTuple):
    """What the backward pass needs from one time step t."""

    hx: np.ndarray  # (B, H + I) [h_{t-1}, x_t]
    f: np.ndarray  # (B, H) f_t
    i: np.ndarray  # (B, H) i_t
    C_tilde: np.ndarray  # (B, H) C~_t
    o: np.ndarray  # (B, H) o_t
    C_prev: np.ndarray  # (B, H) C_{t-1}
    tanh_C: np.ndarray  # (B, H) tanh(C_t)


@dataclass
class TextbookGrads:
    """Gradients of the loss with respect to everything `lstm_forward` took."""

    params: TextbookParams  # same names and shapes as the parameters
    x: np.ndarray  # (T, B, I)
    h0: np.ndarray  # (B, H)
    c0: np.ndarray  # (B, H)


# ---------------------------------------------------------------------------------------------
# Forward


def lstm_step(
    p: TextbookParams, x_t: np.ndarray, h_prev: np.ndarray, C_prev: np.ndarray
) -> tuple[np.ndarray, np.ndarray, StepCache]:
    """One time step: (x_t, h_{t-1}, C_{t-1}) -> (h_t, C_t, cache for backward)."""
    hx = np.concatenate([h_prev, x_t], axis=1)  # (B, H + I) [h_{t-1}, x_t]
    f = sigmoid(hx @ p.W_f.T + p.b_f)  # (B, H) f_t = σ(W_f·[h_{t-1}, x_t] + b_f)
    i = sigmoid(hx @ p.W_i.T + p.b_i)  # (B, H) i_t = σ(W_i·[h_{t-1}, x_t] + b_i)
    C_tilde = np.tanh(hx @ p.W_C.T + p.b_C)  # (B, H) C~_t = tanh(W_C·[h_{t-1}, x_t] + b_C)
    C = f * C_prev + i * C_tilde  # (B, H) C_t = f_t*C_{t-1} + i_t*C~_t
    o = sigmoid(hx @ p.W_o.T + p.b_o)  # (B, H) o_t = σ(W_o·[h_{t-1}, x_t] + b_o)
    tanh_C = np.tanh(C)  # (B, H) kept: h_t and the backward pass both use it
    h = o * tanh_C  # (B, H) h_t = o_t*tanh(C_t)
    return h, C, StepCache(hx, f, i, C_tilde, o, C_prev, tanh_C)


def lstm_forward(
    p: TextbookParams,
    x: np.ndarray,
    h0: np.ndarray | None = None,
    c0: np.ndarray | None = None,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], list[StepCache]]:
    """Run the LSTM over x (T, B, I) from (h0, c0), zeros when omitted.

    Returns hs (T, B, H), the final (h_T, C_T) each (B, H), and the per-step caches that
    `lstm_backward` needs.
    """
    T, B, _ = _check_input(p, x)
    h = np.zeros((B, p.hidden_size), dtype=x.dtype) if h0 is None else h0  # (B, H)
    C = np.zeros((B, p.hidden_size), dtype=x.dtype) if c0 is None else c0  # (B, H)
    _check_state(p, h, B, "h0")
    _check_state(p, C, B, "c0")
    hs, cache = [], []
    for t in range(T):
        h, C, step = lstm_step(p, x[t], h, C)
        hs.append(h)
        cache.append(step)
    return np.stack(hs), (h, C), cache  # (T, B, H), ((B, H), (B, H))


def _check_input(p: TextbookParams, x: np.ndarray) -> tuple[int, int, int]:
    if x.ndim != 3 or x.shape[0] < 1 or x.shape[2] != p.input_size:
        raise ValueError(f"expected x of shape (T, B, {p.input_size}) with T >= 1, got {x.shape}")
    return x.shape


def _check_state(p: TextbookParams, s: np.ndarray, B: int, name: str) -> None:
    if s.shape != (B, p.hidden_size):
        raise ValueError(f"expected {name} of shape ({B}, {p.hidden_size}), got {s.shape}")


# ---------------------------------------------------------------------------------------------
# Backward


def linear_backward(
    da: np.ndarray, W: np.ndarray, hx: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backprop through the pre-activation a = W·[h_{t-1}, x_t] + b, given da = ∂L/∂a (B, H)."""
    dW = da.T @ hx  # (H, H + I) ∂a/∂W is the input [h_{t-1}, x_t]: outer product, summed over B
    db = da.sum(axis=0)  # (H,) the bias is added to every sample, so its gradient sums over B
    dhx = da @ W  # (B, H + I) ∂a/∂[h_{t-1}, x_t] = W
    return dW, db, dhx


def lstm_step_backward(
    p: TextbookParams, s: StepCache, dh: np.ndarray, dC: np.ndarray
) -> tuple[TextbookParams, np.ndarray, np.ndarray, np.ndarray]:
    """Backprop one time step.

    dh is the whole gradient reaching h_t, dC the gradient reaching C_t from step t+1
    (both (B, H)). Returns this step's parameter gradients, dh_{t-1}, dx_t and dC_{t-1}.
    """
    H = p.hidden_size
    do = dh * s.tanh_C  # (B, H) product rule on h_t = o_t*tanh(C_t): ∂h_t/∂o_t = tanh(C_t)
    # product rule on h_t = o_t*tanh(C_t), then backprop through tanh: tanh' = 1 - tanh²;
    # C_t also reaches the loss through C_{t+1}, so the two gradients add (multivariate chain rule)
    dC = dC + dh * s.o * (1 - s.tanh_C**2)  # (B, H)
    df = dC * s.C_prev  # (B, H) product rule on C_t = f_t*C_{t-1} + i_t*C~_t: ∂C_t/∂f_t = C_{t-1}
    di = dC * s.C_tilde  # (B, H) same product rule: ∂C_t/∂i_t = C~_t
    dC_tilde = dC * s.i  # (B, H) same product rule: ∂C_t/∂C~_t = i_t
    # the cell state carries gradient straight to t-1 (the "gradient highway"): no weight
    # matrix and no squashing on the way, only the elementwise factor f_t
    dC_prev = dC * s.f  # (B, H)
    da_f = df * s.f * (1 - s.f)  # (B, H) backprop through σ: σ' = σ(1-σ)
    da_i = di * s.i * (1 - s.i)  # (B, H) backprop through σ: σ' = σ(1-σ)
    da_C = dC_tilde * (1 - s.C_tilde**2)  # (B, H) backprop through tanh: tanh' = 1 - tanh²
    da_o = do * s.o * (1 - s.o)  # (B, H) backprop through σ: σ' = σ(1-σ)
    dW_f, db_f, dhx_f = linear_backward(da_f, p.W_f, s.hx)  # through W_f·[h_{t-1}, x_t] + b_f
    dW_i, db_i, dhx_i = linear_backward(da_i, p.W_i, s.hx)  # through W_i·[h_{t-1}, x_t] + b_i
    dW_C, db_C, dhx_C = linear_backward(da_C, p.W_C, s.hx)  # through W_C·[h_{t-1}, x_t] + b_C
    dW_o, db_o, dhx_o = linear_backward(da_o, p.W_o, s.hx)  # through W_o·[h_{t-1}, x_t] + b_o
    dhx = dhx_f + dhx_i + dhx_C + dhx_o  # (B, H + I) [h_{t-1}, x_t] feeds all four gates: add
    dh_prev, dx_t = dhx[:, :H], dhx[:, H:]  # undo the concatenation: h_{t-1} came first
    grads = TextbookParams(dW_f, dW_i, dW_C, dW_o, db_f, db_i, db_C, db_o)
    return grads, dh_prev, dx_t, dC_prev


def lstm_backward(
    p: TextbookParams,
    cache: list[StepCache],
    dhs: np.ndarray,
    dh_T: np.ndarray | None = None,
    dc_T: np.ndarray | None = None,
) -> TextbookGrads:
    """Backpropagation through time.

    dhs (T, B, H) is ∂L/∂h_t for every output; dh_T and dc_T (B, H) are optional extra
    gradients of the final states (when h_T, C_T feed something after the sequence).
    """
    expected = (len(cache), *cache[0].f.shape)  # (T, B, H)
    if dhs.shape != expected:
        raise ValueError(f"expected dhs of shape {expected}, got {dhs.shape}")
    T, B, H = expected
    dh_next = np.zeros((B, H), dtype=dhs.dtype) if dh_T is None else dh_T  # (B, H)
    dC_next = np.zeros((B, H), dtype=dhs.dtype) if dc_T is None else dc_T  # (B, H)
    dparams = TextbookParams.zeros_like(p)
    dx = np.zeros((T, B, p.input_size), dtype=dhs.dtype)  # (T, B, I)
    for t in reversed(range(T)):
        dh = dhs[t] + dh_next  # h_t is both an output and the input of step t+1: gradients add
        step, dh_next, dx[t], dC_next = lstm_step_backward(p, cache[t], dh, dC_next)
        dparams = dparams + step  # the same parameters act at every t: their gradients add
    return TextbookGrads(params=dparams, x=dx, h0=dh_next, c0=dC_next)


# ---------------------------------------------------------------------------------------------
# torch.nn.LSTM's layout (numpy arrays only; never imports torch)


class TorchLSTMLayout(NamedTuple):
    """The four arrays of one torch.nn.LSTM layer, gate blocks in the order i, f, g, o."""

    weight_ih: np.ndarray  # (4H, I)
    weight_hh: np.ndarray  # (4H, H)
    bias_ih: np.ndarray  # (4H,)
    bias_hh: np.ndarray  # (4H,)


def params_from_torch_layout(
    weight_ih: np.ndarray,
    weight_hh: np.ndarray,
    bias_ih: np.ndarray | None = None,
    bias_hh: np.ndarray | None = None,
) -> TextbookParams:
    """Textbook parameters from torch's weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0.

    Pass numpy arrays (`tensor.detach().numpy()`); leave the biases out for `bias=False`.
    """
    H = weight_hh.shape[1]
    _check_torch_shapes(weight_ih, weight_hh, bias_ih, bias_hh, H)
    zeros = np.zeros(4 * H, dtype=weight_hh.dtype)
    bias = (zeros if bias_ih is None else bias_ih) + (zeros if bias_hh is None else bias_hh)
    W_ih = _split_gates(weight_ih)  # gate -> (H, I)
    W_hh = _split_gates(weight_hh)  # gate -> (H, H)
    b = _split_gates(bias)  # gate -> (H,) torch adds two biases; only their sum matters
    W = {g: np.concatenate([W_hh[g], W_ih[g]], axis=1) for g in W_ih}  # (H, H + I) [h, x] order
    return TextbookParams(
        W_f=W["f"], W_i=W["i"], W_C=W["g"], W_o=W["o"],
        b_f=b["f"], b_i=b["i"], b_C=b["g"], b_o=b["o"],
    )  # fmt: skip


def params_to_torch_layout(p: TextbookParams) -> TorchLSTMLayout:
    """torch's four arrays for these parameters. The textbook has one bias per gate where torch
    has two, so all of it goes to bias_ih and bias_hh is zero."""
    weight_ih, weight_hh = _torch_weights(p)
    bias_ih = np.concatenate([p.b_i, p.b_f, p.b_C, p.b_o])  # (4H,) order i, f, g, o
    return TorchLSTMLayout(weight_ih, weight_hh, bias_ih, np.zeros_like(bias_ih))


def grads_to_torch_layout(d: TextbookParams) -> TorchLSTMLayout:
    """torch's four parameter gradients from the textbook ones.

    torch's pre-activation is W_ih·x_t + b_ih + W_hh·h_{t-1} + b_hh, so ∂L/∂b_ih and ∂L/∂b_hh
    are both the textbook ∂L/∂b.
    """
    dweight_ih, dweight_hh = _torch_weights(d)
    dbias = np.concatenate([d.b_i, d.b_f, d.b_C, d.b_o])  # (4H,) order i, f, g, o
    return TorchLSTMLayout(dweight_ih, dweight_hh, dbias, dbias.copy())


def _torch_weights(p: TextbookParams) -> tuple[np.ndarray, np.ndarray]:
    H = p.hidden_size
    Ws = [p.W_i, p.W_f, p.W_C, p.W_o]  # torch's order i, f, g, o
    weight_ih = np.concatenate([W[:, H:] for W in Ws], axis=0)  # (4H, I) the x_t columns
    weight_hh = np.concatenate([W[:, :H] for W in Ws], axis=0)  # (4H, H) the h_{t-1} columns
    return weight_ih, weight_hh


def _split_gates(a: np.ndarray) -> dict[str, np.ndarray]:
    """Cut torch's (4H, ...) stack into its gate blocks, keyed i, f, g, o."""
    return dict(zip(TORCH_GATE_ORDER, np.split(a, 4, axis=0), strict=True))


def _check_torch_shapes(
    weight_ih: np.ndarray,
    weight_hh: np.ndarray,
    bias_ih: np.ndarray | None,
    bias_hh: np.ndarray | None,
    H: int,
) -> None:
    if weight_hh.shape != (4 * H, H):
        raise ValueError(f"expected weight_hh of shape (4H, H), got {weight_hh.shape}")
    if weight_ih.ndim != 2 or weight_ih.shape[0] != 4 * H:
        raise ValueError(f"expected weight_ih of shape ({4 * H}, I), got {weight_ih.shape}")
    for name, b in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
        if b is not None and b.shape != (4 * H,):
            raise ValueError(f"expected {name} of shape ({4 * H},), got {b.shape}")

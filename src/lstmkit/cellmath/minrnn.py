r"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?", arXiv:2410.01201):
the GRU and LSTM with every gate computed from x_t alone, so that the recurrence is linear
in h and all T steps can be computed at once by a parallel scan (Heinsen 2023, "Efficient
Parallelization of a Ubiquitous Sequential Computation", arXiv:2311.06281).

minGRU (Section 3.1: the gates drop h_{t-1} (3.1.1) and the candidate drops tanh (3.1.2)):

.. math::
    z_t         &= \sigma(\mathrm{Linear}_z(x_t))                              \\
    \tilde h_t  &= g(\mathrm{Linear}_h(x_t))                                   \\
    h_t         &= (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t

minLSTM (Section 3.2: the gates drop h_{t-1} (3.2.1), the candidate drops tanh (3.2.2), and
the output gate and cell state go, with the forget and input gates normalised so that h_t
keeps a scale independent of t (3.2.3)):

.. math::
    f_t         &= \sigma(\mathrm{Linear}_f(x_t)), \quad
    i_t          = \sigma(\mathrm{Linear}_i(x_t))                              \\
    \tilde h_t  &= g(\mathrm{Linear}_h(x_t))                                   \\
    f'_t        &= \frac{f_t}{f_t + i_t}, \quad i'_t = \frac{i_t}{f_t + i_t}   \\
    h_t         &= f'_t \odot h_{t-1} + i'_t \odot \tilde h_t

Without step 3.2.3 (h_t = f_t h_{t-1} + i_t h~_t) the state can grow with t; the paper
keeps the normalised form, and so does lstmkit. Note minGRU's z_t weights the candidate,
the opposite of torch.nn.GRU's update gate, which weights h_{t-1}.

The candidate activation g (Appendix B.3, the paper's "log-space" models):

.. math::
    g(x) = x + \tfrac12 \ (x \ge 0), \qquad g(x) = \sigma(x) \ (x < 0)

Sections 3.1.2 and 3.2.2 write h~_t = Linear_h(x_t); Appendix B.3 passes it through g, which
is continuous, increasing, linear for x >= 0 and always positive, so that log h~_t exists.
lstmkit computes the g form in both modes below, so they are one model, not two.

Both cells are one recurrence with coefficients that depend only on the input:

.. math::
    h_t = a_t \odot h_{t-1} + b_t, \qquad
    \text{minGRU: } a_t = 1 - z_t,\ b_t = z_t \tilde h_t; \quad
    \text{minLSTM: } a_t = f'_t,\ b_t = i'_t \tilde h_t

with 0 < a_t < 1 and b_t > 0. It unrolls to

.. math::
    h_t = A_t h_0 + \sum_{k=1}^{t} \frac{A_t}{A_k} b_k, \qquad A_t = \prod_{j \le t} a_j,

and with a^*_t = \log A_t = \sum_{j \le t} \log a_j (a cumulative sum) the sum is, in log
space (Heinsen 2023; the paper's Appendix B.1),

.. math::
    \log \sum_{k \le t} \frac{A_t}{A_k} b_k
        = a^*_t + \operatorname{logcumsumexp}_{k \le t}(\log b_k - a^*_k),

two cumulative operations over time, no loop. The logs are taken from the pre-activations
directly (Appendix B.3), never from a gate that may have rounded to 0 or 1:
log(1 - z) = -softplus(k_z), log z = -softplus(-k_z), log g(x) = log(x + 1/2) or
-softplus(-x); for minLSTM, with d = softplus(-k_f) - softplus(-k_i) = log i - log f,
log f' = -softplus(d) and log i' = -softplus(-d).

The initial state. The paper's log-space scan takes log h_0 and so needs h_0 > 0 (its code
feeds g(h_0), which changes the state it is given). lstmkit keeps the two terms of the
unrolled sum apart: the h_0 term A_t h_0 = exp(a^*_t) h_0 is a product, exact for any sign,
and only the b terms, all positive, go through logcumsumexp (:func:`parallel_scan`). So a
user's h_0 of any sign gives exactly what the step-by-step form gives.

Precision: a^*_t falls by about |log a| per step, and the scan adds and subtracts numbers of
that size, so the relative error of h_t grows like |a^*_t| eps, and the gradients' more,
since logcumsumexp's backward subtracts nearly equal sums. Over a few thousand steps a
float32 scan in one piece keeps h to a few digits but can lose most of the gradients'. So
the scan always runs in float64 and returns the input's dtype (twice float32's memory
traffic, in a few elementwise passes), and in pieces of :data:`SCAN_CHUNK` steps, each from
the state the previous one ended in (which the exact h_0 term above makes possible), so
that |a^*| stays bounded however long the sequence. ``tests/test_minrnn.py`` checks T =
2,000 against the step loop.

Gate order and shapes (B batch, T time, I input, H hidden, G gate blocks): minGRU's blocks
``update, candidate`` (z, h~; G = 2), minLSTM's ``forget, input, candidate`` (f, i, h~;
G = 3), stacked in ``weight_ih`` (G*H, I) and ``bias_ih`` (G*H,). There is no ``weight_hh``
or ``bias_hh``: nothing multiplies h_{t-1} but the gates. State: h (B, H).

Initialisation: U(-1/sqrt(H), 1/sqrt(H)) for every parameter, as for lstmkit's other cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from lstmkit.cellmath.family import SingleStateFamily, StepResult, Weights

SCAN_CHUNK = 1024
"""The most steps :func:`parallel_scan` covers with one logcumsumexp (see "Precision")."""


# -- the candidate activation (Appendix B.3) -------------------------------------------------


def g(x: Tensor) -> Tensor:
    """x + 1/2 for x >= 0, sigmoid(x) below: positive, continuous, linear for x >= 0."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_g(x: Tensor) -> Tensor:
    """log g(x) without forming g(x). The clamp keeps the branch torch.where does not take
    finite, so that its zero gradient does not turn into 0 * inf = NaN."""
    return torch.where(x >= 0, torch.log(x.clamp(min=0) + 0.5), -F.softplus(-x))


# -- the recurrence's coefficients for all steps at once ------------------------------------


def mingru_log_coefficients(x_gates: Tensor) -> tuple[Tensor, Tensor]:
    """log a_t = log(1 - z_t) and log b_t = log(z_t h~_t) for minGRU, each (..., H), from
    ``x_gates`` (..., 2H), the stacked pre-activations (k_z, k_h)."""
    k_z, k_h = x_gates.chunk(2, dim=-1)  # (..., H) each
    log_a = -F.softplus(k_z)  # log(1 - sigmoid(k)) = log sigmoid(-k)
    log_b = -F.softplus(-k_z) + log_g(k_h)  # log sigmoid(k_z) + log g(k_h)
    return log_a, log_b


def minlstm_log_coefficients(x_gates: Tensor) -> tuple[Tensor, Tensor]:
    """log a_t = log f'_t and log b_t = log(i'_t h~_t) for minLSTM, each (..., H), from
    ``x_gates`` (..., 3H), the stacked pre-activations (k_f, k_i, k_h)."""
    k_f, k_i, k_h = x_gates.chunk(3, dim=-1)  # (..., H) each
    d = F.softplus(-k_f) - F.softplus(-k_i)  # log i - log f
    log_a = -F.softplus(d)  # log f/(f + i) = -log(1 + i/f)
    log_b = -F.softplus(-d) + log_g(k_h)  # log i/(f + i) + log h~
    return log_a, log_b


# -- the parallel scan (Heinsen 2023; the paper's Appendix B.1) ------------------------------


def parallel_scan_log(log_a: Tensor, log_b: Tensor, log_h0: Tensor | None = None) -> Tensor:
    """h_t = a_t h_{t-1} + b_t for every t, from the logs of positive a_t, b_t and h_0.

    log_a, log_b (T, B, H); log_h0 (B, H), or None for h_0 = 0. Returns h (T, B, H), in the
    dtype it is given. The paper's form: h_0, if any, must be positive. The layers use
    :func:`parallel_scan`, which takes h_0 of any sign and runs in float64.
    """
    a_star = log_a.cumsum(0)  # (T, B, H): log A_t
    if log_h0 is None:
        return _b_terms(a_star, log_b)
    terms = torch.cat([log_h0.unsqueeze(0), log_b - a_star])  # (T+1, B, H): h_0 is k = 0
    return torch.exp(a_star + torch.logcumsumexp(terms, 0)[1:])


def parallel_scan(log_a: Tensor, log_b: Tensor, h0: Tensor, chunk: int = SCAN_CHUNK) -> Tensor:
    """h_t = a_t h_{t-1} + b_t for every t, for an initial state h0 (B, H) of any sign.

    log_a, log_b (T, B, H), the logs of positive a_t and b_t. Returns h (T, B, H) in their
    dtype. Exact in h_0: the h_0 term A_t h_0 is a product, and only the positive b terms go
    through log space. Computed in float64, in pieces of ``chunk`` steps, each from the last
    state of the one before (module docstring, "Precision").
    """
    dtype = log_a.dtype
    log_a, log_b, h = log_a.double(), log_b.double(), h0.double()
    pieces = []
    for start in range(0, log_a.shape[0], chunk):
        a_star = log_a[start : start + chunk].cumsum(0)  # (C, B, H): log A_t within the piece
        piece = torch.exp(a_star) * h + _b_terms(a_star, log_b[start : start + chunk])
        pieces.append(piece)  # (C, B, H)
        h = piece[-1]  # (B, H): where the next piece starts
    return torch.cat(pieces).to(dtype)


def _b_terms(a_star: Tensor, log_b: Tensor) -> Tensor:
    """sum_{k<=t} (A_t / A_k) b_k for every t, from a_star = log A (T, B, H) and log b."""
    return torch.exp(a_star + torch.logcumsumexp(log_b - a_star, 0))


# -- the families --------------------------------------------------------------------------


@dataclass(frozen=True)
class MinRNNFamily(SingleStateFamily):
    """What minGRU and minLSTM share: only ``weight_ih`` and ``bias_ih``, one state h."""

    hidden_size: int

    def parameter_layout(self, input_size: int, bias: bool) -> dict[str, tuple]:
        rows = len(self.gates) * self.hidden_size
        layout: dict[str, tuple] = {"weight_ih": (rows, input_size)}
        if bias:
            layout["bias_ih"] = (rows,)
        return layout


@dataclass(frozen=True)
class MinGRUFamily(MinRNNFamily):
    """minGRU; see the module docstring for the equations."""

    name = "mingru"
    gates = ("update", "candidate")
    trace_names = ("update", "candidate", "hidden")

    def step(self, x_gates: Tensor, state: tuple[Tensor, ...], weights: Weights) -> StepResult:
        """One step. ``x_gates`` = x_t W_ih^T + b_ih, (B, 2H); ``weights`` is not read: no
        parameter acts on h_{t-1}."""
        (h_prev,) = state
        k_z, k_h = x_gates.chunk(2, dim=-1)
        z = torch.sigmoid(k_z)
        h_tilde = g(k_h)
        h = (1 - z) * h_prev + z * h_tilde
        return StepResult((h,), {"update": z, "candidate": h_tilde, "hidden": h})

    @staticmethod
    def log_coefficients(x_gates: Tensor) -> tuple[Tensor, Tensor]:
        return mingru_log_coefficients(x_gates)


@dataclass(frozen=True)
class MinLSTMFamily(MinRNNFamily):
    """minLSTM; see the module docstring for the equations. Its trace's ``forget`` and
    ``input`` are the normalised f'_t and i'_t, the coefficients that act on h."""

    name = "minlstm"
    gates = ("forget", "input", "candidate")
    trace_names = ("forget", "input", "candidate", "hidden")

    def step(self, x_gates: Tensor, state: tuple[Tensor, ...], weights: Weights) -> StepResult:
        """One step. ``x_gates`` = x_t W_ih^T + b_ih, (B, 3H); ``weights`` is not read."""
        (h_prev,) = state
        k_f, k_i, k_h = x_gates.chunk(3, dim=-1)
        f = torch.sigmoid(k_f)
        i = torch.sigmoid(k_i)
        h_tilde = g(k_h)
        f_norm = f / (f + i)  # Section 3.2.3: f' + i' = 1, so h keeps its scale over time
        i_norm = i / (f + i)
        h = f_norm * h_prev + i_norm * h_tilde
        return StepResult(
            (h,), {"forget": f_norm, "input": i_norm, "candidate": h_tilde, "hidden": h}
        )

    @staticmethod
    def log_coefficients(x_gates: Tensor) -> tuple[Tensor, Tensor]:
        return minlstm_log_coefficients(x_gates)


__all__ = [
    "SCAN_CHUNK",
    "MinGRUFamily",
    "MinLSTMFamily",
    "g",
    "log_g",
    "mingru_log_coefficients",
    "minlstm_log_coefficients",
    "parallel_scan",
    "parallel_scan_log",
]

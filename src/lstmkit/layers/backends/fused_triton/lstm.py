"""The LSTM family (every gate option, peepholes, the projection, the layer norms and full
gate recurrence) on the fused GPU backend: the autograd functions around fused_triton's
Triton kernels (``kernels.py``), laid out by :func:`~lstmkit.layers.backends.fused_triton.plan`.
The package's docstring describes the split of work and the layout.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from lstmkit.cellmath.lstm import LSTMFamily
from lstmkit.cellmath.lstm_options import LAYER_NORM_EPS
from lstmkit.layers.backends.fused import gate_inputs, lstm_gate_inputs, zeros_if_none
from lstmkit.layers.backends.fused_triton import (
    NORM_CHUNK,
    Plan,
    _absent,
    _check,
    _kernels,
    _mask_bytes,
    _next_power_of_two,
    _on_chip,
    _shifted,
    _time_loop,
    plan,
)


def run_lstm(family: LSTMFamily, x, state, weights, mask):
    _check(x)
    if family.layer_norm is not None or family.gate_recurrence:
        return _run_lstm_options(family, x, state, weights, mask)
    x_gates = gate_inputs(x, weights, fold_hidden_bias=True)
    h0, c0 = state
    output, h_n, c_n, acts, c_all, h_all = _LSTMFunction.apply(
        family, mask, x_gates, h0, c0, weights["weight_hh"], weights.get("weight_ci"),
        weights.get("weight_cf"), weights.get("weight_co"), weights.get("weight_hr"),
    )  # fmt: skip
    return output, (h_n, c_n), dict(acts=acts, cell=c_all, hidden=h_all)


def _lstm_flags(family: LSTMFamily, mask, project: bool) -> dict:
    """The kernels' constexpr switches: which parts of the cell exist (kernels.py)."""
    return dict(
        HAS_I=family.input_gate, HAS_F=family.has_forget_weights, COUPLED=family.coupled,
        HAS_O=family.output_gate, SQUASH_IN=family.input_activation,
        SQUASH_OUT=family.output_activation, PEEPHOLE=family.peephole,
        HAS_MASK=mask is not None, DOT=not project,
    )  # fmt: skip


class _LSTMFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, family, mask, x_gates, h0, c0, w_hh, p_i, p_f, p_o, w_hr):
        ctx.set_materialize_grads(False)  # no zero tensors for the trace outputs' gradients
        kernels = _kernels()
        xg = x_gates.contiguous()
        steps, batch, gh = xg.shape
        hidden, out_size = c0.shape[1], h0.shape[1]
        project = w_hr is not None
        layout = plan(batch, hidden, gh // hidden, w_hh.dtype, xg.device)
        acts = torch.empty_like(xg)
        c_all = xg.new_empty(steps, batch, hidden)
        h_all = xg.new_empty(steps, batch, out_size)
        output = xg.new_empty(steps, batch, out_size)
        m_all = xg.new_empty(steps, batch, hidden) if project else None
        w = w_hh.contiguous()
        w_chip = _on_chip(w)
        peep = [(p if p is not None else _absent(xg)).contiguous() for p in (p_i, p_f, p_o)]
        mask_u8 = _mask_bytes(mask, xg)
        flags = _lstm_flags(family, mask, project)
        h0, c0 = h0.contiguous(), c0.contiguous()

        def launch(t_begin, n_steps, sync_programs, sync, source=xg, h_slots=h_all):
            kernels.lstm_forward[layout.grid](
                source, w_chip, h0, c0, *peep, mask_u8, acts, c_all, h_slots, output, sync,
                t_begin, n_steps, batch, hidden, **flags, N_SPLIT=sync_programs,
                **layout.kernel_options,
            )  # fmt: skip

        if not project:
            _time_loop(launch, steps, layout, backward=False, device=xg.device)
        else:  # torch does the two products of a step; the kernel the gates between them
            sync = torch.zeros(1, dtype=torch.int32, device=xg.device)

            def step(t, h):
                torch.addmm(xg[t], h, w.t(), out=acts[t])  # pre-activations, in place
                launch(t, 1, 1, sync, source=acts, h_slots=m_all)

            _projected_forward(step, mask, h0, w_hr, m_all, h_all, output)

        ctx.family, ctx.mask, ctx.layout = family, mask, layout
        ctx.save_for_backward(acts, c_all, h_all, m_all, h0, c0, w, p_i, p_f, p_o, w_hr)
        ctx.mark_non_differentiable(acts, c_all, h_all)  # handed out for traces only
        return output, h_all[-1].clone(), c_all[-1].clone(), acts, c_all, h_all

    @staticmethod
    @once_differentiable
    def backward(ctx, d_output, d_h_n, d_c_n, *_):
        acts, c_all, h_all, m_all, h0, c0, w, p_i, p_f, p_o, w_hr = ctx.saved_tensors
        w_chip = _on_chip(w)
        kernels, layout, mask, family = _kernels(), ctx.layout, ctx.mask, ctx.family
        steps, batch, gh = acts.shape
        hidden = c0.shape[1]
        project = w_hr is not None
        d_output = zeros_if_none(d_output, h_all).contiguous()
        dz = torch.empty_like(acts)
        dc_buf = zeros_if_none(d_c_n, c0).float().contiguous()
        peep = [(p if p is not None else _absent(acts)).contiguous() for p in (p_i, p_f, p_o)]
        mask_u8 = _mask_bytes(mask, acts)
        flags = _lstm_flags(family, mask, project)

        def launch(t_begin, n_steps, sync_programs, sync, d_source, dh_buf):
            kernels.lstm_backward[layout.grid](
                d_source, acts, c_all, c0, w_chip, *peep, mask_u8, dz, dh_buf, dc_buf, sync,
                t_begin, n_steps, steps, batch, hidden, **flags, N_SPLIT=sync_programs,
                **layout.kernel_options,
            )  # fmt: skip

        d_w_hr = None
        if not project:
            dh_buf = zeros_if_none(d_h_n, h0).float().contiguous()
            _time_loop(
                lambda *a: launch(*a, d_source=d_output, dh_buf=dh_buf),
                steps, layout, backward=True, device=w.device,
            )  # fmt: skip
            back = (dz[0] @ w).float()
            dh0 = dh_buf + (back if mask is None else back * mask[0].unsqueeze(1))
        else:  # torch carries dh through W_hr and W_hh; the kernel the gates
            no_local = torch.zeros(batch, hidden, dtype=torch.float32, device=acts.device)
            sync = torch.zeros(1, dtype=torch.int32, device=acts.device)
            dh0, d_w_hr = _projected_backward(
                lambda t, dm_all: launch(t, 1, 1, sync, d_source=dm_all, dh_buf=no_local),
                mask, d_output, d_h_n, h0, w, w_hr, dz, m_all, h_all,
            )  # fmt: skip

        flat = dz.reshape(steps * batch, gh)
        d_w_hh = flat.t() @ _shifted(h0, h_all).reshape(steps * batch, -1)
        d_peep = _peephole_grads(family, dz, c0, c_all)
        dc0 = dc_buf.to(c0.dtype)
        return (None, None, dz, dh0.to(h0.dtype), dc0, d_w_hh, *d_peep, d_w_hr)


# -- LSTM options: layer norms and full gate recurrence -------------------------------------


def _run_lstm_options(family: LSTMFamily, x, state, weights, mask):
    """The LSTM with ``layer_norm`` and/or ``gate_recurrence`` (kernels.py's
    lstm_options_forward/backward): the input side as the C++ kernels take it
    (:func:`fused.lstm_gate_inputs`), the state (h, C) or with FGR (h, C, gates). With
    ``proj_size`` torch does each step's products with W_hh and W_hr between the launches
    (:func:`_projected_forward`), as for the plain projected LSTM."""
    x_gates, norm_gain, norm_shift = lstm_gate_inputs(family, x, weights)
    gates0 = state[2] if family.gate_recurrence else None
    output, h_n, c_n, gates_n, acts, c_all, h_all = _LSTMOptionsFunction.apply(
        family, mask, x_gates, state[0], state[1], gates0, weights["weight_hh"],
        weights.get("weight_ci"), weights.get("weight_cf"), weights.get("weight_co"), norm_gain,
        norm_shift, weights.get("ln_weight_c"), weights.get("ln_bias_c"), weights.get("weight_gg"),
        weights.get("weight_hr"),
    )  # fmt: skip
    final = (h_n, c_n, gates_n) if family.gate_recurrence else (h_n, c_n)
    return output, final, dict(acts=acts, cell=c_all, hidden=h_all)


@dataclass(frozen=True)
class _OptionsLayout:
    """The options kernels' switches and sizes beyond :class:`Plan`'s."""

    plan: Plan
    flags: dict  # the cell's constexpr switches
    block_kg: int  # FGR's reduction over the K*H previous gates, padded
    groups: int  # the product norm's statistics per row: 1 (Ba), G (per-gate)

    def kwargs(self, sync_programs: int, phase: dict) -> dict:
        # the norms read rows in chunks of at most NORM_CHUNK columns (kernels.py)
        chunk = min(NORM_CHUNK, self.plan.block_kc)
        return dict(**self.flags, **phase, **self.plan.kernel_options, BLOCK_KG=self.block_kg,
                    BLOCK_N=chunk, N_SPLIT=sync_programs)  # fmt: skip


def _options_layout(family: LSTMFamily, mask, batch: int, dtype, device) -> _OptionsLayout:
    hidden, blocks = family.hidden_size, len(family.gates)
    gate_rows = len(family.sigmoid_gates) * hidden
    block_k = max(16, _next_power_of_two(hidden))
    block_kg = max(16, _next_power_of_two(gate_rows))
    # W_gg's rows for a program's units of each gate sit on chip beside W_hh's: in plan()'s
    # count of (block_k x block_h) weight tiles, K of block_kg / block_k each
    tiles = blocks + (len(family.sigmoid_gates) * block_kg // block_k if family.gate_recurrence
                      else 0)  # fmt: skip
    # and FGR's product takes the previous gates of every unit, wider than h
    widest = block_kg if family.gate_recurrence else block_k
    layout = plan(batch, hidden, tiles, dtype, device, operand_columns=widest)
    project = bool(family.proj_size)
    if project and layout.hidden_blocks > 1:
        # torch's products between the steps make every launch one step; with the units
        # split, each phase of a step is then a launch of its own (the boundary its barrier)
        layout = dataclasses.replace(layout, persistent=False)
    flags = _lstm_flags(family, mask, project)
    flags.update(
        NORM_PRODUCT=family.layer_norm == "ba2016", NORM_GATES=family.layer_norm == "per-gate",
        NORM_SHOWN=family.layer_norm in ("ba2016", "cell"),
        NORM_CARRIED=family.layer_norm == "per-gate", FGR=family.gate_recurrence,
    )  # fmt: skip
    groups = blocks if family.layer_norm == "per-gate" else 1
    return _OptionsLayout(layout, flags, block_kg, groups)


def _step_phases(layout: Plan, phases: dict[str, bool]) -> list[dict]:
    """The phase switches, one dict per launch of a step: every phase present (``phases``:
    name -> present) in one persistent launch, else one launch each, in order."""
    present = [name for name, here in phases.items() if here]
    if layout.persistent:
        return [{name: name in present for name in phases}]
    return [{name: name == one for name in phases} for one in present]


class _LSTMOptionsFunction(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx, family, mask, x_gates, h0, c0, gates0, w_hh, p_i, p_f, p_o, norm_gain, norm_shift,
        cell_gain, cell_shift, w_gg, w_hr,
    ):  # fmt: skip
        ctx.set_materialize_grads(False)  # no zero tensors for the trace outputs' gradients
        kernels = _kernels()
        xg = x_gates.contiguous()
        steps, batch, gh = xg.shape
        hidden = c0.shape[1]
        gate_rows = len(family.sigmoid_gates) * hidden
        norm_in = family.layer_norm in ("ba2016", "per-gate")
        norm_cell = family.layer_norm is not None
        fgr = family.gate_recurrence
        project = w_hr is not None
        layout = _options_layout(family, mask, batch, w_hh.dtype, xg.device)
        scratch = dict(dtype=torch.float32, device=xg.device)
        absent = _absent(xg)
        acts = torch.empty_like(xg)
        c_all = xg.new_empty(steps, batch, hidden)
        h_all = xg.new_empty(steps, batch, h0.shape[1])  # (T, B, R)
        output = torch.empty_like(h_all)
        m_all = xg.new_empty(steps, batch, hidden) if project else None  # o tanh(...), (T, B, H)
        g_all = xg.new_empty(steps, batch, gate_rows) if fgr else absent
        nx = torch.empty_like(xg) if norm_in else absent
        nr = torch.empty(steps, batch, layout.groups, **scratch) if norm_in else absent
        cx = xg.new_empty(steps, batch, hidden) if norm_cell else absent
        cr = torch.empty(steps, batch, **scratch) if norm_cell else absent
        rec = torch.empty(batch, gh, **scratch) if norm_in or project else absent
        cell = torch.empty(batch, 2 * hidden, **scratch) if norm_cell else absent
        w_chip = absent if project else _on_chip(w_hh)  # W_hh (G*H, P) stays with torch
        w_gg_chip = _on_chip(w_gg) if fgr else absent
        given = lambda p: absent if p is None else p.contiguous()  # noqa: E731
        h0, c0, g0 = h0.contiguous(), c0.contiguous(), given(gates0)
        # with a projection torch fills rec with the product, so no PRODUCT phase
        phases = _step_phases(layout.plan, dict(PRODUCT=norm_in and not project, GATES=True,
                                                CELL=norm_cell))  # fmt: skip
        h_slots = h_all if m_all is None else m_all  # the kernels' h_t, or m_t for W_hr

        def launch(t_begin, n_steps, sync_programs, sync):
            for phase in phases:
                kernels.lstm_options_forward[layout.plan.grid](
                    xg, w_chip, w_gg_chip, h0, c0, g0, given(p_i), given(p_f), given(p_o),
                    given(norm_gain), given(norm_shift), given(cell_gain), given(cell_shift),
                    _mask_bytes(mask, xg), acts, c_all, h_slots, output, g_all, nx, nr, cx, cr,
                    rec, cell, sync, t_begin, n_steps, batch, hidden, LAYER_NORM_EPS,
                    **layout.kwargs(sync_programs, phase),
                )  # fmt: skip

        if project:
            sync = torch.zeros(layout.plan.batch_blocks, dtype=torch.int32, device=xg.device)
            w_hh_t = w_hh.t()

            def step(t, h):
                # what the kernels' PRODUCT phase would leave: Ba's norm sees the product
                # alone; the per-gate norm, and the gates where no norm comes first, see
                # x_t W_ih^T (+ b) with it
                if family.layer_norm == "ba2016":
                    rec.copy_(h @ w_hh_t)
                else:
                    rec.copy_(torch.addmm(xg[t], h, w_hh_t))
                launch(t, 1, 1, sync)

            _projected_forward(step, mask, h0, w_hr, m_all, h_all, output)
        else:
            _time_loop(launch, steps, layout.plan, backward=False, device=xg.device)
        ctx.family, ctx.mask, ctx.layout = family, mask, layout
        ctx.save_for_backward(acts, c_all, h_all, g_all, nx, nr, cx, cr, h0, c0, g0, w_hh, p_i,
                              p_f, p_o, norm_gain, cell_gain, cell_shift, w_gg, m_all,
                              w_hr)  # fmt: skip
        ctx.mark_non_differentiable(acts, c_all, h_all)  # handed out for traces only
        gates_n = g_all[-1].clone() if fgr else None
        return output, h_all[-1].clone(), c_all[-1].clone(), gates_n, acts, c_all, h_all

    @staticmethod
    @once_differentiable
    def backward(ctx, d_output, d_h_n, d_c_n, d_gates_n, *_):
        (acts, c_all, h_all, g_all, nx, nr, cx, cr, h0, c0, g0, w_hh, p_i, p_f, p_o, norm_gain,
         cell_gain, cell_shift, w_gg, m_all, w_hr) = ctx.saved_tensors  # fmt: skip
        kernels, family, mask, layout = _kernels(), ctx.family, ctx.mask, ctx.layout
        steps, batch, gh = acts.shape
        hidden = c0.shape[1]
        gate_rows = len(family.sigmoid_gates) * hidden
        norm_in = family.layer_norm in ("ba2016", "per-gate")
        norm_cell = family.layer_norm is not None
        fgr = family.gate_recurrence
        project = w_hr is not None
        absent = _absent(acts)
        given = lambda p: absent if p is None else p.contiguous()  # noqa: E731
        d_output = zeros_if_none(d_output, h_all).contiguous()
        dz = torch.empty_like(acts)
        drec = torch.empty_like(acts) if norm_in else dz
        dzg = acts.new_empty(steps, batch, gate_rows) if fgr else absent
        dcn = acts.new_empty(steps, batch, hidden) if norm_cell else absent
        cell = absent
        if norm_cell:
            cell = torch.empty(batch, 2 * hidden, dtype=torch.float32, device=acts.device)
        # with a projection torch carries dL/dh (_projected_backward)
        dh_buf = absent if project else zeros_if_none(d_h_n, h0).float().contiguous()
        dc_buf = zeros_if_none(d_c_n, c0).float().contiguous()
        dg_buf = absent
        if fgr:
            dg_buf = zeros_if_none(d_gates_n, g0).float().contiguous()
        w_chip = absent if project else _on_chip(w_hh)
        w_gg_chip = _on_chip(w_gg) if fgr else absent
        phases = _step_phases(layout.plan, dict(OUT=True, CELL=norm_cell, NORM=norm_in))

        def launch(t_begin, n_steps, sync_programs, sync, d_source=d_output):
            for phase in phases:
                kernels.lstm_options_backward[layout.plan.grid](
                    d_source, acts, c_all, c0, w_chip, w_gg_chip, given(p_i), given(p_f),
                    given(p_o), given(norm_gain), given(cell_gain), given(cell_shift), nx, nr, cx,
                    cr, _mask_bytes(mask, acts), dz, drec, dzg, dcn, cell, dh_buf, dc_buf,
                    dg_buf, sync, t_begin, n_steps, steps, batch, hidden,
                    **layout.kwargs(sync_programs, phase),
                )  # fmt: skip

        d_w_hr = None
        if project:
            sync = torch.zeros(layout.plan.batch_blocks, dtype=torch.int32, device=acts.device)
            dh0, d_w_hr = _projected_backward(
                lambda t, dm_all: launch(t, 1, 1, sync, d_source=dm_all),
                mask, d_output, d_h_n, h0, w_hh, w_hr, drec, m_all, h_all,
            )  # fmt: skip
        else:
            _time_loop(launch, steps, layout.plan, backward=True, device=acts.device)
            # what step 0's gates send back to the initial state (an ended row's dz is 0)
            dh0 = dh_buf + (drec[0] @ w_hh).float()
        flat = drec.reshape(steps * batch, gh)
        d_w_hh = flat.t() @ _shifted(h0, h_all).reshape(steps * batch, -1)
        d_peep = _peephole_grads(family, dz, c0, c_all)
        # the norms' gains and shifts and W_gg: sums and products over all steps
        wide = lambda t: t.float()  # noqa: E731
        total = lambda t: t.sum((0, 1)).to(acts.dtype)  # noqa: E731
        d_norm_gain = d_norm_shift = d_cell_gain = d_cell_shift = d_w_gg = d_gates0 = None
        if norm_in:
            d_norm_gain, d_norm_shift = total(wide(dz) * wide(nx)), total(wide(dz))
        if norm_cell:
            d_cell_gain, d_cell_shift = total(wide(dcn) * wide(cx)), total(wide(dcn))
        if fgr:
            d_w_gg = dzg.reshape(-1, gate_rows).t() @ _shifted(g0, g_all).reshape(-1, gate_rows)
            d_gates0 = (dg_buf + (dzg[0] @ w_gg).float()).to(g0.dtype)
        # the per-gate norm acts on x_gates + the product: x_gates' gradient is the product's
        d_x_gates = drec if family.layer_norm == "per-gate" else dz
        return (None, None, d_x_gates, dh0.to(h0.dtype), dc_buf.to(c0.dtype), d_gates0, d_w_hh,
                *d_peep, d_norm_gain, d_norm_shift, d_cell_gain, d_cell_shift, d_w_gg,
                d_w_hr)  # fmt: skip


def _projected_forward(step, mask, h0, w_hr, m_all, h_all, output) -> None:
    """The projected LSTM's steps (Sak et al. 2014): ``step(t, h_prev)`` has torch do the
    step's recurrent product and the kernels the rest of the step, which leaves m_t (before
    the projection) in ``m_all[t]``; here torch projects h_t = m_t W_hr^T, and an ended row
    keeps its h and outputs 0."""
    h, w_hr_t = h0, w_hr.t()
    for t in range(m_all.shape[0]):
        step(t, h)
        h_new = m_all[t] @ w_hr_t  # (B, P)
        if mask is None:
            h = h_new
            output[t] = h_new
        else:
            live = mask[t].unsqueeze(1)
            h = torch.where(live, h_new, h)
            output[t] = h_new * live
        h_all[t] = h


def _projected_backward(step, mask, d_output, d_h_n, h0, w_hh, w_hr, d_product, m_all,
                        h_all) -> tuple[Tensor, Tensor]:  # fmt: skip
    """_projected_forward's steps backwards: torch carries dL/dh_t through W_hr into dL/dm_t
    (``dm_all[t]``), ``step(t, dm_all)`` runs the kernels' backward of step t from it, which
    leaves in ``d_product[t]`` the gradient of the step's recurrent product, and torch
    carries that through W_hh to h_{t-1}. Returns dL/dh_0 and W_hr's gradient."""
    dh = zeros_if_none(d_h_n, h0)  # dL/dh_t from the steps after t and the final state
    dm_all = torch.empty_like(m_all)
    dh_all = torch.empty_like(h_all)  # dL/dh_t where it reached W_hr
    for t in reversed(range(h_all.shape[0])):
        dh_t = d_output[t] + dh
        live = None if mask is None else mask[t].unsqueeze(1)
        dh_all[t] = dh_t if live is None else dh_t * live  # an ended row's h passed by
        torch.mm(dh_all[t], w_hr, out=dm_all[t])
        step(t, dm_all)
        dh_prev = d_product[t] @ w_hh  # an ended row's is 0
        dh = dh_prev if live is None else torch.where(live, dh_prev, dh)
    d_w_hr = dh_all.reshape(-1, dh_all.shape[2]).t() @ m_all.reshape(-1, m_all.shape[2])
    return dh, d_w_hr


def _peephole_grads(family: LSTMFamily, dz: Tensor, c0: Tensor, c_all: Tensor) -> list:
    """The peephole weights' gradients (p_i, p_f, p_o), each gate's dz times the state it
    looked at, summed over steps and rows (None where the cell has no peephole of that gate:
    each gate with a block has one, family.extra_parameters)."""
    grads = [None, None, None]
    if family.peephole:
        by_gate = dict(zip(family.gates, dz.chunk(len(family.gates), -1), strict=True))
        c_prev = _shifted(c0, c_all)
        seen = {"input": c_prev, "forget": c_prev, "output": c_all}  # C_{t-1}; o sees C_t
        for k, gate in enumerate(("input", "forget", "output")):
            if gate in family.sigmoid_gates:
                grads[k] = (by_gate[gate] * seen[gate]).sum((0, 1))
    return grads

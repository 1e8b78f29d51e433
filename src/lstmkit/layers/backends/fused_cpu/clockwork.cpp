// lstmkit's fused CPU kernels for the Clockwork RNN (Koutnik et al. 2014, "A Clockwork RNN",
// Sec. 3): the time loop and its backward pass in C++ over ATen.
//
// Legend: T time, B batch, H hidden, g modules of k = H / g units each, module i (0-based)
// with clock period periods[i]; units i*k .. (i+1)*k - 1 are module i.
//
// The caller (clockwork.py) hands in
// - x_gates (T, B, H): x_t W_I^T + b_ih + b_hh for every step (both biases folded: b_hh
//   enters every active step the same way);
// - w_hh (H, H): W_H already multiplied by the block-upper-triangular mask (row block i,
//   column block j nonzero only for j >= i), so that autograd gives the masked entries
//   exactly zero gradient; the kernels never read below the diagonal blocks;
// - phases (T, B) int64: t mod L of row b at step t, L = lcm(periods), counted from the
//   row's own clock and stopped where its sequence has ended (clockwork.py's _phases).
//
// Module i of row b runs at step t when phases[t, b] mod periods[i] == 0 (Sec. 3: t mod
// T_i = 0); its units then take tanh of their pre-activation, the others keep h_{t-1}.
//
// What the paper saves, this saves too: at step t only the active modules' rows of
// W_H h_{t-1} are computed, each only over the columns of modules at least as slow (the
// others' entries are masked to 0). The small batch (B <= kSmallBatch) does this per row
// with common.h's vec_mat over packed panels, one per module: rows of different clocks each
// skip their own inactive modules. bfloat16 takes it too, in float32: the panels widened
// once per call, a row's h_{t-1} and pre-activations (dL/dz and dL/dh_{t-1} backward)
// widened per step, so that h_t and dL/dh_{t-1} are rounded once, not after the product as
// well. Larger batches go to ATen's GEMM over the contiguous range of modules active in any
// live row (all rows share the clock in the common case; where they do not, the range
// covers every row's modules, and an inactive unit's pre-activation is simply not used).
// The backward skips the same way: an inactive unit's pre-activation gradient is 0, so
// only active modules' rows of W_H enter dL/dh_{t-1}, and an inactive unit passes its
// dL/dh_t straight to h_{t-1}.
//
// Masks: mask[t, b] false means sequence b has ended: its state passes through, its output
// is 0, its pre-activation gradients are 0 and dL/dh passes through, as the reference's
// torch.where does.

#include "common.h"

namespace {

// Which modules of each row run at step t; `any[i]` whether module i runs in some live row.
struct StepSchedule {
  std::vector<uint8_t> active;  // (B, g)
  int64_t lo = 0, hi = 0;       // modules [lo, hi) cover every live row's active modules
  void compute(const int64_t* phase, const bool* keep, const std::vector<int64_t>& periods,
               int64_t B) {
    const int64_t g = static_cast<int64_t>(periods.size());
    active.assign(static_cast<size_t>(B * g), 0);
    lo = g;
    hi = 0;
    for (int64_t b = 0; b < B; ++b) {
      if (keep != nullptr && !keep[b]) continue;  // an ended row runs nothing
      for (int64_t i = 0; i < g; ++i) {
        if (phase[b] % periods[i] != 0) continue;
        active[b * g + i] = 1;
        lo = std::min(lo, i);
        hi = std::max(hi, i + 1);
      }
    }
  }
  bool runs(int64_t b, int64_t i, int64_t g) const { return active[b * g + i] != 0; }
};

// The per-module panels of the masked W_H that vec_mat reads, packed once per call.
// forward[i] = W_H^T[i k :, i k : (i+1) k], (H - i k, k): module i's rows of the product,
//              over the columns of modules i..g-1;
// backward[i] = W_H[i k : (i+1) k, i k :], (k, H - i k): what module i's pre-activation
//              gradients send to h_{t-1}, which reaches modules i..g-1 only.
std::vector<Tensor> forward_panels(const Tensor& w_hh, int64_t g, int64_t k) {
  std::vector<Tensor> panels;
  const Tensor w_t = w_hh.t();
  const int64_t H = w_hh.size(0);
  for (int64_t i = 0; i < g; ++i)
    panels.push_back(w_t.narrow(0, i * k, H - i * k).narrow(1, i * k, k).contiguous());
  return panels;
}

std::vector<Tensor> backward_panels(const Tensor& w_hh, int64_t g, int64_t k) {
  std::vector<Tensor> panels;
  const int64_t H = w_hh.size(0);
  for (int64_t i = 0; i < g; ++i)
    panels.push_back(w_hh.narrow(0, i * k, k).narrow(1, i * k, H - i * k).contiguous());
  return panels;
}

bool small_path(int64_t B) { return B <= kSmallBatch; }

// A row of n values in the accumulation type: `p` itself where it already is, else widened
// into `buffer`.
template <typename acc, typename scalar_t>
const acc* row_in_acc(const scalar_t* p, int64_t n, acc* buffer) {
  if constexpr (std::is_same_v<scalar_t, acc>) {
    return p;
  } else {
    convert_row<acc>(p, buffer, n);
    return buffer;
  }
}

// -- forward --------------------------------------------------------------------------------

template <typename scalar_t>
void forward_loop(const Tensor& x_gates, const Tensor& h0, const Tensor& w_hh,
                  const Tensor& phases, const std::vector<int64_t>& periods,
                  const c10::optional<Tensor>& mask, Tensor& h_all, Tensor& output) {
  using acc = at::opmath_type<scalar_t>;
  const int64_t T = x_gates.size(0), B = x_gates.size(1), H = h0.size(1);
  const int64_t g = static_cast<int64_t>(periods.size()), k = H / g;
  const bool small = small_path(B);
  const std::vector<Tensor> panels =
      small ? forward_panels(in_accumulation_type(w_hh), g, k) : std::vector<Tensor>();
  const Tensor w_t = w_hh.t();
  const scalar_t* xg = x_gates.data_ptr<scalar_t>();
  const int64_t* ph = phases.data_ptr<int64_t>();
  scalar_t* h_all_p = h_all.data_ptr<scalar_t>();
  scalar_t* out_p = output.data_ptr<scalar_t>();
  auto pre_store = at::empty({B * H}, x_gates.options());  // the GEMM path's products
  StepSchedule plan;
  RowBuffer<acc> small_u(k), small_h(H);
  const scalar_t* h_prev = h0.data_ptr<scalar_t>();
  for (int64_t t = 0; t < T; ++t) {
    const bool* keep = mask_row(mask, t);
    plan.compute(ph + t * B, keep, periods, B);
    scalar_t* h_new = h_all_p + t * B * H;
    const scalar_t* xt = xg + t * B * H;
    const int64_t lo = plan.lo, span = std::max<int64_t>(plan.hi - plan.lo, 0) * k;
    Tensor pre = pre_store.narrow(0, 0, B * span).view({B, span});  // (B, span) contiguous
    if (!small && span > 0) {  // rows of modules lo..hi-1, columns of modules lo..g-1
      const Tensor h_prev_t = t > 0 ? h_all[t - 1] : h0;
      at::addmm_out(pre, x_gates[t].narrow(1, lo * k, span),
                    h_prev_t.narrow(1, lo * k, H - lo * k),
                    w_t.narrow(0, lo * k, H - lo * k).narrow(1, lo * k, span));
    }
    const scalar_t* pre_p = pre_store.data_ptr<scalar_t>();
    // one row's step: copy h_{t-1}, then overwrite the active modules' units. `u` holds a
    // module's pre-activations in the accumulation type (k), `h_acc` the small path's
    // h_{t-1} in it (H), where scalar_t is not that type.
    auto row = [&](int64_t b, acc* u, acc* h_acc) {
      const scalar_t* hp = h_prev + b * H;
      scalar_t* hn = h_new + b * H;
      scalar_t* out = out_p + (t * B + b) * H;
      std::copy(hp, hp + H, hn);  // inactive units keep h_{t-1}
      if (keep != nullptr && !keep[b]) {
        std::fill(out, out + H, scalar_t(0));
        return;
      }
      const acc* h_in = small ? row_in_acc<acc>(hp, H, h_acc) : nullptr;
      for (int64_t i = 0; i < g; ++i) {
        if (!plan.runs(b, i, g)) continue;
        scalar_t* z = hn + i * k;  // module i's units
        acc* za = u;               // ... their pre-activations
        if constexpr (std::is_same_v<scalar_t, acc>) za = z;
        if (small) {  // Sec. 3: only module i's rows, over modules i..g-1's columns
          const acc* x_part = row_in_acc<acc>(xt + b * H + i * k, k, za);
          vec_mat(h_in + i * k, panels[i].data_ptr<acc>(), x_part, 0, za, 1, H - i * k, k);
        } else {
          convert_row<acc>(pre_p + b * span + (i - lo) * k, za, k);
        }
        tanh_(za, k);
        if constexpr (!std::is_same_v<scalar_t, acc>) convert_row<acc>(za, z, k);
      }
      std::copy(hn, hn + H, out);
    };
    if (small) {  // a few rows: on this thread, no start-up of a parallel region
      for (int64_t b = 0; b < B; ++b) row(b, small_u.get(), small_h.get());
    } else {
      at::parallel_for(0, B, std::max<int64_t>(1, 32768 / (4 * H)), [&](int64_t lo_b, int64_t hi_b) {
        RowBuffer<acc> buf(k);
        for (int64_t b = lo_b; b < hi_b; ++b) row(b, buf.get(), nullptr);
      });
    }
    h_prev = h_new;
  }
}

// Returns output (T, B, H), h_n (B, H) and h_all (T, B, H), the state after every step.
std::vector<Tensor> clockwork_forward(const Tensor& x_gates_in, const Tensor& h0_in,
                                      const Tensor& w_hh_in, const Tensor& phases_in,
                                      std::vector<int64_t> periods,
                                      const c10::optional<Tensor>& mask) {
  const Tensor x_gates = x_gates_in.contiguous(), h0 = h0_in.contiguous();
  const Tensor w_hh = w_hh_in.contiguous(), phases = phases_in.contiguous();
  const int64_t T = x_gates.size(0), B = x_gates.size(1), H = h0.size(1);
  const int64_t g = static_cast<int64_t>(periods.size());
  TORCH_CHECK(g > 0 && H % g == 0, "clockwork_forward: ", g, " modules must divide H = ", H);
  TORCH_CHECK(x_gates.size(2) == H && w_hh.size(0) == H && w_hh.size(1) == H,
              "clockwork_forward: x_gates (T, B, H) and w_hh (H, H) expected");
  TORCH_CHECK(phases.scalar_type() == at::kLong && phases.size(0) == T && phases.size(1) == B,
              "clockwork_forward: phases must be int64 (T, B)");
  auto h_all = at::empty({T, B, H}, x_gates.options());
  auto output = at::empty({T, B, H}, x_gates.options());
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x_gates.scalar_type(), "clockwork_forward", [&] {
    forward_loop<scalar_t>(x_gates, h0, w_hh, phases, periods, mask, h_all, output);
  });
  return {output, h_all[T - 1].clone(), h_all};
}

// -- backward -------------------------------------------------------------------------------

template <typename scalar_t>
void backward_loop(const Tensor& d_output, const Tensor& h_all, const Tensor& w_hh,
                   const Tensor& phases, const std::vector<int64_t>& periods,
                   const c10::optional<Tensor>& mask, Tensor& dh, Tensor& dpre_all) {
  using acc = at::opmath_type<scalar_t>;
  const int64_t T = h_all.size(0), B = h_all.size(1), H = h_all.size(2);
  const int64_t g = static_cast<int64_t>(periods.size()), k = H / g;
  const bool small = small_path(B);
  const std::vector<Tensor> panels =
      small ? backward_panels(in_accumulation_type(w_hh), g, k) : std::vector<Tensor>();
  RowBuffer<acc> small_dz(H), small_dh(H);  // the small path's rows where scalar_t is not acc
  const int64_t* ph = phases.data_ptr<int64_t>();
  const scalar_t* h_p = h_all.data_ptr<scalar_t>();
  const scalar_t* dout_p = d_output.data_ptr<scalar_t>();
  scalar_t* dpre_p = dpre_all.data_ptr<scalar_t>();
  auto back = at::empty({B * H}, h_all.options());  // the GEMM path's dpre_t W_H
  auto dh_prev = at::empty({B, H}, h_all.options());
  StepSchedule plan;
  for (int64_t t = T - 1; t >= 0; --t) {
    const bool* keep = mask_row(mask, t);
    plan.compute(ph + t * B, keep, periods, B);
    const int64_t lo = plan.lo, span = std::max<int64_t>(plan.hi - plan.lo, 0) * k;
    const scalar_t* ht = h_p + t * B * H;
    const scalar_t* dot = dout_p + t * B * H;
    scalar_t* dpre = dpre_p + t * B * H;
    const scalar_t* carry = dh.data_ptr<scalar_t>();
    scalar_t* dprev = dh_prev.data_ptr<scalar_t>();
    // dL/dz of the active units (tanh' = 1 - h_t^2), 0 elsewhere; dL/dh_{t-1} of the
    // inactive units, which kept h_{t-1}: their dL/dh_t itself
    for_rows(B, 4 * H, [&](int64_t b) {
      const scalar_t* c = carry + b * H;
      scalar_t* dz = dpre + b * H;
      scalar_t* dp = dprev + b * H;
      if (keep != nullptr && !keep[b]) {  // ended: the gradient passes by
        std::fill(dz, dz + H, scalar_t(0));
        std::copy(c, c + H, dp);
        return;
      }
      const scalar_t* h = ht + b * H;
      const scalar_t* d = dot + b * H;
      for (int64_t j0 = 0, i = 0; i < g; ++i, j0 += k) {
        if (plan.runs(b, i, g)) {
          for_lanes<acc>(k, [&](int64_t j, auto L) {
            const auto dh_t = L.load(d + j0 + j) + L.load(c + j0 + j), hj = L.load(h + j0 + j);
            L.store(dz + j0 + j, dh_t * (L.splat(1) - hj * hj));
          });
          std::fill(dp + j0, dp + j0 + k, scalar_t(0));
        } else {
          std::fill(dz + j0, dz + j0 + k, scalar_t(0));
          add_row<acc>(d + j0, c + j0, dp + j0, k);
        }
      }
    });
    if (small) {  // each row adds its active modules' dz W_H, columns i k onwards
      for (int64_t b = 0; b < B; ++b) {
        const acc* dz = row_in_acc<acc>(dpre + b * H, H, small_dz.get());
        acc* dp = small_dh.get();  // dL/dh_{t-1}, in place
        if constexpr (std::is_same_v<scalar_t, acc>) {
          dp = dprev + b * H;
        } else {
          convert_row<acc>(dprev + b * H, dp, H);
        }
        for (int64_t i = 0; i < g; ++i) {
          if (!plan.runs(b, i, g)) continue;
          vec_mat(dz + i * k, panels[i].data_ptr<acc>(), dp + i * k, 0, dp + i * k, 1, k,
                  H - i * k);
        }
        if constexpr (!std::is_same_v<scalar_t, acc>) convert_row<acc>(dp, dprev + b * H, H);
      }
    } else if (span > 0) {  // rows of modules lo..hi-1 reach columns lo k onwards
      const int64_t width = H - lo * k;
      Tensor part = back.narrow(0, 0, B * width).view({B, width});  // (B, width) contiguous
      at::mm_out(part, dpre_all[t].narrow(1, lo * k, span),
                 w_hh.narrow(0, lo * k, span).narrow(1, lo * k, width));
      const scalar_t* bp = back.data_ptr<scalar_t>();
      for_rows(B, 2 * H, [&](int64_t b) {
        if (keep != nullptr && !keep[b]) return;  // its dz is 0: nothing to add
        scalar_t* dp = dprev + b * H + lo * k;
        add_row<acc>(dp, bp + b * width, dp, width);
      });
    }
    std::swap(dh, dh_prev);
  }
}

// Returns dL/d x_gates (T, B, H) (the pre-activations' gradient), dh0, and d_w_hh (H, H) as
// one product over all steps (the caller's mask product zeroes the masked entries).
std::vector<Tensor> clockwork_backward(const Tensor& d_output_in, const Tensor& d_h_n,
                                       const Tensor& h_all_in, const Tensor& h0_in,
                                       const Tensor& w_hh_in, const Tensor& phases_in,
                                       std::vector<int64_t> periods,
                                       const c10::optional<Tensor>& mask) {
  const Tensor d_output = d_output_in.contiguous(), h_all = h_all_in.contiguous();
  const Tensor h0 = h0_in.contiguous(), w_hh = w_hh_in.contiguous();
  const Tensor phases = phases_in.contiguous();
  const int64_t T = h_all.size(0), B = h_all.size(1), H = h_all.size(2);
  auto dpre_all = at::empty({T, B, H}, h_all.options());
  Tensor dh = d_h_n.contiguous().clone();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, h_all.scalar_type(), "clockwork_backward", [&] {
    backward_loop<scalar_t>(d_output, h_all, w_hh, phases, periods, mask, dh, dpre_all);
  });
  const Tensor h_prev_all = at::cat({h0.unsqueeze(0), h_all.narrow(0, 0, T - 1)}, 0);
  Tensor d_w_hh = at::mm(dpre_all.view({T * B, H}).t(), h_prev_all.reshape({T * B, H}));
  return {dpre_all, dh, d_w_hh};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lstmkit_fused, m) {
  m.def(
      "clockwork_forward(Tensor x_gates, Tensor h0, Tensor w_hh, Tensor phases, int[] periods, "
      "Tensor? mask) -> Tensor[]",
      &clockwork_forward);
  m.def(
      "clockwork_backward(Tensor d_output, Tensor d_h_n, Tensor h_all, Tensor h0, Tensor w_hh, "
      "Tensor phases, int[] periods, Tensor? mask) -> Tensor[]",
      &clockwork_backward);
}

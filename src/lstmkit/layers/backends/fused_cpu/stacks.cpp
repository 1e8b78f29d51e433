// lstmkit's fused CPU kernels for the two stacks whose layers are joined through their
// memory at the same time step: one layer of the depth-gated LSTM (Yao et al. 2015, Sec. 3;
// lstmkit/cellmath/depth_gated.py) and one layer of the 2-D Grid LSTM (Kalchbrenner et al.
// 2015, Sec. 3.1; lstmkit/cellmath/grid_lstm.py), each with its backward pass.
//
// Legend: T time, B batch, H hidden, G gate blocks of H rows in a step's pre-activations
// (depth-gated: 4 for layer 0, 5 = i, f, g, o, d above it; grid: 4 for the time transform,
// 8 with the depth transform's blocks after them).
//
// Layer L+1 reads layer L's values at the same step only, so a layer still runs as one time
// loop once the layer below has run over the whole sequence: what it takes from below (the
// depth-gated layer's lower cell c_t^L, the grid block's depth memory mu_t^{L}) is one more
// (T, B, H) input. The caller does every input-side product for all steps in one GEMM
// (x W_ih^T + biases, with the depth gate's x W_xd^T + b_d or the depth transform's rows
// stacked after the LSTM's), so each step here is one recurrent product and one pass over
// the gate arithmetic. Every loop runs forward in time.
//
// Masks: mask[t, b] false means sequence b has ended: the recurrent state (h, c / h, m)
// passes through unchanged and its gradient passes back unchanged. What goes up at such a
// step (the cell c, held, for the depth-gated layer; the grid's depth pair, computed as the
// reference loop computes it) stays an honest function of the inputs; the layers zero the
// final output there.
//
// Elementwise math runs in at::opmath_type (float for bfloat16) on per-row buffers; exp and
// tanh through at::vec as in kernels.cpp; the products as common.h's step_operand prepares
// them: vec_mat for small batches, oneDNN's packed weights for large float32 and
// bfloat16 ones, ATen's GEMM otherwise.

#include "common.h"

namespace {

// out (B, N) = in (B, K, rows `in_stride` apart) @ m (K, N), m prepared by step_operand:
// vec_mat on raw pointers for a small batch, oneDNN's packed product for a large float32 or
// bfloat16 one (which takes its rows contiguous), else ATen's GEMM on views of the memory.
template <typename scalar_t>
void step_product(const scalar_t* in, int64_t in_stride, int64_t K, const Tensor& m_view,
                  const StepOperand& op, scalar_t* out, int64_t B, int64_t N,
                  const at::TensorOptions& options) {
  if (op.small.defined()) {
    const auto* m = op.small.data_ptr<at::opmath_type<scalar_t>>();
    vec_mat<scalar_t>(in, in_stride, m, nullptr, 0, out, N, B, K, N);
    return;
  }
  Tensor o = at::from_blob(out, {B, N}, options);
  const Tensor rows = at::from_blob(const_cast<scalar_t*>(in), {B, K}, {in_stride, 1}, options);
  add_product(o, Tensor(), op.packed.defined() ? rows.contiguous() : rows, m_view, op);
}

template <typename scalar_t>
const scalar_t* optional_ptr(const Tensor& t) {
  return t.defined() && t.numel() > 0 ? t.data_ptr<scalar_t>() : nullptr;
}

// ------------------------------------------------------------------------------------
// Depth-gated LSTM (Yao et al. 2015, Sec. 3)
// ------------------------------------------------------------------------------------
//
// z = x_gates[t] + h_{t-1} W_hh^T (4H); i, f, o = σ, g = tanh;
// d = σ(x_gates[t][4H:5H] + w_cd ⊙ c_{t-1} + w_ld ⊙ c^L_t);
// c_t = f c_{t-1} + i g + d c^L_t;  h_t = o tanh(c_t). Layer 0 (no `lower`): no d term.

template <typename scalar_t>
void depth_gated_forward_loop(const Tensor& x_gates, const Tensor& lower, const Tensor& h0,
                              const Tensor& c0, const Tensor& w_hh, const Tensor& w_cd,
                              const Tensor& w_ld, const c10::optional<Tensor>& mask,
                              Tensor& acts, Tensor& c_all, Tensor& h_all) {
  using acc = at::opmath_type<scalar_t>;
  const int64_t T = x_gates.size(0), B = x_gates.size(1), GH = x_gates.size(2);
  const int64_t H = h0.size(1), H4 = 4 * H;
  const bool depth = lower.defined();
  const Tensor w_view = w_hh.t();  // (H, 4H)
  const StepOperand w_op = step_operand(w_view, B);
  auto rec = at::empty({B, H4}, x_gates.options());
  const scalar_t* xg_p = x_gates.data_ptr<scalar_t>();
  const scalar_t* low_p = depth ? lower.data_ptr<scalar_t>() : nullptr;
  const scalar_t* pcd = optional_ptr<scalar_t>(w_cd);
  const scalar_t* pld = optional_ptr<scalar_t>(w_ld);
  scalar_t* acts_p = acts.data_ptr<scalar_t>();
  scalar_t* c_all_p = c_all.data_ptr<scalar_t>();
  scalar_t* h_all_p = h_all.data_ptr<scalar_t>();
  scalar_t* rec_p = rec.data_ptr<scalar_t>();
  StepRows<acc> rows(B, 14 * H, {GH, H, H});  // pre-activations, c_t, tanh(c_t)

  for (int64_t t = 0; t < T; ++t) {
    const scalar_t* hp = t > 0 ? h_all_p + (t - 1) * B * H : h0.data_ptr<scalar_t>();
    const scalar_t* cp = t > 0 ? c_all_p + (t - 1) * B * H : c0.data_ptr<scalar_t>();
    step_product<scalar_t>(hp, H, H, w_view, w_op, rec_p, B, H4, x_gates.options());
    const bool* keep = mask_row(mask, t);
    rows.run([&](int64_t b, std::vector<RowBuffer<acc>>& buf) {
      acc *za = buf[0].get(), *ca = buf[1].get(), *ta = buf[2].get();
      const scalar_t* xr = xg_p + (t * B + b) * GH;
      const scalar_t* rr = rec_p + b * H4;
      const scalar_t* c_prev = cp + b * H;
      const scalar_t* cl = depth ? low_p + (t * B + b) * H : nullptr;
      add_row<acc>(xr, rr, za, H4);
      if (depth)  // the depth gate reads c_{t-1} and c^L_t through its diagonal weights
        for_lanes<acc>(H, [&](int64_t j, auto L) {
          L.store(za + H4 + j, L.load(xr + H4 + j) + L.load(pcd + j) * L.load(c_prev + j) +
                                   L.load(pld + j) * L.load(cl + j));
        });
      sigmoid_(za, 2 * H);              // i, f
      tanh_(za + 2 * H, H);             // g
      sigmoid_(za + 3 * H, GH - 3 * H);  // o and (above layer 0) d
      for_lanes<acc>(H, [&](int64_t j, auto L) {
        auto c = L.load(za + H + j) * L.load(c_prev + j) + L.load(za + j) * L.load(za + 2 * H + j);
        // Sec. 3: the gated path from below
        if (depth) c = c + L.load(za + H4 + j) * L.load(cl + j);
        L.store(ca + j, c);
        L.store(ta + j, c);
      });
      tanh_(ta, H);
      convert_row<acc>(za, acts_p + (t * B + b) * GH, GH);
      const bool live = keep == nullptr || keep[b];
      scalar_t* c_out = c_all_p + (t * B + b) * H;
      scalar_t* h_out = h_all_p + (t * B + b) * H;
      const scalar_t* h_kept = hp + b * H;
      for_lanes<acc>(H, [&](int64_t j, auto L) {
        L.store(c_out + j, live ? L.load(ca + j) : L.load(c_prev + j));
        L.store(h_out + j, live ? L.load(za + 3 * H + j) * L.load(ta + j) : L.load(h_kept + j));
      });
    });
  }
}

// x_gates (T, B, G*H), G = 4 (layer 0, lower undefined) or 5 (the depth gate's input part
// last); lower (T, B, H) c^L. Returns h_n, c_n (B, H) and acts (T, B, G*H) the gates, c_all
// and h_all (T, B, H) the carried states after each step (the layer's outputs).
std::vector<Tensor> depth_gated_forward(const Tensor& x_gates_in, const c10::optional<Tensor>& lower_in,
                                        const Tensor& h0_in, const Tensor& c0_in, const Tensor& w_hh_in,
                                        const c10::optional<Tensor>& w_cd_in,
                                        const c10::optional<Tensor>& w_ld_in,
                                        const c10::optional<Tensor>& mask) {
  const Tensor x_gates = x_gates_in.contiguous(), h0 = h0_in.contiguous(), c0 = c0_in.contiguous();
  const Tensor w_hh = w_hh_in.contiguous();
  const Tensor lower = lower_in.has_value() ? lower_in->contiguous() : Tensor();
  const Tensor w_cd = w_cd_in.has_value() ? w_cd_in->contiguous() : Tensor();
  const Tensor w_ld = w_ld_in.has_value() ? w_ld_in->contiguous() : Tensor();
  const int64_t T = x_gates.size(0), B = x_gates.size(1), GH = x_gates.size(2), H = h0.size(1);
  TORCH_CHECK(GH == (lower.defined() ? 5 : 4) * H, "depth_gated_forward: ", GH / H,
              " gate blocks given; expected 4 without a lower cell, 5 with one");
  TORCH_CHECK(!lower.defined() || (w_cd.defined() && w_ld.defined()),
              "depth_gated_forward: the depth gate needs weight_cd and weight_ld");
  auto acts = at::empty({T, B, GH}, x_gates.options());
  auto c_all = at::empty({T, B, H}, x_gates.options());
  auto h_all = at::empty({T, B, H}, x_gates.options());
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x_gates.scalar_type(), "depth_gated_forward", [&] {
    depth_gated_forward_loop<scalar_t>(x_gates, lower, h0, c0, w_hh, w_cd, w_ld, mask, acts, c_all,
                                       h_all);
  });
  return {h_all[T - 1].clone(), c_all[T - 1].clone(), acts, c_all, h_all};
}

template <typename scalar_t>
void depth_gated_backward_loop(const Tensor& d_h_seq, const Tensor& d_c_seq, Tensor& dh,
                               Tensor& dc, const Tensor& acts, const Tensor& c_all,
                               const Tensor& lower, const Tensor& c0, const Tensor& w_hh,
                               const Tensor& w_cd, const Tensor& w_ld,
                               const c10::optional<Tensor>& mask, Tensor& dz_all,
                               Tensor& d_lower, const RowSums& depth_sums) {
  using acc = at::opmath_type<scalar_t>;
  const int64_t T = acts.size(0), B = acts.size(1), GH = acts.size(2);
  const int64_t H = c0.size(1), H4 = 4 * H;
  const bool depth = lower.defined();
  const StepOperand w_op = step_operand(w_hh, B);  // (4H, H)
  const scalar_t* dhs_p = d_h_seq.data_ptr<scalar_t>();
  const scalar_t* dcs_p = d_c_seq.data_ptr<scalar_t>();
  const scalar_t* acts_p = acts.data_ptr<scalar_t>();
  const scalar_t* c_all_p = c_all.data_ptr<scalar_t>();
  const scalar_t* low_p = depth ? lower.data_ptr<scalar_t>() : nullptr;
  const scalar_t* pcd = optional_ptr<scalar_t>(w_cd);
  const scalar_t* pld = optional_ptr<scalar_t>(w_ld);
  scalar_t* dz_p = dz_all.data_ptr<scalar_t>();
  scalar_t* dlow_p = depth ? d_lower.data_ptr<scalar_t>() : nullptr;
  auto dh_t = at::empty({B, H}, acts.options());  // dL/dh_t, this step's and the later ones'
  auto dh_prev = at::empty({B, H}, acts.options());
  auto dc_prev = at::empty({B, H}, acts.options());
  StepRows<acc> rows(B, 20 * H, {H});  // tanh(c_t)

  for (int64_t t = T - 1; t >= 0; --t) {
    const scalar_t* cp = t > 0 ? c_all_p + (t - 1) * B * H : c0.data_ptr<scalar_t>();
    const scalar_t* dhp = dh.data_ptr<scalar_t>();
    const scalar_t* dcp = dc.data_ptr<scalar_t>();
    scalar_t* dht_p = dh_t.data_ptr<scalar_t>();
    scalar_t* dcn = dc_prev.data_ptr<scalar_t>();
    const bool* keep = mask_row(mask, t);
    rows.run([&](int64_t b, std::vector<RowBuffer<acc>>& buf) {
      acc* tc = buf[0].get();
      const int64_t r = t * B + b;  // this row's index in the (T, B, ...) tensors
      const scalar_t* ar = acts_p + r * GH;
      scalar_t* dzr = dz_p + r * GH;
      scalar_t* dlr = depth ? dlow_p + r * H : nullptr;
      acc* sums = depth_sums.row<acc>(b);  // w_cd's, then w_ld's
      // the carried h_t and c_t were also handed on (output, cell for the layer above)
      const int64_t row = b * H;
      add_row<acc>(dhp + row, dhs_p + r * H, dht_p + row, H);
      if (keep != nullptr && !keep[b]) {  // ended: the state passed through this step
        std::fill(dzr, dzr + GH, scalar_t(0));
        add_row<acc>(dcp + row, dcs_p + r * H, dcn + row, H);
        if (depth) std::fill(dlr, dlr + H, scalar_t(0));
        return;
      }
      convert_row<acc>(c_all_p + r * H, tc, H);
      tanh_(tc, H);  // recomputed: cheaper than keeping a (T, B, H) buffer
      for_lanes<acc>(H, [&](int64_t j, auto L) {
        const auto one = L.splat(1);
        const auto i = L.load(ar + j), f = L.load(ar + H + j), g = L.load(ar + 2 * H + j);
        const auto o = L.load(ar + 3 * H + j), s = L.load(tc + j);
        const auto cprev = L.load(cp + row + j), dht = L.load(dht_p + row + j);
        // h = o tanh(c)
        L.store(dzr + 3 * H + j, dht * s * o * (one - o));
        const auto dc_in = L.load(dcp + row + j) + L.load(dcs_p + r * H + j);
        const auto dct = dc_in + dht * o * (one - s * s);
        // c = f c_{t-1} + i g (+ d c^L)
        L.store(dzr + j, dct * g * i * (one - i));
        L.store(dzr + H + j, dct * cprev * f * (one - f));
        L.store(dzr + 2 * H + j, dct * i * (one - g * g));
        auto dcprev = dct * f;
        if (depth) {  // d = σ(... + w_cd c_{t-1} + w_ld c^L_t) adds d c^L_t
          const auto d = L.load(ar + H4 + j), cl = L.load(low_p + r * H + j);
          const auto dzd = dct * cl * d * (one - d);
          L.store(dzr + H4 + j, dzd);
          dcprev = dcprev + dzd * L.load(pcd + j);
          L.store(dlr + j, dct * d + dzd * L.load(pld + j));
          L.store(sums + j, L.load(sums + j) + dzd * cprev);
          L.store(sums + H + j, L.load(sums + H + j) + dzd * cl);
        }
        L.store(dcn + row + j, dcprev);
      });
    });
    // dL/dh_{t-1} through the recurrent product of the first 4H pre-activations
    scalar_t* dhn = dh_prev.data_ptr<scalar_t>();
    step_product<scalar_t>(dz_p + t * B * GH, GH, H4, w_hh, w_op, dhn, B, H, acts.options());
    if (keep != nullptr)  // ended rows: the gradient of the held h passes by
      for (int64_t b = 0; b < B; ++b)
        if (!keep[b])
          for (int64_t j = 0; j < H; ++j) dhn[b * H + j] = dht_p[b * H + j];
    std::swap(dh, dh_prev);
    std::swap(dc, dc_prev);
  }
}

// Returns dz (T, B, G*H) (the gradient of every pre-activation, the depth gate's included),
// d_lower (T, B, H) (empty for layer 0), dh0, dc0, d_w_hh (4H, H), d_w_cd, d_w_ld (empty for
// layer 0).
std::vector<Tensor> depth_gated_backward(
    const Tensor& d_h_seq_in, const Tensor& d_c_seq_in, const Tensor& d_h_n, const Tensor& d_c_n,
    const Tensor& acts, const Tensor& c_all, const Tensor& h_all,
    const c10::optional<Tensor>& lower_in, const Tensor& h0_in, const Tensor& c0_in,
    const Tensor& w_hh_in, const c10::optional<Tensor>& w_cd_in,
    const c10::optional<Tensor>& w_ld_in, const c10::optional<Tensor>& mask) {
  const Tensor d_h_seq = d_h_seq_in.contiguous(), d_c_seq = d_c_seq_in.contiguous();
  const Tensor h0 = h0_in.contiguous(), c0 = c0_in.contiguous(), w_hh = w_hh_in.contiguous();
  const Tensor lower = lower_in.has_value() ? lower_in->contiguous() : Tensor();
  const Tensor w_cd = w_cd_in.has_value() ? w_cd_in->contiguous() : Tensor();
  const Tensor w_ld = w_ld_in.has_value() ? w_ld_in->contiguous() : Tensor();
  const int64_t T = acts.size(0), B = acts.size(1), GH = acts.size(2), H = h0.size(1);
  auto dz_all = at::empty({T, B, GH}, acts.options());
  auto d_lower = lower.defined() ? at::empty({T, B, H}, acts.options()) : at::empty({0}, acts.options());
  Tensor dh = d_h_n.contiguous().clone(), dc = d_c_n.contiguous().clone();
  const RowSums depth_sums = lower.defined() ? RowSums(B, 2, H, acts) : RowSums();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, acts.scalar_type(), "depth_gated_backward", [&] {
    depth_gated_backward_loop<scalar_t>(d_h_seq, d_c_seq, dh, dc, acts, c_all, lower, c0, w_hh,
                                        w_cd, w_ld, mask, dz_all, d_lower, depth_sums);
  });
  // the weight gradients over all steps at once
  const Tensor h_prev_all = at::cat({h0.unsqueeze(0), h_all.narrow(0, 0, T - 1)}, 0);
  const Tensor flat_dz = dz_all.view({T * B, GH});
  Tensor d_w_hh = at::mm(flat_dz.narrow(1, 0, 4 * H).t(), h_prev_all.reshape({T * B, H}));
  Tensor d_w_cd = at::empty({0}, acts.options()), d_w_ld = at::empty({0}, acts.options());
  if (lower.defined()) {  // the loop's sums per row, over the rows
    d_w_cd = depth_sums.total(0, acts.scalar_type());
    d_w_ld = depth_sums.total(1, acts.scalar_type());
  }
  return {dz_all, d_lower, dh, dc, d_w_hh, d_w_cd, d_w_ld};
}

// ------------------------------------------------------------------------------------
// 2-D Grid LSTM block (Kalchbrenner et al. 2015, Sec. 3.1)
// ------------------------------------------------------------------------------------
//
// Both transforms read H = [u_t ; h_{t-1}] (u_t the depth input from below): their
// pre-activations are x_gates[t] (the input side, for all steps) + h_{t-1} [W_hh; W_dhh]^T,
// one (B, 8H) product. The time transform updates (h, m), the recurrent state; the depth
// transform turns the memory from below mu^{k-1}_t (0 at the bottom) into (eta, mu), which
// go up. Sec. 2.1's LSTM: m' = f m + i g, h' = o tanh(m') (torch's form) or tanh(o m')
// (the paper's as printed, `printed`).

template <typename acc>
inline void transform_output(const acc* o, const acc* m, acc* out, int64_t H, bool printed) {
  if (printed) {
    for_lanes<acc>(H, [&](int64_t j, auto L) { L.store(out + j, L.load(o + j) * L.load(m + j)); });
    tanh_(out, H);
  } else {
    std::copy(m, m + H, out);
    tanh_(out, H);
    for_lanes<acc>(H, [&](int64_t j, auto L) { L.store(out + j, L.load(o + j) * L.load(out + j)); });
  }
}

// The backward of one transform on one row: z (4H) its gate activations, m its new memory,
// m_prev its old one (null: 0), dh and dm the gradients of its outputs. Writes dz (4H) and
// returns dm_prev in dm_prev (may be null). buffer: H values.
template <typename scalar_t, typename acc>
inline void transform_backward(const scalar_t* z, const scalar_t* m, const scalar_t* m_prev,
                               const acc* dh, const acc* dm, scalar_t* dz, acc* dm_prev,
                               acc* buffer, int64_t H, bool printed) {
  for_lanes<acc>(H, [&](int64_t j, auto L) {
    L.store(buffer + j, printed ? L.load(z + 3 * H + j) * L.load(m + j) : L.load(m + j));
  });
  tanh_(buffer, H);  // s = tanh(o m) or tanh(m)
  for_lanes<acc>(H, [&](int64_t j, auto L) {
    const auto one = L.splat(1);
    const auto i = L.load(z + j), f = L.load(z + H + j), g = L.load(z + 2 * H + j);
    const auto o = L.load(z + 3 * H + j), s = L.load(buffer + j), mj = L.load(m + j);
    const auto ds = one - s * s, dhj = L.load(dh + j), dmj = L.load(dm + j);
    // h = tanh(o m), or h = o tanh(m)
    const auto dmt = printed ? dmj + dhj * ds * o : dmj + dhj * o * ds;
    const auto dzo = printed ? dhj * ds * mj * o * (one - o) : dhj * s * o * (one - o);
    const auto mp = m_prev == nullptr ? L.splat(0) : L.load(m_prev + j);
    L.store(dz + j, dmt * g * i * (one - i));
    L.store(dz + H + j, dmt * mp * f * (one - f));
    L.store(dz + 2 * H + j, dmt * i * (one - g * g));
    L.store(dz + 3 * H + j, dzo);
    if (dm_prev != nullptr) L.store(dm_prev + j, dmt * f);
  });
}

template <typename scalar_t>
void grid_forward_loop(const Tensor& x_gates, const Tensor& lower_mu, const Tensor& h0,
                       const Tensor& m0, const Tensor& w_hh, const c10::optional<Tensor>& mask,
                       bool printed, Tensor& acts, Tensor& m_all, Tensor& h_all, Tensor& eta_all,
                       Tensor& mu_all) {
  using acc = at::opmath_type<scalar_t>;
  const int64_t T = x_gates.size(0), B = x_gates.size(1), GH = x_gates.size(2);
  const int64_t H = h0.size(1), H4 = 4 * H;
  const bool depth = GH == 8 * H;
  const Tensor w_view = w_hh.t();  // (H, G*H)
  const StepOperand w_op = step_operand(w_view, B);
  auto rec = at::empty({B, GH}, x_gates.options());
  const scalar_t* xg_p = x_gates.data_ptr<scalar_t>();
  const scalar_t* low_p = lower_mu.defined() ? lower_mu.data_ptr<scalar_t>() : nullptr;
  scalar_t* acts_p = acts.data_ptr<scalar_t>();
  scalar_t* m_all_p = m_all.data_ptr<scalar_t>();
  scalar_t* h_all_p = h_all.data_ptr<scalar_t>();
  scalar_t* eta_p = depth ? eta_all.data_ptr<scalar_t>() : nullptr;
  scalar_t* mu_p = depth ? mu_all.data_ptr<scalar_t>() : nullptr;
  scalar_t* rec_p = rec.data_ptr<scalar_t>();
  StepRows<acc> rows(B, 12 * GH / 4, {GH, H, H});  // pre-activations, a memory, an output

  for (int64_t t = 0; t < T; ++t) {
    const scalar_t* hp = t > 0 ? h_all_p + (t - 1) * B * H : h0.data_ptr<scalar_t>();
    const scalar_t* mp = t > 0 ? m_all_p + (t - 1) * B * H : m0.data_ptr<scalar_t>();
    step_product<scalar_t>(hp, H, H, w_view, w_op, rec_p, B, GH, x_gates.options());
    const bool* keep = mask_row(mask, t);
    rows.run([&](int64_t b, std::vector<RowBuffer<acc>>& buf) {
      acc *za = buf[0].get(), *ma = buf[1].get(), *ha = buf[2].get();
      const int64_t r = t * B + b;
      const scalar_t* xr = xg_p + r * GH;
      const scalar_t* rr = rec_p + b * GH;
      add_row<acc>(xr, rr, za, GH);
      for (int64_t off = 0; off < GH; off += H4) {  // each transform's u, f, c, o blocks
        sigmoid_(za + off, 2 * H);
        tanh_(za + off + 2 * H, H);
        sigmoid_(za + off + 3 * H, H);
      }
      convert_row<acc>(za, acts_p + r * GH, GH);
      // the time transform: (h^k_t, m^k_t) = LSTM(H, m^k_{t-1})
      const scalar_t* m_prev = mp + b * H;
      for_lanes<acc>(H, [&](int64_t j, auto L) {
        const auto kept = L.load(za + H + j) * L.load(m_prev + j);
        L.store(ma + j, kept + L.load(za + j) * L.load(za + 2 * H + j));
      });
      transform_output(za + 3 * H, ma, ha, H, printed);
      const bool live = keep == nullptr || keep[b];
      scalar_t* m_out = m_all_p + r * H;
      scalar_t* h_out = h_all_p + r * H;
      const scalar_t* h_kept = hp + b * H;
      for_lanes<acc>(H, [&](int64_t j, auto L) {
        L.store(m_out + j, live ? L.load(ma + j) : L.load(m_prev + j));
        L.store(h_out + j, live ? L.load(ha + j) : L.load(h_kept + j));
      });
      if (!depth) return;
      // the depth transform: (eta^k_t, mu^k_t) = LSTM(H, mu^{k-1}_t), mu^{-1} = 0
      const acc* zd = za + H4;
      const scalar_t* mu_low = low_p == nullptr ? nullptr : low_p + r * H;
      for_lanes<acc>(H, [&](int64_t j, auto L) {
        const auto written = L.load(zd + j) * L.load(zd + 2 * H + j);
        if (mu_low == nullptr) {
          L.store(ma + j, written);
        } else {
          L.store(ma + j, L.load(zd + H + j) * L.load(mu_low + j) + written);
        }
      });
      transform_output(zd + 3 * H, ma, ha, H, printed);
      convert_row<acc>(ma, mu_p + r * H, H);
      convert_row<acc>(ha, eta_p + r * H, H);
    });
  }
}

// x_gates (T, B, G*H): the time transform's input side (G = 4), then the depth transform's
// (G = 8, `depth`); lower_mu (T, B, H) mu^{k-1} or none (0). Returns h_n, m_n (B, H), acts
// (T, B, G*H), m_all, h_all (T, B, H) the carried time pair, eta_all, mu_all (T, B, H) the
// depth pair (empty without the depth transform).
std::vector<Tensor> grid_forward(const Tensor& x_gates_in, const c10::optional<Tensor>& lower_in,
                                 const Tensor& h0_in, const Tensor& m0_in, const Tensor& w_hh_in,
                                 const c10::optional<Tensor>& mask, bool printed) {
  const Tensor x_gates = x_gates_in.contiguous(), h0 = h0_in.contiguous(), m0 = m0_in.contiguous();
  const Tensor w_hh = w_hh_in.contiguous();
  const Tensor lower = lower_in.has_value() ? lower_in->contiguous() : Tensor();
  const int64_t T = x_gates.size(0), B = x_gates.size(1), GH = x_gates.size(2), H = h0.size(1);
  TORCH_CHECK(GH == 4 * H || GH == 8 * H, "grid_forward: ", GH / H,
              " gate blocks given; expected 4 (time transform) or 8 (time and depth)");
  TORCH_CHECK(w_hh.size(0) == GH, "grid_forward: w_hh has ", w_hh.size(0), " rows, expected ", GH);
  const bool depth = GH == 8 * H;
  auto acts = at::empty({T, B, GH}, x_gates.options());
  auto m_all = at::empty({T, B, H}, x_gates.options());
  auto h_all = at::empty({T, B, H}, x_gates.options());
  auto eta_all = depth ? at::empty({T, B, H}, x_gates.options()) : at::empty({0}, x_gates.options());
  auto mu_all = depth ? at::empty({T, B, H}, x_gates.options()) : at::empty({0}, x_gates.options());
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x_gates.scalar_type(), "grid_forward", [&] {
    grid_forward_loop<scalar_t>(x_gates, lower, h0, m0, w_hh, mask, printed, acts, m_all, h_all,
                                eta_all, mu_all);
  });
  return {h_all[T - 1].clone(), m_all[T - 1].clone(), acts, m_all, h_all, eta_all, mu_all};
}

template <typename scalar_t>
void grid_backward_loop(const Tensor& d_h_seq, const Tensor& d_eta, const Tensor& d_mu,
                        Tensor& dh, Tensor& dm, const Tensor& acts, const Tensor& m_all,
                        const Tensor& mu_all, const Tensor& lower_mu, const Tensor& m0,
                        const Tensor& w_hh, const c10::optional<Tensor>& mask, bool printed,
                        Tensor& dz_all, Tensor& d_lower) {
  using acc = at::opmath_type<scalar_t>;
  const int64_t T = acts.size(0), B = acts.size(1), GH = acts.size(2);
  const int64_t H = m0.size(1), H4 = 4 * H;
  const bool depth = GH == 8 * H;
  const StepOperand w_op = step_operand(w_hh, B);  // (G*H, H)
  const scalar_t* dhs_p = d_h_seq.data_ptr<scalar_t>();
  const scalar_t* deta_p = depth ? d_eta.data_ptr<scalar_t>() : nullptr;
  const scalar_t* dmu_p = depth ? d_mu.data_ptr<scalar_t>() : nullptr;
  const scalar_t* acts_p = acts.data_ptr<scalar_t>();
  const scalar_t* m_all_p = m_all.data_ptr<scalar_t>();
  const scalar_t* mu_p = depth ? mu_all.data_ptr<scalar_t>() : nullptr;
  const scalar_t* low_p = lower_mu.defined() ? lower_mu.data_ptr<scalar_t>() : nullptr;
  scalar_t* dz_p = dz_all.data_ptr<scalar_t>();
  scalar_t* dlow_p = low_p != nullptr ? d_lower.data_ptr<scalar_t>() : nullptr;
  auto dh_t = at::empty({B, H}, acts.options());
  auto dh_prev = at::empty({B, H}, acts.options());
  auto dm_prev = at::empty({B, H}, acts.options());
  // dL/dh_t, dL/dm_t of one transform, dL/dm_{t-1}, the recomputed tanh
  StepRows<acc> rows(B, 10 * GH / 4, {H, H, H, H});

  for (int64_t t = T - 1; t >= 0; --t) {
    const scalar_t* mp = t > 0 ? m_all_p + (t - 1) * B * H : m0.data_ptr<scalar_t>();
    const scalar_t* dhp = dh.data_ptr<scalar_t>();
    const scalar_t* dmp = dm.data_ptr<scalar_t>();
    scalar_t* dht_p = dh_t.data_ptr<scalar_t>();
    scalar_t* dmn = dm_prev.data_ptr<scalar_t>();
    const bool* keep = mask_row(mask, t);
    rows.run([&](int64_t b, std::vector<RowBuffer<acc>>& buf) {
      acc *gh = buf[0].get(), *gm = buf[1].get(), *gprev = buf[2].get(), *tmp = buf[3].get();
      const int64_t r = t * B + b;
      const scalar_t* ar = acts_p + r * GH;
      scalar_t* dzr = dz_p + r * GH;
      add_row<acc>(dhp + b * H, dhs_p + r * H, gh, H);
      convert_row<acc>(gh, dht_p + b * H, H);
      convert_row<acc>(dmp + b * H, gm, H);
      if (keep != nullptr && !keep[b]) {  // ended: the time pair passed through this step
        std::fill(dzr, dzr + H4, scalar_t(0));
        convert_row<acc>(gm, dmn + b * H, H);
      } else {
        transform_backward<scalar_t, acc>(ar, m_all_p + r * H, mp + b * H, gh, gm, dzr, gprev,
                                          tmp, H, printed);
        convert_row<acc>(gprev, dmn + b * H, H);
      }
      if (!depth) return;
      // the depth transform runs at every step (its outputs go up even past the end)
      convert_row<acc>(deta_p + r * H, gh, H);
      convert_row<acc>(dmu_p + r * H, gm, H);
      const scalar_t* mu_low = low_p == nullptr ? nullptr : low_p + r * H;
      transform_backward<scalar_t, acc>(ar + H4, mu_p + r * H, mu_low, gh, gm, dzr + H4,
                                        mu_low == nullptr ? nullptr : gprev, tmp, H, printed);
      if (mu_low != nullptr) convert_row<acc>(gprev, dlow_p + r * H, H);
    });
    // both transforms read h_{t-1}: dL/dh_{t-1} = dz [W_hh; W_dhh]
    scalar_t* dhn = dh_prev.data_ptr<scalar_t>();
    step_product<scalar_t>(dz_p + t * B * GH, GH, GH, w_hh, w_op, dhn, B, H, acts.options());
    if (keep != nullptr)  // ended rows: the held h's gradient passes by as well
      for (int64_t b = 0; b < B; ++b)
        if (!keep[b])
          for (int64_t j = 0; j < H; ++j)
            dhn[b * H + j] = scalar_t(acc(dhn[b * H + j]) + acc(dht_p[b * H + j]));
    std::swap(dh, dh_prev);
    std::swap(dm, dm_prev);
  }
}

// Returns dz (T, B, G*H), d_lower_mu (T, B, H) (empty without one), dh0, dm0, d_w_hh (G*H, H).
std::vector<Tensor> grid_backward(const Tensor& d_h_seq_in, const Tensor& d_eta_in,
                                  const Tensor& d_mu_in, const Tensor& d_h_n, const Tensor& d_m_n,
                                  const Tensor& acts, const Tensor& m_all, const Tensor& h_all,
                                  const Tensor& mu_all, const c10::optional<Tensor>& lower_in,
                                  const Tensor& h0_in, const Tensor& m0_in, const Tensor& w_hh_in,
                                  const c10::optional<Tensor>& mask, bool printed) {
  const Tensor d_h_seq = d_h_seq_in.contiguous(), d_eta = d_eta_in.contiguous();
  const Tensor d_mu = d_mu_in.contiguous();
  const Tensor h0 = h0_in.contiguous(), m0 = m0_in.contiguous(), w_hh = w_hh_in.contiguous();
  const Tensor lower = lower_in.has_value() ? lower_in->contiguous() : Tensor();
  const int64_t T = acts.size(0), B = acts.size(1), GH = acts.size(2), H = h0.size(1);
  auto dz_all = at::empty({T, B, GH}, acts.options());
  auto d_lower = lower.defined() ? at::empty({T, B, H}, acts.options()) : at::empty({0}, acts.options());
  Tensor dh = d_h_n.contiguous().clone(), dm = d_m_n.contiguous().clone();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, acts.scalar_type(), "grid_backward", [&] {
    grid_backward_loop<scalar_t>(d_h_seq, d_eta, d_mu, dh, dm, acts, m_all, mu_all, lower, m0,
                                 w_hh, mask, printed, dz_all, d_lower);
  });
  const Tensor h_prev_all = at::cat({h0.unsqueeze(0), h_all.narrow(0, 0, T - 1)}, 0);
  Tensor d_w_hh = at::mm(dz_all.view({T * B, GH}).t(), h_prev_all.reshape({T * B, H}));
  return {dz_all, d_lower, dh, dm, d_w_hh};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lstmkit_fused, m) {
  m.def(
      "depth_gated_forward(Tensor x_gates, Tensor? lower, Tensor h0, Tensor c0, Tensor w_hh, "
      "Tensor? w_cd, Tensor? w_ld, Tensor? mask) -> Tensor[]",
      &depth_gated_forward);
  m.def(
      "depth_gated_backward(Tensor d_h_seq, Tensor d_c_seq, Tensor d_h_n, Tensor d_c_n, "
      "Tensor acts, Tensor c_all, Tensor h_all, Tensor? lower, Tensor h0, Tensor c0, "
      "Tensor w_hh, Tensor? w_cd, Tensor? w_ld, Tensor? mask) -> Tensor[]",
      &depth_gated_backward);
  m.def(
      "grid_forward(Tensor x_gates, Tensor? lower_mu, Tensor h0, Tensor m0, Tensor w_hh, "
      "Tensor? mask, bool printed) -> Tensor[]",
      &grid_forward);
  m.def(
      "grid_backward(Tensor d_h_seq, Tensor d_eta, Tensor d_mu, Tensor d_h_n, Tensor d_m_n, "
      "Tensor acts, Tensor m_all, Tensor h_all, Tensor mu_all, Tensor? lower_mu, Tensor h0, "
      "Tensor m0, Tensor w_hh, Tensor? mask, bool printed) -> Tensor[]",
      &grid_backward);
}

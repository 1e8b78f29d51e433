// lstmkit's fused CPU kernels: the time loops of the LSTM family, the GRU (torch's form and
// Cho et al.'s), the MGU and the RNN, with their backward passes, in C++ over ATen.
//
// Legend: T time, B batch, H hidden, R state[0] (output) size (H unless the LSTM projects),
// G gate blocks (LSTM 1 to 4, one per gate that has weights: see LSTMBits; GRU 3; MGU 2;
// RNN 1).
//
// What the Python loop (backends/manual_lstm.py) costs is not the arithmetic but the ~20
// dispatches per step; here each step is one matrix product for the recurrence (two with a
// projection) and one pass over B x H elements for all the gate arithmetic. The input
// projection of all steps is one product done by the caller, who also folds bias_hh into it
// where that is exact. Every loop runs forward in time: the caller flips a reverse direction.
//
// Masks: mask[t, b] false means sequence b has ended; its state passes through unchanged,
// its output is 0, and in the backward its gradient passes through and its pre-activation
// gradients are 0, exactly as the reference loop's torch.where does.
//
// Elementwise math runs in at::opmath_type (float for bfloat16) on per-row buffers, and the
// results are stored in the tensors' dtype; the matrix products are ATen's (oneDNN / BLAS).
// exp and tanh, most of a step's elementwise cost, go through at::vec, which is SIMD (Sleef,
// the functions torch's own kernels call) when the build defines CPU_CAPABILITY for this
// machine (see __init__.py) and a plain loop otherwise; the rest of the arithmetic is left
// to the compiler's auto-vectorisation. What every kernel file shares is in common.h.

#include "common.h"

namespace {

// ------------------------------------------------------------------------------------
// LSTM family
// ------------------------------------------------------------------------------------

// Which parts of the LSTM cell exist, as bits of the kernels' `variant` argument (built by
// __init__.py's _lstm_variant from LSTMFamily). A part that is absent has no weight block,
// and the blocks present keep the order (i, f, g, o): the plain cell is (i, f, g, o), CIFG
// and NFG (i, g, o), Greff et al.'s NIG (f, g, o), NOG (i, f, g), both (f, g).
enum LSTMBits : int64_t {
  kInputGate = 1,         // i_t has a block; without it (NIG) i_t = 1
  kForgetBlock = 2,       // f_t has a block of its own
  kCoupled = 4,           // f_t = 1 - i_t (CIFG); with neither, C_t = C_{t-1} + i g (1997, NFG)
  kOutputGate = 8,        // o_t has a block; without it (NOG) o_t = 1
  kInputActivation = 16,  // C~ = tanh(z_g); without it (NIAF) C~ = z_g
  kOutputActivation = 32, // h = o tanh(C_t); without it (NOAF) h = o C_t
};

// The variant's switches and where each block starts in a row of G*H pre-activations.
// The sigmoid gates i and f, whichever exist, come first: [0, gg) is every sigmoid before
// C~, so the forward squashes them in one call.
struct LSTMVariant {
  bool has_i, has_f, coupled, has_o, squash_in, squash_out;
  int64_t gf, gg, go, blocks;  // offsets of f, g (C~) and o; the number of blocks, G
  LSTMVariant(int64_t bits, int64_t H)
      : has_i(bits & kInputGate),
        has_f(bits & kForgetBlock),
        coupled(bits & kCoupled),
        has_o(bits & kOutputGate),
        squash_in(bits & kInputActivation),
        squash_out(bits & kOutputActivation),
        gf(has_i ? H : 0),
        gg((int64_t(has_i) + int64_t(has_f)) * H),
        go(gg + H),
        blocks(int64_t(has_i) + int64_t(has_f) + 1 + int64_t(has_o)) {
    TORCH_CHECK(!(has_f && coupled), "LSTM variant: a forget block and CIFG exclude each other");
    TORCH_CHECK(!coupled || has_i, "LSTM variant: CIFG needs an input gate to couple to");
  }
};


template <typename scalar_t>
void lstm_forward_loop(const Tensor& x_gates, const Tensor& h0, const Tensor& c0,
                       const Tensor& w_hh, const c10::optional<Tensor>& p_i,
                       const c10::optional<Tensor>& p_f, const c10::optional<Tensor>& p_o,
                       const c10::optional<Tensor>& w_hr, const c10::optional<Tensor>& mask,
                       const LSTMVariant& v, Tensor& acts, Tensor& c_all, Tensor& h_all,
                       Tensor& m_all) {
  using acc = at::opmath_type<scalar_t>;
  const int64_t T = x_gates.size(0), B = x_gates.size(1), GH = x_gates.size(2);
  const int64_t H = c0.size(1), R = h0.size(1);
  const bool project = w_hr.has_value();
  const Tensor w_hh_t = w_hh.t();
  const Tensor w_hh_kn = small_batch_operand(w_hh_t, B);
  const Tensor w_hr_t = project ? w_hr->t() : Tensor();
  const scalar_t* w_kn = w_hh_kn.defined() ? w_hh_kn.data_ptr<scalar_t>() : nullptr;
  const scalar_t* xg_p = x_gates.data_ptr<scalar_t>();
  scalar_t* acts_p = acts.data_ptr<scalar_t>();
  scalar_t* c_all_p = c_all.data_ptr<scalar_t>();
  scalar_t* h_all_p = h_all.data_ptr<scalar_t>();
  scalar_t* m_all_p = project ? m_all.data_ptr<scalar_t>() : nullptr;
  const scalar_t* pi = optional_data<scalar_t>(p_i);
  const scalar_t* pf = optional_data<scalar_t>(p_f);
  const scalar_t* po = optional_data<scalar_t>(p_o);
  const int64_t gf = v.gf, gg = v.gg, go = v.go;
  StepRows<acc> rows(B, 12 * H, {GH, H, H});  // pre-activations, C_t, squashed C_t

  const scalar_t* h_prev = h0.data_ptr<scalar_t>();
  const scalar_t* c_prev_all = c0.data_ptr<scalar_t>();
  for (int64_t t = 0; t < T; ++t) {
    scalar_t* z = acts_p + t * B * GH;  // pre-activations, overwritten by the gates below
    if constexpr (kHasVecMat<scalar_t>) {
      if (w_kn != nullptr) vec_mat(h_prev, w_kn, xg_p + t * B * GH, GH, z, B, R, GH);
    }
    if (w_kn == nullptr) {
      Tensor zt = acts[t];
      at::addmm_out(zt, x_gates[t], t > 0 ? h_all[t - 1] : h0, w_hh_t);
    }
    scalar_t* c_new = c_all_p + t * B * H;
    scalar_t* m = project ? m_all_p + t * B * H : h_all_p + t * B * R;
    const bool* keep = mask_row(mask, t);
    const scalar_t* cp = c_prev_all;
    const scalar_t* hp = h_prev;
    rows.run([&](int64_t b, std::vector<RowBuffer<acc>>& buf) {
      acc *za = buf[0].get(), *ca = buf[1].get(), *ta = buf[2].get();
      scalar_t* zr = z + b * GH;
      const scalar_t* c_prev = cp + b * H;
      for (int64_t k = 0; k < GH; ++k) za[k] = acc(zr[k]);
      // i and f look at C_{t-1}, each where it has a block and a peephole
      if (pi != nullptr)
        for (int64_t j = 0; j < H; ++j) za[j] += acc(pi[j]) * acc(c_prev[j]);
      if (pf != nullptr)
        for (int64_t j = 0; j < H; ++j) za[gf + j] += acc(pf[j]) * acc(c_prev[j]);
      sigmoid_(za, gg);                     // i and f, whichever have blocks (before g)
      if (v.squash_in) tanh_(za + gg, H);  // C~ = tanh(z_g); NIAF keeps z_g itself
      for (int64_t j = 0; j < H; ++j) {
        const acc cprev = acc(c_prev[j]), g = za[gg + j];
        const acc i = v.has_i ? za[j] : acc(1);  // NIG: i_t = 1
        if (v.has_f) {
          ca[j] = za[gf + j] * cprev + i * g;
        } else if (v.coupled) {
          ca[j] = cprev + i * (g - cprev);  // (1 - i) C_{t-1} + i C~
        } else {
          ca[j] = cprev + i * g;  // the 1997 carrousel
        }
      }
      if (po != nullptr)  // o looks at C_t
        for (int64_t j = 0; j < H; ++j) za[go + j] += acc(po[j]) * ca[j];
      if (v.has_o) sigmoid_(za + go, H);
      for (int64_t j = 0; j < H; ++j) ta[j] = ca[j];
      if (v.squash_out) tanh_(ta, H);  // NOAF exposes C_t unsquashed
      // the gates are kept even for an ended row: its gradients are masked to 0 anyway
      for (int64_t k = 0; k < GH; ++k) zr[k] = scalar_t(za[k]);
      const bool live = keep == nullptr || keep[b];
      scalar_t* c_out = c_new + b * H;
      scalar_t* m_out = m + b * (project ? H : R);
      for (int64_t j = 0; j < H; ++j) {
        c_out[j] = live ? scalar_t(ca[j]) : c_prev[j];
        const acc mj = v.has_o ? za[go + j] * ta[j] : ta[j];  // o tanh(C); NOG: o_t = 1
        m_out[j] = (project || live) ? scalar_t(mj) : hp[b * R + j];
      }
    });
    if (project) {
      Tensor h_new = h_all[t];
      at::mm_out(h_new, m_all[t], w_hr_t);
      if (mask.has_value()) {
        h_new.copy_(at::where(mask->select(0, t).unsqueeze(1), h_new, t > 0 ? h_all[t - 1] : h0));
      }
    }
    h_prev = h_all_p + t * B * R;
    c_prev_all = c_new;
  }
}

// Returns output (T, B, R), h_n (B, R), c_n (B, H), and what the backward reads:
// acts (T, B, G*H) gate activations (C~ as the cell writes it: tanh(z_g), or z_g under
// NIAF), c_all (T, B, H) and h_all (T, B, R) the carried states after each step, m_all
// (T, B, H) = o * tanh(C) before the projection (empty without one).
std::vector<Tensor> lstm_forward(
    const Tensor& x_gates_in, const Tensor& h0_in, const Tensor& c0_in, const Tensor& w_hh,
    const c10::optional<Tensor>& p_i, const c10::optional<Tensor>& p_f,
    const c10::optional<Tensor>& p_o, const c10::optional<Tensor>& w_hr,
    const c10::optional<Tensor>& mask, int64_t variant) {
  const Tensor x_gates = x_gates_in.contiguous(), h0 = h0_in.contiguous(), c0 = c0_in.contiguous();
  const int64_t T = x_gates.size(0), B = x_gates.size(1), GH = x_gates.size(2);
  const int64_t H = c0.size(1), R = h0.size(1);
  const LSTMVariant v(variant, H);
  TORCH_CHECK(GH == v.blocks * H, "lstm_forward: ", GH / H, " gate blocks given, the variant has ",
              v.blocks);
  auto acts = at::empty({T, B, GH}, x_gates.options());
  auto c_all = at::empty({T, B, H}, x_gates.options());
  auto h_all = at::empty({T, B, R}, x_gates.options());
  auto m_all = w_hr.has_value() ? at::empty({T, B, H}, x_gates.options()) : Tensor();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x_gates.scalar_type(), "lstm_forward", [&] {
    lstm_forward_loop<scalar_t>(x_gates, h0, c0, w_hh, p_i, p_f, p_o, w_hr, mask, v, acts,
                                c_all, h_all, m_all);
  });
  // the output is the carried h, 0 past each sequence's end: one pass after the loop
  Tensor output = mask.has_value() ? h_all * mask->unsqueeze(2) : h_all.clone();
  return {output, h_all[T - 1].clone(), c_all[T - 1].clone(), acts, c_all, h_all, m_all};
}

template <typename scalar_t>
void lstm_backward_loop(const Tensor& d_output, Tensor& dh, Tensor& dc, const Tensor& acts,
                        const Tensor& c_all, const Tensor& c0, const Tensor& w_hh,
                        const c10::optional<Tensor>& p_i, const c10::optional<Tensor>& p_f,
                        const c10::optional<Tensor>& p_o, const c10::optional<Tensor>& w_hr,
                        const c10::optional<Tensor>& mask, const LSTMVariant& v,
                        Tensor& dz_all, Tensor& dh_all) {
  using acc = at::opmath_type<scalar_t>;
  const int64_t T = acts.size(0), B = acts.size(1), GH = acts.size(2);
  const int64_t H = c0.size(1), R = dh.size(1);
  const bool project = w_hr.has_value();
  const Tensor w_hh_kn = small_batch_operand(w_hh, B);
  const scalar_t* w_kn = w_hh_kn.defined() ? w_hh_kn.data_ptr<scalar_t>() : nullptr;
  const scalar_t* dout_p = d_output.data_ptr<scalar_t>();
  const scalar_t* acts_p = acts.data_ptr<scalar_t>();
  const scalar_t* c_all_p = c_all.data_ptr<scalar_t>();
  scalar_t* dz_p = dz_all.data_ptr<scalar_t>();
  const scalar_t* pi = optional_data<scalar_t>(p_i);
  const scalar_t* pf = optional_data<scalar_t>(p_f);
  const scalar_t* po = optional_data<scalar_t>(p_o);
  const int64_t gf = v.gf, gg = v.gg, go = v.go;
  auto dh_t = at::empty({B, R}, acts.options());
  auto dm = project ? at::empty({B, H}, acts.options()) : Tensor();
  auto dc_prev = at::empty({B, H}, acts.options());
  auto dh_prev = at::empty({B, R}, acts.options());
  StepRows<acc> rows(B, 16 * H, {H});  // squashed C_t

  for (int64_t t = T - 1; t >= 0; --t) {
    scalar_t* dht = dh_t.data_ptr<scalar_t>();
    const scalar_t* dhp = dh.data_ptr<scalar_t>();
    const scalar_t* dout = dout_p + t * B * R;
    for (int64_t k = 0; k < B * R; ++k) dht[k] = scalar_t(acc(dout[k]) + acc(dhp[k]));
    if (project) at::mm_out(dm, dh_t, *w_hr);
    const scalar_t* dmp = (project ? dm : dh_t).data_ptr<scalar_t>();
    const scalar_t* cp = t > 0 ? c_all_p + (t - 1) * B * H : c0.data_ptr<scalar_t>();
    const scalar_t* ct = c_all_p + t * B * H;
    const scalar_t* ap = acts_p + t * B * GH;
    scalar_t* dz = dz_p + t * B * GH;
    const scalar_t* dcp = dc.data_ptr<scalar_t>();
    scalar_t* dcn = dc_prev.data_ptr<scalar_t>();
    const bool* keep = mask_row(mask, t);
    auto row = [&](int64_t b, std::vector<RowBuffer<acc>>& buf) {
      acc* tc = buf[0].get();
      const scalar_t* ar = ap + b * GH;
      scalar_t* dzr = dz + b * GH;
      if (keep != nullptr && !keep[b]) {  // ended: nothing happened at this step
        for (int64_t k = 0; k < GH; ++k) dzr[k] = scalar_t(0);
        for (int64_t j = 0; j < H; ++j) dcn[b * H + j] = dcp[b * H + j];
        return;
      }
      for (int64_t j = 0; j < H; ++j) tc[j] = acc(ct[b * H + j]);
      if (v.squash_out) tanh_(tc, H);  // recomputed: cheaper than storing a (T, B, H) buffer
      for (int64_t j = 0; j < H; ++j) {
        const acc g = acc(ar[gg + j]), cprev = acc(cp[b * H + j]);
        const acc i = v.has_i ? acc(ar[j]) : acc(1);   // NIG: i_t = 1
        const acc o = v.has_o ? acc(ar[go + j]) : acc(1);  // NOG: o_t = 1
        const acc dmj = acc(dmp[b * H + j]);
        // through h = o s(C_t), s = tanh (or the identity under NOAF)
        const acc ds = v.squash_out ? acc(1) - tc[j] * tc[j] : acc(1);
        acc dct = acc(dcp[b * H + j]) + dmj * o * ds;
        if (v.has_o) {
          const acc dzo = dmj * tc[j] * o * (acc(1) - o);  // ... and o's σ
          if (po != nullptr) dct += acc(po[j]) * dzo;       // o's peephole saw C_t
          dzr[go + j] = scalar_t(dzo);
        }
        acc di, dcprev;  // dL/di_t (before i's σ) and dL/dC_{t-1}
        if (v.has_f) {
          const acc f = acc(ar[gf + j]);
          di = dct * g;
          const acc dzf = dct * cprev * f * (acc(1) - f);
          dzr[gf + j] = scalar_t(dzf);
          dcprev = dct * f;
          if (pf != nullptr) dcprev += acc(pf[j]) * dzf;
        } else if (v.coupled) {
          di = dct * (g - cprev);
          dcprev = dct * (acc(1) - i);
        } else {  // the carrousel passes dC on unchanged
          di = dct * g;
          dcprev = dct;
        }
        if (v.has_i) {
          const acc dzi = di * i * (acc(1) - i);
          if (pi != nullptr) dcprev += acc(pi[j]) * dzi;
          dzr[j] = scalar_t(dzi);
        }
        // C~ = tanh(z_g), or z_g itself under NIAF
        dzr[gg + j] = scalar_t(dct * i * (v.squash_in ? acc(1) - g * g : acc(1)));
        dcn[b * H + j] = scalar_t(dcprev);
      }
    };
    rows.run(row);

    scalar_t* dhn = dh_prev.data_ptr<scalar_t>();
    if constexpr (kHasVecMat<scalar_t>) {
      if (w_kn != nullptr) vec_mat<scalar_t>(dz, w_kn, nullptr, 0, dhn, B, GH, R);
    }
    if (w_kn == nullptr) at::mm_out(dh_prev, dz_all[t], w_hh);
    if (keep != nullptr) {  // ended rows: the gradient passes by
      for (int64_t b = 0; b < B; ++b)
        if (!keep[b])
          for (int64_t k = 0; k < R; ++k) dhn[b * R + k] = dhp[b * R + k];
    }
    if (project) {  // what reached W_hr at this step, for its gradient
      scalar_t* slot = dh_all.data_ptr<scalar_t>() + t * B * R;
      for (int64_t b = 0; b < B; ++b) {
        const bool live = keep == nullptr || keep[b];
        for (int64_t k = 0; k < R; ++k) slot[b * R + k] = live ? dht[b * R + k] : scalar_t(0);
      }
    }
    std::swap(dh, dh_prev);
    std::swap(dc, dc_prev);
  }
}

// Returns d_x_gates (T, B, G*H) (= dL/dz, the gradient of every gate pre-activation), dh0,
// dc0, d_w_hh, d_p_i, d_p_f, d_p_o, d_w_hr (undefined where the layer has none).
std::vector<Tensor> lstm_backward(
    const Tensor& d_output_in, const Tensor& d_h_n, const Tensor& d_c_n, const Tensor& acts,
    const Tensor& c_all, const Tensor& h_all, const Tensor& m_all, const Tensor& h0,
    const Tensor& c0_in, const Tensor& w_hh, const c10::optional<Tensor>& p_i,
    const c10::optional<Tensor>& p_f, const c10::optional<Tensor>& p_o,
    const c10::optional<Tensor>& w_hr, const c10::optional<Tensor>& mask, int64_t variant) {
  const Tensor d_output = d_output_in.contiguous(), c0 = c0_in.contiguous();
  const int64_t T = acts.size(0), B = acts.size(1), GH = acts.size(2);
  const int64_t H = c0.size(1), R = h0.size(1);
  const LSTMVariant v(variant, H);
  TORCH_CHECK(GH == v.blocks * H, "lstm_backward: ", GH / H,
              " gate blocks given, the variant has ", v.blocks);
  const bool project = w_hr.has_value();
  const auto acc_dtype = at::toOpMathType(acts.scalar_type());
  auto dz_all = at::empty({T, B, GH}, acts.options());
  auto dh_all = project ? at::empty({T, B, R}, acts.options()) : Tensor();
  Tensor dh = d_h_n.contiguous().clone();
  Tensor dc = d_c_n.contiguous().clone();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, acts.scalar_type(), "lstm_backward", [&] {
    lstm_backward_loop<scalar_t>(d_output, dh, dc, acts, c_all, c0, w_hh, p_i, p_f, p_o, w_hr,
                                 mask, v, dz_all, dh_all);
  });

  // weight gradients over all steps at once: one product each
  const Tensor h_prev_all = at::cat({h0.unsqueeze(0), h_all.narrow(0, 0, T - 1)}, 0);
  const Tensor flat_dz = dz_all.view({T * B, GH});
  Tensor d_w_hh = at::mm(flat_dz.t(), h_prev_all.reshape({T * B, R}));
  Tensor d_w_hr = project ? at::mm(dh_all.view({T * B, R}).t(), m_all.view({T * B, H}))
                          : Tensor();
  // the peephole weights' gradients, sums over steps and rows: here rather than in the
  // loop, where rows on different threads would add into the same (H,) sums
  Tensor d_pi, d_pf, d_po;
  if (p_i.has_value() || p_f.has_value() || p_o.has_value()) {
    auto wide = [&](const Tensor& x) { return x.to(acc_dtype); };
    const Tensor c_prev_all = wide(at::cat({c0.unsqueeze(0), c_all.narrow(0, 0, T - 1)}, 0));
    auto block = [&](int64_t offset) { return wide(dz_all.narrow(2, offset, H)); };
    auto total = [&](const Tensor& x) { return x.sum({0, 1}).to(acts.scalar_type()); };
    if (p_i.has_value()) d_pi = total(block(0) * c_prev_all);
    if (p_f.has_value()) d_pf = total(block(v.gf) * c_prev_all);
    if (p_o.has_value()) d_po = total(block(v.go) * wide(c_all));
  }
  return {dz_all, dh, dc, d_w_hh, d_pi, d_pf, d_po, d_w_hr};
}

// ------------------------------------------------------------------------------------
// GRU (torch's form: the reset gate multiplies W_hn h + b_hn)
// ------------------------------------------------------------------------------------

// x_gates (T, B, 3H) = x W_ih^T + b_ih. Returns output (T, B, H), h_n, and for the
// backward: acts (T, B, 3H) = (r, z, n), hn_all (T, B, H) = W_hn h_prev + b_hn, h_all.
std::vector<Tensor> gru_forward(
    const Tensor& x_gates, const Tensor& h0, const Tensor& w_hh,
    const c10::optional<Tensor>& b_hh, const c10::optional<Tensor>& mask) {
  const int64_t T = x_gates.size(0), B = x_gates.size(1), H = h0.size(1);
  auto acts = at::empty({T, B, 3 * H}, x_gates.options());
  auto hn_all = at::empty({T, B, H}, x_gates.options());
  auto h_all = at::empty({T, B, H}, x_gates.options());
  auto output = at::empty({T, B, H}, x_gates.options());
  auto hg = at::empty({B, 3 * H}, x_gates.options());
  const Tensor w_hh_t = w_hh.t();
  const Tensor w_hh_kn = small_batch_operand(w_hh_t, B);
  const Tensor bias = b_hh.has_value() ? b_hh->contiguous() : Tensor();
  Tensor h = h0.contiguous();
  for (int64_t t = 0; t < T; ++t) {
    add_product(hg, bias, h, w_hh_t, w_hh_kn);
    const Tensor xg = x_gates[t];
    Tensor a = acts[t], hn = hn_all[t], h_new = h_all[t];
    const bool* keep = mask_row(mask, t);
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, xg.scalar_type(), "gru_forward", [&] {
      using acc = at::opmath_type<scalar_t>;
      const scalar_t* xp = xg.data_ptr<scalar_t>();
      const scalar_t* gp = hg.data_ptr<scalar_t>();
      const scalar_t* hp = h.data_ptr<scalar_t>();
      scalar_t* ap = a.data_ptr<scalar_t>();
      scalar_t* np_ = hn.data_ptr<scalar_t>();
      scalar_t* ho = h_new.data_ptr<scalar_t>();
      at::parallel_for(0, B, std::max<int64_t>(1, 32768 / (10 * H)), [&](int64_t lo, int64_t hi) {
        RowBuffer<acc> buf(3 * H);
        acc* u = buf.get();  // r, z, n
        for (int64_t b = lo; b < hi; ++b) {
          const scalar_t* x = xp + b * 3 * H;
          const scalar_t* g = gp + b * 3 * H;
          for (int64_t k = 0; k < 2 * H; ++k) u[k] = acc(x[k]) + acc(g[k]);
          sigmoid_(u, 2 * H);
          for (int64_t j = 0; j < H; ++j) u[2 * H + j] = acc(x[2 * H + j]) + u[j] * acc(g[2 * H + j]);
          tanh_(u + 2 * H, H);
          scalar_t* ar = ap + b * 3 * H;
          for (int64_t k = 0; k < 3 * H; ++k) ar[k] = scalar_t(u[k]);
          const bool live = keep == nullptr || keep[b];
          for (int64_t j = 0; j < H; ++j) {
            const acc z = u[H + j], n = u[2 * H + j], hprev = acc(hp[b * H + j]);
            np_[b * H + j] = g[2 * H + j];
            ho[b * H + j] = live ? scalar_t((acc(1) - z) * n + z * hprev) : hp[b * H + j];
          }
        }
      });
    });
    Tensor out = output[t];
    if (mask.has_value()) {
      at::mul_out(out, h_new, mask->select(0, t).unsqueeze(1));
    } else {
      out.copy_(h_new);
    }
    h = h_new;
  }
  return {output, h.clone(), acts, hn_all, h_all};
}

// Returns d_x_gates (T, B, 3H), dh0, d_w_hh, d_b_hh (the latter always; the caller drops it
// when the layer has no bias).
std::vector<Tensor> gru_backward(
    const Tensor& d_output, const Tensor& d_h_n, const Tensor& acts, const Tensor& hn_all,
    const Tensor& h_all, const Tensor& h0, const Tensor& w_hh, const c10::optional<Tensor>& mask) {
  const int64_t T = acts.size(0), B = acts.size(1), H = h0.size(1);
  auto dx_all = at::empty({T, B, 3 * H}, acts.options());
  auto dhg_all = at::empty({T, B, 3 * H}, acts.options());
  Tensor dh = d_h_n.contiguous().clone();
  auto dh_t = at::empty({B, H}, acts.options());
  auto dh_direct = at::empty({B, H}, acts.options());
  const Tensor w_hh_kn = small_batch_operand(w_hh, B);
  for (int64_t t = T - 1; t >= 0; --t) {
    at::add_out(dh_t, d_output[t], dh);
    const Tensor h_prev = t > 0 ? h_all[t - 1] : h0;
    const Tensor a = acts[t], hn = hn_all[t];
    Tensor dx = dx_all[t], dhg = dhg_all[t];
    const bool* keep = mask_row(mask, t);
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, acts.scalar_type(), "gru_backward", [&] {
      using acc = at::opmath_type<scalar_t>;
      const scalar_t* ap = a.data_ptr<scalar_t>();
      const scalar_t* np_ = hn.data_ptr<scalar_t>();
      const scalar_t* hp = h_prev.data_ptr<scalar_t>();
      const scalar_t* dtp = dh_t.data_ptr<scalar_t>();
      const scalar_t* dcarry = dh.data_ptr<scalar_t>();
      scalar_t* dxp = dx.data_ptr<scalar_t>();
      scalar_t* dgp = dhg.data_ptr<scalar_t>();
      scalar_t* ddp = dh_direct.data_ptr<scalar_t>();
      for_rows(B, 16 * H, [&](int64_t b) {
        const scalar_t* ar = ap + b * 3 * H;
        scalar_t* dxr = dxp + b * 3 * H;
        scalar_t* dgr = dgp + b * 3 * H;
        if (keep != nullptr && !keep[b]) {  // ended: the gradient passes by
          for (int64_t k = 0; k < 3 * H; ++k) dxr[k] = dgr[k] = scalar_t(0);
          for (int64_t j = 0; j < H; ++j) ddp[b * H + j] = dcarry[b * H + j];
          return;
        }
        for (int64_t j = 0; j < H; ++j) {
          const acc r = acc(ar[j]), z = acc(ar[H + j]), n = acc(ar[2 * H + j]);
          const acc d = acc(dtp[b * H + j]);
          const acc dn = d * (acc(1) - z) * (acc(1) - n * n);  // through h and tanh
          const acc dz = d * (acc(hp[b * H + j]) - n) * z * (acc(1) - z);
          const acc dr = dn * acc(np_[b * H + j]) * r * (acc(1) - r);
          dxr[j] = scalar_t(dr);
          dxr[H + j] = scalar_t(dz);
          dxr[2 * H + j] = scalar_t(dn);
          dgr[j] = scalar_t(dr);
          dgr[H + j] = scalar_t(dz);
          dgr[2 * H + j] = scalar_t(dn * r);  // r scaled W_hn h + b_hn
          ddp[b * H + j] = scalar_t(d * z);  // h_t = ... + z h_{t-1}
        }
      });
    });
    dh = at::empty_like(dh_direct);
    add_product(dh, dh_direct, dhg, w_hh, w_hh_kn);
  }
  const Tensor h_prev_all = at::cat({h0.unsqueeze(0), h_all.narrow(0, 0, T - 1)}, 0);
  const Tensor flat = dhg_all.view({T * B, 3 * H});
  Tensor d_w_hh = at::mm(flat.t(), h_prev_all.reshape({T * B, H}));
  Tensor d_b_hh = flat.sum(0);
  return {dx_all, dh, d_w_hh, d_b_hh};
}

// ------------------------------------------------------------------------------------
// Reset before the product: Cho et al.'s GRU (reset_after=False) and the MGU
// ------------------------------------------------------------------------------------
//
// Cho et al. (2014, Sect. 2.3) reset h_{t-1} before the candidate's recurrent product:
//   r, z = sigmoid(x_{r,z} + h_{t-1} W_{h(r,z)}^T),  n = tanh(x_n + (r h_{t-1}) W_hn^T),
//   h_t = (1 - z) n + z h_{t-1}.
// Every bias_hh block is a constant added to a pre-activation, so the caller folds all of it
// into x_gates. A step is two products: h_{t-1} with the sigmoid blocks, then (r h_{t-1})
// with the candidate block, which has to wait for r.
//
// `tied`: the MGU (Zhou et al. 2016), whose one gate f plays both parts, r = f and
// z = 1 - f, so h_t = (1 - f) h_{t-1} + f n. Its blocks are (f, n); the GRU's (r, z, n).
// S below is the number of sigmoid blocks (2, or 1 tied); the candidate block follows them.

// x_gates (T, B, (S+1)H) = x W_ih^T + b_ih + b_hh. Returns output (T, B, H), h_n, and for
// the backward: acts (T, B, (S+1)H) = the gates and n, rh_all (T, B, H) = r h_{t-1}, h_all.
std::vector<Tensor> reset_first_forward(
    const Tensor& x_gates_in, const Tensor& h0, const Tensor& w_hh, bool tied,
    const c10::optional<Tensor>& mask) {
  const Tensor x_gates = x_gates_in.contiguous();
  const int64_t T = x_gates.size(0), B = x_gates.size(1), H = h0.size(1);
  const int64_t S = tied ? 1 : 2, GH = (S + 1) * H;
  TORCH_CHECK(x_gates.size(2) == GH, "reset_first_forward: ", x_gates.size(2) / H,
              " gate blocks given, expected ", S + 1);
  auto acts = at::empty({T, B, GH}, x_gates.options());
  auto rh_all = at::empty({T, B, H}, x_gates.options());
  auto h_all = at::empty({T, B, H}, x_gates.options());
  auto output = at::empty({T, B, H}, x_gates.options());
  auto h_gates = at::empty({B, S * H}, x_gates.options());  // h_{t-1} W_h(r,z)^T
  auto h_cand = at::empty({B, H}, x_gates.options());       // (r h_{t-1}) W_hn^T
  const Tensor w_gates_t = w_hh.narrow(0, 0, S * H).t();
  const Tensor w_cand_t = w_hh.narrow(0, S * H, H).t();
  const Tensor w_gates_kn = small_batch_operand(w_gates_t, B);
  const Tensor w_cand_kn = small_batch_operand(w_cand_t, B);
  const int64_t grain = std::max<int64_t>(1, 32768 / (10 * H));
  Tensor h = h0.contiguous();
  for (int64_t t = 0; t < T; ++t) {
    add_product(h_gates, Tensor(), h, w_gates_t, w_gates_kn);
    const Tensor xg = x_gates[t];
    Tensor a = acts[t], rh = rh_all[t], h_new = h_all[t];
    const bool* keep = mask_row(mask, t);
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, xg.scalar_type(), "reset_first_gates", [&] {
      using acc = at::opmath_type<scalar_t>;
      const scalar_t* xp = xg.data_ptr<scalar_t>();
      const scalar_t* gp = h_gates.data_ptr<scalar_t>();
      const scalar_t* hp = h.data_ptr<scalar_t>();
      scalar_t* ap = a.data_ptr<scalar_t>();
      scalar_t* rp = rh.data_ptr<scalar_t>();
      at::parallel_for(0, B, grain, [&](int64_t lo, int64_t hi) {
        RowBuffer<acc> buf(S * H);
        acc* u = buf.get();  // r (f), then z
        for (int64_t b = lo; b < hi; ++b) {
          for (int64_t k = 0; k < S * H; ++k) u[k] = acc(xp[b * GH + k]) + acc(gp[b * S * H + k]);
          sigmoid_(u, S * H);
          for (int64_t k = 0; k < S * H; ++k) ap[b * GH + k] = scalar_t(u[k]);
          // the reset acts here, before the candidate's product (Cho et al. Sect. 2.3)
          for (int64_t j = 0; j < H; ++j) rp[b * H + j] = scalar_t(u[j] * acc(hp[b * H + j]));
        }
      });
    });
    add_product(h_cand, Tensor(), rh, w_cand_t, w_cand_kn);
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, xg.scalar_type(), "reset_first_candidate", [&] {
      using acc = at::opmath_type<scalar_t>;
      const scalar_t* xp = xg.data_ptr<scalar_t>();
      const scalar_t* cp = h_cand.data_ptr<scalar_t>();
      const scalar_t* hp = h.data_ptr<scalar_t>();
      scalar_t* ap = a.data_ptr<scalar_t>();
      scalar_t* ho = h_new.data_ptr<scalar_t>();
      at::parallel_for(0, B, grain, [&](int64_t lo, int64_t hi) {
        RowBuffer<acc> buf(H);
        acc* n = buf.get();
        for (int64_t b = lo; b < hi; ++b) {
          for (int64_t j = 0; j < H; ++j) n[j] = acc(xp[b * GH + S * H + j]) + acc(cp[b * H + j]);
          tanh_(n, H);
          scalar_t* ar = ap + b * GH;
          const bool live = keep == nullptr || keep[b];
          for (int64_t j = 0; j < H; ++j) {
            ar[S * H + j] = scalar_t(n[j]);
            // z keeps h_{t-1}: the GRU's own gate, or the MGU's 1 - f
            const acc z = tied ? acc(1) - acc(ar[j]) : acc(ar[H + j]);
            const acc hprev = acc(hp[b * H + j]);
            ho[b * H + j] = live ? scalar_t((acc(1) - z) * n[j] + z * hprev) : hp[b * H + j];
          }
        }
      });
    });
    Tensor out = output[t];
    if (mask.has_value()) {
      at::mul_out(out, h_new, mask->select(0, t).unsqueeze(1));
    } else {
      out.copy_(h_new);
    }
    h = h_new;
  }
  return {output, h.clone(), acts, rh_all, h_all};
}

// Returns d_x_gates (T, B, (S+1)H) (the gradient of every pre-activation), dh0, d_w_hh.
// Per step, backwards: the candidate's pre-activation gradient first, then its product with
// W_hn, which is the gradient of r h_{t-1} and so reaches both r and h_{t-1}; then the
// gates', whose product with W_h(r,z) completes dL/dh_{t-1}.
std::vector<Tensor> reset_first_backward(
    const Tensor& d_output, const Tensor& d_h_n, const Tensor& acts, const Tensor& rh_all,
    const Tensor& h_all, const Tensor& h0, const Tensor& w_hh, bool tied,
    const c10::optional<Tensor>& mask) {
  const int64_t T = acts.size(0), B = acts.size(1), H = h0.size(1);
  const int64_t S = tied ? 1 : 2, GH = (S + 1) * H;
  auto d_gates_all = at::empty({T, B, S * H}, acts.options());
  auto d_cand_all = at::empty({T, B, H}, acts.options());
  Tensor dh = d_h_n.contiguous().clone();
  auto dh_t = at::empty({B, H}, acts.options());
  auto d_rh = at::empty({B, H}, acts.options());
  auto dh_direct = at::empty({B, H}, acts.options());
  const Tensor w_gates = w_hh.narrow(0, 0, S * H), w_cand = w_hh.narrow(0, S * H, H);
  const Tensor w_gates_kn = small_batch_operand(w_gates, B);
  const Tensor w_cand_kn = small_batch_operand(w_cand, B);
  for (int64_t t = T - 1; t >= 0; --t) {
    at::add_out(dh_t, d_output[t], dh);
    const Tensor h_prev = t > 0 ? h_all[t - 1] : h0.contiguous();
    const Tensor a = acts[t];
    Tensor d_gates = d_gates_all[t], d_cand = d_cand_all[t];
    const bool* keep = mask_row(mask, t);
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, acts.scalar_type(), "reset_first_cand_bw", [&] {
      using acc = at::opmath_type<scalar_t>;
      const scalar_t* ap = a.data_ptr<scalar_t>();
      const scalar_t* dtp = dh_t.data_ptr<scalar_t>();
      scalar_t* dcp = d_cand.data_ptr<scalar_t>();
      for_rows(B, 6 * H, [&](int64_t b) {
        const scalar_t* ar = ap + b * GH;
        const bool live = keep == nullptr || keep[b];
        for (int64_t j = 0; j < H; ++j) {
          const acc z = tied ? acc(1) - acc(ar[j]) : acc(ar[H + j]), n = acc(ar[S * H + j]);
          const acc dn = acc(dtp[b * H + j]) * (acc(1) - z) * (acc(1) - n * n);  // h, tanh
          dcp[b * H + j] = live ? scalar_t(dn) : scalar_t(0);
        }
      });
    });
    add_product(d_rh, Tensor(), d_cand, w_cand, w_cand_kn);  // dL/d(r h_{t-1})
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, acts.scalar_type(), "reset_first_gates_bw", [&] {
      using acc = at::opmath_type<scalar_t>;
      const scalar_t* ap = a.data_ptr<scalar_t>();
      const scalar_t* hp = h_prev.data_ptr<scalar_t>();
      const scalar_t* dtp = dh_t.data_ptr<scalar_t>();
      const scalar_t* drp = d_rh.data_ptr<scalar_t>();
      const scalar_t* dcarry = dh.data_ptr<scalar_t>();
      scalar_t* dgp = d_gates.data_ptr<scalar_t>();
      scalar_t* ddp = dh_direct.data_ptr<scalar_t>();
      for_rows(B, 10 * H, [&](int64_t b) {
        const scalar_t* ar = ap + b * GH;
        scalar_t* dgr = dgp + b * S * H;
        if (keep != nullptr && !keep[b]) {  // ended: the gradient passes by
          for (int64_t k = 0; k < S * H; ++k) dgr[k] = scalar_t(0);
          for (int64_t j = 0; j < H; ++j) ddp[b * H + j] = dcarry[b * H + j];
          return;
        }
        for (int64_t j = 0; j < H; ++j) {
          const acc r = acc(ar[j]), n = acc(ar[S * H + j]), hprev = acc(hp[b * H + j]);
          const acc d = acc(dtp[b * H + j]), drh = acc(drp[b * H + j]);
          const acc dr = drh * hprev;  // through r h_{t-1}
          if (tied) {  // f is r and 1 - z: h_t = (1 - f) h_{t-1} + f n
            dgr[j] = scalar_t((dr + d * (n - hprev)) * r * (acc(1) - r));
            ddp[b * H + j] = scalar_t(d * (acc(1) - r) + drh * r);
          } else {
            const acc z = acc(ar[H + j]);
            dgr[j] = scalar_t(dr * r * (acc(1) - r));
            dgr[H + j] = scalar_t(d * (hprev - n) * z * (acc(1) - z));
            ddp[b * H + j] = scalar_t(d * z + drh * r);  // z h_{t-1} and r h_{t-1}
          }
        }
      });
    });
    dh = at::empty_like(dh_direct);
    add_product(dh, dh_direct, d_gates, w_gates, w_gates_kn);
  }
  // weight gradients over all steps at once: the gate blocks saw h_{t-1}, the candidate's
  // block r h_{t-1}
  const Tensor h_prev_all = at::cat({h0.unsqueeze(0), h_all.narrow(0, 0, T - 1)}, 0);
  Tensor d_w_gates = at::mm(d_gates_all.view({T * B, S * H}).t(), h_prev_all.reshape({T * B, H}));
  Tensor d_w_cand = at::mm(d_cand_all.view({T * B, H}).t(), rh_all.reshape({T * B, H}));
  return {at::cat({d_gates_all, d_cand_all}, 2), dh, at::cat({d_w_gates, d_w_cand}, 0)};
}

// ------------------------------------------------------------------------------------
// RNN (tanh or relu); both biases folded into x_gates by the caller
// ------------------------------------------------------------------------------------

std::vector<Tensor> rnn_forward(
    const Tensor& x_gates, const Tensor& h0, const Tensor& w_hh, bool relu,
    const c10::optional<Tensor>& mask) {
  const int64_t T = x_gates.size(0), B = x_gates.size(1), H = h0.size(1);
  auto h_all = at::empty({T, B, H}, x_gates.options());
  auto output = at::empty({T, B, H}, x_gates.options());
  auto pre = at::empty({B, H}, x_gates.options());
  const Tensor w_hh_t = w_hh.t();
  const Tensor w_hh_kn = small_batch_operand(w_hh_t, B);
  Tensor h = h0.contiguous();
  for (int64_t t = 0; t < T; ++t) {
    add_product(pre, x_gates[t], h, w_hh_t, w_hh_kn);
    Tensor h_new = h_all[t];
    const bool* keep = mask_row(mask, t);
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, pre.scalar_type(), "rnn_forward", [&] {
      using acc = at::opmath_type<scalar_t>;
      const scalar_t* pp = pre.data_ptr<scalar_t>();
      const scalar_t* hp = h.data_ptr<scalar_t>();
      scalar_t* ho = h_new.data_ptr<scalar_t>();
      at::parallel_for(0, B, std::max<int64_t>(1, 32768 / (4 * H)), [&](int64_t lo, int64_t hi) {
        RowBuffer<acc> buf(H);
        acc* u = buf.get();
        for (int64_t b = lo; b < hi; ++b) {
          for (int64_t j = 0; j < H; ++j) u[j] = acc(pp[b * H + j]);
          if (relu) {
            for (int64_t j = 0; j < H; ++j) u[j] = u[j] > acc(0) ? u[j] : acc(0);
          } else {
            tanh_(u, H);
          }
          const bool live = keep == nullptr || keep[b];
          for (int64_t j = 0; j < H; ++j) ho[b * H + j] = live ? scalar_t(u[j]) : hp[b * H + j];
        }
      });
    });
    Tensor out = output[t];
    if (mask.has_value()) {
      at::mul_out(out, h_new, mask->select(0, t).unsqueeze(1));
    } else {
      out.copy_(h_new);
    }
    h = h_new;
  }
  return {output, h.clone(), h_all};
}

// Returns d_x_gates (T, B, H) (= dL/d pre-activation), dh0, d_w_hh.
std::vector<Tensor> rnn_backward(
    const Tensor& d_output, const Tensor& d_h_n, const Tensor& h_all, const Tensor& h0,
    const Tensor& w_hh, bool relu, const c10::optional<Tensor>& mask) {
  const int64_t T = h_all.size(0), B = h_all.size(1), H = h0.size(1);
  auto dpre_all = at::empty({T, B, H}, h_all.options());
  Tensor dh = d_h_n.contiguous().clone();
  auto dh_t = at::empty({B, H}, h_all.options());
  const Tensor w_hh_kn = small_batch_operand(w_hh, B);
  for (int64_t t = T - 1; t >= 0; --t) {
    at::add_out(dh_t, d_output[t], dh);
    const Tensor h_t = h_all[t];
    Tensor dpre = dpre_all[t];
    const bool* keep = mask_row(mask, t);
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, h_all.scalar_type(), "rnn_backward", [&] {
      using acc = at::opmath_type<scalar_t>;
      const scalar_t* hp = h_t.data_ptr<scalar_t>();
      const scalar_t* dp = dh_t.data_ptr<scalar_t>();
      scalar_t* op = dpre.data_ptr<scalar_t>();
      for_rows(B, 4 * H, [&](int64_t b) {
        const bool live = keep == nullptr || keep[b];
        for (int64_t j = 0; j < H; ++j) {
          const acc h = acc(hp[b * H + j]), d = acc(dp[b * H + j]);
          const acc slope = relu ? acc(h > acc(0)) : acc(1) - h * h;
          op[b * H + j] = live ? scalar_t(d * slope) : scalar_t(0);
        }
      });
    });
    Tensor dh_prev = at::empty_like(dh);
    add_product(dh_prev, Tensor(), dpre, w_hh, w_hh_kn);
    if (mask.has_value()) {
      dh_prev = at::where(mask->select(0, t).unsqueeze(1), dh_prev, dh);
    }
    dh = dh_prev;
  }
  const Tensor h_prev_all = at::cat({h0.unsqueeze(0), h_all.narrow(0, 0, T - 1)}, 0);
  Tensor d_w_hh = at::mm(dpre_all.view({T * B, H}).t(), h_prev_all.reshape({T * B, H}));
  return {dpre_all, dh, d_w_hh};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lstmkit_fused, m) {
  m.def(
      "lstm_forward(Tensor x_gates, Tensor h0, Tensor c0, Tensor w_hh, Tensor? p_i, "
      "Tensor? p_f, Tensor? p_o, Tensor? w_hr, Tensor? mask, int variant) -> Tensor[]",
      &lstm_forward);
  m.def(
      "lstm_backward(Tensor d_output, Tensor d_h_n, Tensor d_c_n, Tensor acts, Tensor c_all, "
      "Tensor h_all, Tensor m_all, Tensor h0, Tensor c0, Tensor w_hh, Tensor? p_i, "
      "Tensor? p_f, Tensor? p_o, Tensor? w_hr, Tensor? mask, int variant) -> Tensor[]",
      &lstm_backward);
  m.def(
      "gru_forward(Tensor x_gates, Tensor h0, Tensor w_hh, Tensor? b_hh, Tensor? mask) "
      "-> Tensor[]",
      &gru_forward);
  m.def(
      "gru_backward(Tensor d_output, Tensor d_h_n, Tensor acts, Tensor hn_all, Tensor h_all, "
      "Tensor h0, Tensor w_hh, Tensor? mask) -> Tensor[]",
      &gru_backward);
  m.def(
      "reset_first_forward(Tensor x_gates, Tensor h0, Tensor w_hh, bool tied, Tensor? mask) "
      "-> Tensor[]",
      &reset_first_forward);
  m.def(
      "reset_first_backward(Tensor d_output, Tensor d_h_n, Tensor acts, Tensor rh_all, "
      "Tensor h_all, Tensor h0, Tensor w_hh, bool tied, Tensor? mask) -> Tensor[]",
      &reset_first_backward);
  m.def(
      "rnn_forward(Tensor x_gates, Tensor h0, Tensor w_hh, bool relu, Tensor? mask) "
      "-> Tensor[]",
      &rnn_forward);
  m.def(
      "rnn_backward(Tensor d_output, Tensor d_h_n, Tensor h_all, Tensor h0, Tensor w_hh, "
      "bool relu, Tensor? mask) -> Tensor[]",
      &rnn_backward);
}

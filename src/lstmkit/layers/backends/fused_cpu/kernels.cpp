// lstmkit's fused CPU kernels: the time loops of the LSTM family, the GRU and the RNN, with
// their backward passes, in C++ over ATen.
//
// Legend: T time, B batch, H hidden, R state[0] (output) size (H unless the LSTM projects),
// G gate blocks (LSTM 4, or 3 without a forget weight block; GRU 3; RNN 1).
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
// to the compiler's auto-vectorisation.

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

namespace {

using at::Tensor;

// LSTM variants, by which weight blocks exist and how C_{t-1} enters C_t.
enum LSTMKind : int64_t {
  kStandard = 0,  // C = f C_prev + i g; gate blocks (i, f, g, o)
  kCoupled = 1,   // C = (1 - i) C_prev + i g (CIFG); blocks (i, g, o)
  kNoForget = 2,  // C = C_prev + i g (1997); blocks (i, g, o)
};

// In place over n contiguous values: x = 1 / (1 + exp(-x)), and x = tanh(x).
template <typename T>
void sigmoid_(T* x, int64_t n) {
  using Vec = at::vec::Vectorized<T>;
  at::vec::map([](Vec v) { return Vec(T(1)) / (Vec(T(1)) + (Vec(T(0)) - v).exp()); }, x, x, n);
}

template <typename T>
void tanh_(T* x, int64_t n) {
  using Vec = at::vec::Vectorized<T>;
  at::vec::map([](Vec v) { return v.tanh(); }, x, x, n);
}

// A row buffer in the accumulation type, one per thread and call.
template <typename T>
struct RowBuffer {
  std::vector<T> data;
  explicit RowBuffer(int64_t n) : data(static_cast<size_t>(n)) {}
  T* get() { return data.data(); }
};

// Rows of a (B, n) tensor in parallel: small batches stay on one thread, where the grain
// keeps at::parallel_for from paying its start-up for nothing.
template <typename F>
inline void for_rows(int64_t rows, int64_t row_cost, const F& body) {
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(row_cost, 1));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) body(b);
  });
}

const bool* mask_row(const c10::optional<Tensor>& mask, int64_t t) {
  return mask.has_value() ? mask->data_ptr<bool>() + t * mask->size(1) : nullptr;
}

// ------------------------------------------------------------------------------------
// LSTM family
// ------------------------------------------------------------------------------------

// Returns output (T, B, R), h_n (B, R), c_n (B, H), and what the backward reads:
// acts (T, B, G*H) gate activations, c_all (T, B, H) and h_all (T, B, R) the carried states
// after each step, m_all (T, B, H) = o * tanh(C) before the projection (empty without one).
std::vector<Tensor> lstm_forward(
    const Tensor& x_gates, const Tensor& h0, const Tensor& c0, const Tensor& w_hh,
    const c10::optional<Tensor>& p_i, const c10::optional<Tensor>& p_f,
    const c10::optional<Tensor>& p_o, const c10::optional<Tensor>& w_hr,
    const c10::optional<Tensor>& mask, int64_t kind) {
  const int64_t T = x_gates.size(0), B = x_gates.size(1), GH = x_gates.size(2);
  const int64_t H = c0.size(1), R = h0.size(1);
  const bool has_forget = kind == kStandard;
  const bool peephole = p_i.has_value();
  const bool project = w_hr.has_value();
  TORCH_CHECK(GH == (has_forget ? 4 : 3) * H, "lstm_forward: gate blocks do not match kind");

  auto acts = at::empty({T, B, GH}, x_gates.options());
  auto c_all = at::empty({T, B, H}, x_gates.options());
  auto h_all = at::empty({T, B, R}, x_gates.options());
  auto m_all = project ? at::empty({T, B, H}, x_gates.options()) : Tensor();
  auto output = at::empty({T, B, R}, x_gates.options());
  const Tensor w_hh_t = w_hh.t();
  const Tensor w_hr_t = project ? w_hr->t() : Tensor();

  Tensor h = h0.contiguous(), c = c0.contiguous();
  for (int64_t t = 0; t < T; ++t) {
    Tensor z = acts[t];
    at::addmm_out(z, x_gates[t], h, w_hh_t);  // pre-activations, overwritten below
    Tensor c_new = c_all[t];
    Tensor m = project ? m_all[t] : h_all[t];
    const bool* keep = mask_row(mask, t);
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, z.scalar_type(), "lstm_forward", [&] {
      using acc = at::opmath_type<scalar_t>;
      scalar_t* zp = z.data_ptr<scalar_t>();
      const scalar_t* cp = c.data_ptr<scalar_t>();
      scalar_t* cn = c_new.data_ptr<scalar_t>();
      scalar_t* mp = m.data_ptr<scalar_t>();
      const scalar_t* hp = h.data_ptr<scalar_t>();
      const scalar_t* pi = peephole ? p_i->data_ptr<scalar_t>() : nullptr;
      const scalar_t* pf = peephole && has_forget ? p_f->data_ptr<scalar_t>() : nullptr;
      const scalar_t* po = peephole ? p_o->data_ptr<scalar_t>() : nullptr;
      const int64_t gf = H, gg = has_forget ? 2 * H : H, go = has_forget ? 3 * H : 2 * H;
      const int64_t grain = std::max<int64_t>(1, 32768 / (12 * H));
      at::parallel_for(0, B, grain, [&](int64_t begin, int64_t end) {
        RowBuffer<acc> zbuf(GH), cbuf(H), tbuf(H);  // pre-activations, C_t, tanh(C_t)
        acc *za = zbuf.get(), *ca = cbuf.get(), *ta = tbuf.get();
        for (int64_t b = begin; b < end; ++b) {
          scalar_t* zr = zp + b * GH;
          const scalar_t* c_prev = cp + b * H;
          for (int64_t k = 0; k < GH; ++k) za[k] = acc(zr[k]);
          if (peephole) {  // i and f look at C_{t-1}
            for (int64_t j = 0; j < H; ++j) za[j] += acc(pi[j]) * acc(c_prev[j]);
            if (has_forget)
              for (int64_t j = 0; j < H; ++j) za[gf + j] += acc(pf[j]) * acc(c_prev[j]);
          }
          sigmoid_(za, gg);  // i (and f): the blocks before g
          tanh_(za + gg, H);  // g = C~
          for (int64_t j = 0; j < H; ++j) {
            const acc cprev = acc(c_prev[j]), i = za[j], g = za[gg + j];
            if (has_forget) {
              ca[j] = za[gf + j] * cprev + i * g;
            } else if (kind == kCoupled) {
              ca[j] = cprev + i * (g - cprev);  // (1 - i) C_{t-1} + i C~
            } else {
              ca[j] = cprev + i * g;  // the 1997 carrousel
            }
          }
          if (peephole)  // o looks at C_t
            for (int64_t j = 0; j < H; ++j) za[go + j] += acc(po[j]) * ca[j];
          sigmoid_(za + go, H);
          for (int64_t j = 0; j < H; ++j) ta[j] = ca[j];
          tanh_(ta, H);
          // the gates are kept even for an ended row: its gradients are masked to 0 anyway
          for (int64_t k = 0; k < GH; ++k) zr[k] = scalar_t(za[k]);
          const bool live = keep == nullptr || keep[b];
          scalar_t* c_out = cn + b * H;
          scalar_t* m_out = mp + b * (project ? H : R);
          for (int64_t j = 0; j < H; ++j) {
            c_out[j] = live ? scalar_t(ca[j]) : c_prev[j];
            const acc mj = za[go + j] * ta[j];  // o tanh(C)
            m_out[j] = (project || live) ? scalar_t(mj) : hp[b * R + j];
          }
        }
      });
    });
    if (project) {
      Tensor h_new = h_all[t];
      at::mm_out(h_new, m_all[t], w_hr_t);
      if (mask.has_value()) {
        h_new.copy_(at::where(mask->select(0, t).unsqueeze(1), h_new, h));
      }
    }
    Tensor out = output[t];
    if (mask.has_value()) {
      at::mul_out(out, h_all[t], mask->select(0, t).unsqueeze(1));
    } else {
      out.copy_(h_all[t]);
    }
    h = h_all[t];
    c = c_all[t];
  }
  return {output, h.clone(), c.clone(), acts, c_all, h_all, m_all};
}

// Returns d_x_gates (T, B, G*H) (= dL/dz, the gradient of every gate pre-activation), dh0,
// dc0, d_w_hh, d_p_i, d_p_f, d_p_o, d_w_hr (undefined where the layer has none).
std::vector<Tensor> lstm_backward(
    const Tensor& d_output, const Tensor& d_h_n, const Tensor& d_c_n, const Tensor& acts,
    const Tensor& c_all, const Tensor& h_all, const Tensor& m_all, const Tensor& h0,
    const Tensor& c0, const Tensor& w_hh, const c10::optional<Tensor>& p_i,
    const c10::optional<Tensor>& p_f, const c10::optional<Tensor>& p_o,
    const c10::optional<Tensor>& w_hr, const c10::optional<Tensor>& mask, int64_t kind) {
  const int64_t T = acts.size(0), B = acts.size(1), GH = acts.size(2);
  const int64_t H = c0.size(1), R = h0.size(1);
  const bool has_forget = kind == kStandard;
  const bool peephole = p_i.has_value();
  const bool project = w_hr.has_value();
  const auto acc_dtype = at::toOpMathType(acts.scalar_type());

  auto dz_all = at::empty({T, B, GH}, acts.options());
  auto dh_all = project ? at::empty({T, B, R}, acts.options()) : Tensor();
  auto acc_opts = acts.options().dtype(acc_dtype);
  auto d_pi = peephole ? at::zeros({H}, acc_opts) : Tensor();
  auto d_pf = peephole && has_forget ? at::zeros({H}, acc_opts) : Tensor();
  auto d_po = peephole ? at::zeros({H}, acc_opts) : Tensor();
  Tensor dh = d_h_n.contiguous().clone();
  Tensor dc = d_c_n.contiguous().clone();
  auto dh_t = at::empty({B, R}, acts.options());
  auto dm = project ? at::empty({B, H}, acts.options()) : Tensor();
  auto dc_prev = at::empty({B, H}, acts.options());

  for (int64_t t = T - 1; t >= 0; --t) {
    at::add_out(dh_t, d_output[t], dh);
    if (project) at::mm_out(dm, dh_t, *w_hr);
    const Tensor& dm_t = project ? dm : dh_t;
    const Tensor c_prev_t = t > 0 ? c_all[t - 1] : c0;
    const Tensor c_t = c_all[t];
    const Tensor a_t = acts[t];
    Tensor dz = dz_all[t];
    const bool* keep = mask_row(mask, t);
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, acts.scalar_type(), "lstm_backward", [&] {
      using acc = at::opmath_type<scalar_t>;
      const scalar_t* ap = a_t.data_ptr<scalar_t>();
      const scalar_t* cp = c_prev_t.data_ptr<scalar_t>();
      const scalar_t* ct = c_t.data_ptr<scalar_t>();
      const scalar_t* dmp = dm_t.data_ptr<scalar_t>();
      const scalar_t* dcp = dc.data_ptr<scalar_t>();
      scalar_t* dzp = dz.data_ptr<scalar_t>();
      scalar_t* dcn = dc_prev.data_ptr<scalar_t>();
      const scalar_t* pi = peephole ? p_i->data_ptr<scalar_t>() : nullptr;
      const scalar_t* pf = peephole && has_forget ? p_f->data_ptr<scalar_t>() : nullptr;
      const scalar_t* po = peephole ? p_o->data_ptr<scalar_t>() : nullptr;
      acc* dpi = peephole ? d_pi.data_ptr<acc>() : nullptr;
      acc* dpf = peephole && has_forget ? d_pf.data_ptr<acc>() : nullptr;
      acc* dpo = peephole ? d_po.data_ptr<acc>() : nullptr;
      const int64_t gf = H, gg = has_forget ? 2 * H : H, go = has_forget ? 3 * H : 2 * H;
      auto rows = [&](int64_t begin, int64_t end) {
        RowBuffer<acc> tbuf(H);
        acc* tc = tbuf.get();
        for (int64_t b = begin; b < end; ++b) {
          const scalar_t* ar = ap + b * GH;
          scalar_t* dzr = dzp + b * GH;
          if (keep != nullptr && !keep[b]) {  // ended: nothing happened at this step
            for (int64_t k = 0; k < GH; ++k) dzr[k] = scalar_t(0);
            for (int64_t j = 0; j < H; ++j) dcn[b * H + j] = dcp[b * H + j];
            continue;
          }
          for (int64_t j = 0; j < H; ++j) tc[j] = acc(ct[b * H + j]);
          tanh_(tc, H);  // recomputed: cheaper than storing a (T, B, H) buffer
          for (int64_t j = 0; j < H; ++j) {
            const acc i = acc(ar[j]), g = acc(ar[gg + j]), o = acc(ar[go + j]);
            const acc cprev = acc(cp[b * H + j]);
            const acc dmj = acc(dmp[b * H + j]);
            const acc dzo = dmj * tc[j] * o * (acc(1) - o);  // through h = o tanh(C) and o's σ
            acc dct = acc(dcp[b * H + j]) + dmj * o * (acc(1) - tc[j] * tc[j]);  // ... tanh(C)
            if (peephole) dct += acc(po[j]) * dzo;  // o's peephole saw C_t
            acc dzi, dcprev;
            if (has_forget) {
              const acc f = acc(ar[gf + j]);
              dzi = dct * g * i * (acc(1) - i);
              const acc dzf = dct * cprev * f * (acc(1) - f);
              dzr[gf + j] = scalar_t(dzf);
              dcprev = dct * f;
              if (peephole) {
                dcprev += acc(pf[j]) * dzf;
                dpf[j] += dzf * cprev;
              }
            } else if (kind == kCoupled) {
              dzi = dct * (g - cprev) * i * (acc(1) - i);
              dcprev = dct * (acc(1) - i);
            } else {  // the carrousel passes dC on unchanged
              dzi = dct * g * i * (acc(1) - i);
              dcprev = dct;
            }
            if (peephole) {
              dcprev += acc(pi[j]) * dzi;
              dpi[j] += dzi * cprev;
              dpo[j] += dzo * acc(ct[b * H + j]);
            }
            dzr[j] = scalar_t(dzi);
            dzr[gg + j] = scalar_t(dct * i * (acc(1) - g * g));
            dzr[go + j] = scalar_t(dzo);
            dcn[b * H + j] = scalar_t(dcprev);
          }
        }
      };
      if (peephole) {  // the peephole sums add into shared (H,) buffers: one thread
        rows(0, B);
      } else {
        at::parallel_for(0, B, std::max<int64_t>(1, 32768 / (16 * H)), rows);
      }
    });
    Tensor dh_prev = at::mm(dz, w_hh);
    if (mask.has_value()) {
      const Tensor live = mask->select(0, t).unsqueeze(1);
      dh_prev = at::where(live, dh_prev, dh);  // ended: the gradient passes by
      if (project) {
        Tensor slot = dh_all[t];
        at::mul_out(slot, dh_t, live);
      }
    } else if (project) {
      dh_all[t].copy_(dh_t);
    }
    dh = dh_prev;
    std::swap(dc, dc_prev);
  }

  // weight gradients over all steps at once: one product each
  const Tensor h_prev_all = at::cat({h0.unsqueeze(0), h_all.narrow(0, 0, T - 1)}, 0);
  const Tensor flat_dz = dz_all.view({T * B, GH});
  Tensor d_w_hh = at::mm(flat_dz.t(), h_prev_all.reshape({T * B, R}));
  Tensor d_w_hr = project ? at::mm(dh_all.view({T * B, R}).t(), m_all.view({T * B, H}))
                          : Tensor();
  auto cast = [&](const Tensor& x) { return x.defined() ? x.to(acts.scalar_type()) : x; };
  return {dz_all, dh, dc, d_w_hh, cast(d_pi), cast(d_pf), cast(d_po), d_w_hr};
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
  Tensor h = h0.contiguous();
  for (int64_t t = 0; t < T; ++t) {
    if (b_hh.has_value()) {
      at::addmm_out(hg, *b_hh, h, w_hh_t);
    } else {
      at::mm_out(hg, h, w_hh_t);
    }
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
    dh = at::addmm(dh_direct, dhg, w_hh);
  }
  const Tensor h_prev_all = at::cat({h0.unsqueeze(0), h_all.narrow(0, 0, T - 1)}, 0);
  const Tensor flat = dhg_all.view({T * B, 3 * H});
  Tensor d_w_hh = at::mm(flat.t(), h_prev_all.reshape({T * B, H}));
  Tensor d_b_hh = flat.sum(0);
  return {dx_all, dh, d_w_hh, d_b_hh};
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
  Tensor h = h0.contiguous();
  for (int64_t t = 0; t < T; ++t) {
    at::addmm_out(pre, x_gates[t], h, w_hh_t);
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
    Tensor dh_prev = at::mm(dpre, w_hh);
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

TORCH_LIBRARY(lstmkit_fused, m) {
  m.def(
      "lstm_forward(Tensor x_gates, Tensor h0, Tensor c0, Tensor w_hh, Tensor? p_i, "
      "Tensor? p_f, Tensor? p_o, Tensor? w_hr, Tensor? mask, int kind) -> Tensor[]",
      &lstm_forward);
  m.def(
      "lstm_backward(Tensor d_output, Tensor d_h_n, Tensor d_c_n, Tensor acts, Tensor c_all, "
      "Tensor h_all, Tensor m_all, Tensor h0, Tensor c0, Tensor w_hh, Tensor? p_i, "
      "Tensor? p_f, Tensor? p_o, Tensor? w_hr, Tensor? mask, int kind) -> Tensor[]",
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
      "rnn_forward(Tensor x_gates, Tensor h0, Tensor w_hh, bool relu, Tensor? mask) "
      "-> Tensor[]",
      &rnn_forward);
  m.def(
      "rnn_backward(Tensor d_output, Tensor d_h_n, Tensor h_all, Tensor h0, Tensor w_hh, "
      "bool relu, Tensor? mask) -> Tensor[]",
      &rnn_backward);
}

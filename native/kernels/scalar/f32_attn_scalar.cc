// Portable attention tiles (contract in attn/kernels.h): the reference for the SIMD versions
// and what CPUs without AVX2 run. Score tiles are transposed, s[j * lds + r] = key j against
// query row r. The loops are written so the compiler can vectorize them with baseline SSE2
// (inner loops run over contiguous rows or columns).
#include <cmath>
#include <cstdint>

#include "attn/kernels.h"

namespace attn {

void f32_attn_qk_panel__scalar(const float* k, size_t k_st, size_t nk, const float* qp, size_t d, float* s,
                               size_t lds) {
  // Two keys at a time against the 16 rows of the panel: 32 accumulators, which the compiler
  // keeps in 8 SSE registers.
  size_t j = 0;
  for (; j + 2 <= nk; j += 2) {
    float a0[kAttnPanel] = {}, a1[kAttnPanel] = {};
    const float* k0 = k + j * k_st;
    const float* k1 = k0 + k_st;
    for (size_t p = 0; p < d; ++p) {
      const float* q = qp + p * kAttnPanel;
      const float x0 = k0[p], x1 = k1[p];
      for (size_t r = 0; r < kAttnPanel; ++r) {
        a0[r] += x0 * q[r];
        a1[r] += x1 * q[r];
      }
    }
    for (size_t r = 0; r < kAttnPanel; ++r) {
      s[j * lds + r] = a0[r];
      s[(j + 1) * lds + r] = a1[r];
    }
  }
  if (j < nk) {
    float a0[kAttnPanel] = {};
    const float* k0 = k + j * k_st;
    for (size_t p = 0; p < d; ++p) {
      for (size_t r = 0; r < kAttnPanel; ++r) a0[r] += k0[p] * qp[p * kAttnPanel + r];
    }
    for (size_t r = 0; r < kAttnPanel; ++r) s[j * lds + r] = a0[r];
  }
}

void f32_attn_qk_rows__scalar(const float* k, size_t k_st, size_t nk, const float* q, size_t q_st, size_t nr,
                              size_t d, float* s, size_t lds) {
  for (size_t j = 0; j < nk; ++j) {
    for (size_t r = 0; r < nr; ++r) s[j * lds + r] = f32_vec_dot__scalar(k + j * k_st, q + r * q_st, d);
  }
}

void f32_attn_softmax__scalar(float* s, size_t lds, size_t nk, size_t nr, const int32_t* vis, float scale,
                              float* m, float* l, float* alpha) {
  for (size_t r = 0; r < nr; ++r) {
    const size_t visible = vis[r] > 0 ? static_cast<size_t>(vis[r]) : 0;
    // m_new <- max(m, max_j s), with s <- scale * s and -inf where j >= vis
    float mx = m[r];
    for (size_t j = 0; j < nk; ++j) {
      const float x = j < visible ? s[j * lds + r] * scale : -INFINITY;
      s[j * lds + r] = x;
      mx = x > mx ? x : mx;
    }
    // A row with no finite score yet has m_new = -inf, and exp(-inf - (-inf)) would be NaN:
    // subtract 0 instead, so its p and alpha come out as exp(-inf) = 0.
    const float m_use = mx == -INFINITY ? 0.f : mx;
    // alpha <- exp(m - m_new); p <- exp(s - m_new); l <- alpha * l + rowsum(p)
    const float a = std::exp(m[r] - m_use);
    float sum = 0.f;
    for (size_t j = 0; j < nk; ++j) {
      const float p = std::exp(s[j * lds + r] - m_use);
      s[j * lds + r] = p;
      sum += p;
    }
    l[r] = a * l[r] + sum;
    m[r] = mx;
    alpha[r] = a;
  }
}

void f32_attn_pv__scalar(const float* p, size_t ldp, const float* v, size_t v_st, const int32_t* vis,
                         const float* alpha, float* o, size_t ldo, size_t nr, size_t dv) {
  // One row and 16 columns at a time, the columns accumulated in registers over the row's keys.
  constexpr size_t kCols = 16;
  for (size_t r = 0; r < nr; ++r) {
    float* orow = o + r * ldo;
    const size_t visible = vis[r] > 0 ? static_cast<size_t>(vis[r]) : 0;
    size_t c0 = 0;
    for (; c0 + kCols <= dv; c0 += kCols) {
      float acc[kCols];
      for (size_t c = 0; c < kCols; ++c) acc[c] = orow[c0 + c] * alpha[r];
      for (size_t j = 0; j < visible; ++j) {
        const float pj = p[j * ldp + r];
        const float* vj = v + j * v_st + c0;
        for (size_t c = 0; c < kCols; ++c) acc[c] += pj * vj[c];
      }
      for (size_t c = 0; c < kCols; ++c) orow[c0 + c] = acc[c];
    }
    for (size_t c = c0; c < dv; ++c) {
      float acc = orow[c] * alpha[r];
      for (size_t j = 0; j < visible; ++j) acc += p[j * ldp + r] * v[j * v_st + c];
      orow[c] = acc;
    }
  }
}

}  // namespace attn

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
  for (size_t j = 0; j < nk; ++j) {
    float acc[kAttnPanel] = {};
    const float* kj = k + j * k_st;
    for (size_t p = 0; p < d; ++p) {
      const float kv = kj[p];
      for (size_t r = 0; r < kAttnPanel; ++r) acc[r] += kv * qp[p * kAttnPanel + r];
    }
    for (size_t r = 0; r < kAttnPanel; ++r) s[j * lds + r] = acc[r];
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
  for (size_t r = 0; r < nr; ++r) {
    float* orow = o + r * ldo;
    for (size_t c = 0; c < dv; ++c) orow[c] *= alpha[r];
    const size_t visible = vis[r] > 0 ? static_cast<size_t>(vis[r]) : 0;
    for (size_t j = 0; j < visible; ++j) {
      const float pj = p[j * ldp + r];
      const float* vj = v + j * v_st;
      for (size_t c = 0; c < dv; ++c) orow[c] += pj * vj[c];
    }
  }
}

}  // namespace attn

// Portable attention tiles (contract in attn/kernels.h): the reference for the SIMD versions
// and what CPUs without AVX2 run. Score tiles are transposed, s[j * lds + r] = key j against
// query row r. The loops are written so the compiler can vectorize them with baseline SSE2
// (inner loops run over contiguous rows or columns).
#include <cmath>
#include <cstdint>

#include "attn/half.h"
#include "attn/kernels.h"

namespace attn {

namespace {

// Keys and values as stored: float32, or the bits of a half-precision cache, widened exactly.
inline float widen(float x) { return x; }
template <DType T>
inline float widen(uint16_t x) {
  return T == DType::kF16 ? f16_to_f32(x) : bf16_to_f32(x);
}

template <DType T, class E>
inline float at(const E* x, size_t i) {
  if constexpr (T == DType::kF32) {
    return widen(x[i]);
  } else {
    return widen<T>(x[i]);
  }
}

// f32_vec_dot__scalar's order (attn/kernels.h: a half cache gives the float32 kernel's bits).
template <DType T, class E>
float dot(const E* k, const float* q, size_t n) {
  float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += at<T>(k, i) * q[i];
    s1 += at<T>(k, i + 1) * q[i + 1];
    s2 += at<T>(k, i + 2) * q[i + 2];
    s3 += at<T>(k, i + 3) * q[i + 3];
  }
  for (; i < n; ++i) s0 += at<T>(k, i) * q[i];
  return (s0 + s1) + (s2 + s3);
}

template <DType T, class E>
void qk_rows(const E* k, size_t k_st, size_t nk, const float* q, size_t q_st, size_t nr, size_t d, float* s,
             size_t lds) {
  for (size_t j = 0; j < nk; ++j) {
    for (size_t r = 0; r < nr; ++r) s[j * lds + r] = dot<T>(k + j * k_st, q + r * q_st, d);
  }
}

template <DType T, class E>
void pv(const float* p, size_t ldp, const E* v, size_t v_st, const int32_t* vis, const float* alpha, float* o,
        size_t ldo, size_t nr, size_t dv) {
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
        const E* vj = v + j * v_st + c0;
        for (size_t c = 0; c < kCols; ++c) acc[c] += pj * at<T>(vj, c);
      }
      for (size_t c = 0; c < kCols; ++c) orow[c0 + c] = acc[c];
    }
    for (size_t c = c0; c < dv; ++c) {
      float acc = orow[c] * alpha[r];
      for (size_t j = 0; j < visible; ++j) acc += p[j * ldp + r] * at<T>(v, j * v_st + c);
      orow[c] = acc;
    }
  }
}

}  // namespace

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
  qk_rows<DType::kF32>(k, k_st, nk, q, q_st, nr, d, s, lds);
}

void f16_attn_qk_rows__scalar(const uint16_t* k, size_t k_st, size_t nk, const float* q, size_t q_st, size_t nr,
                              size_t d, float* s, size_t lds) {
  qk_rows<DType::kF16>(k, k_st, nk, q, q_st, nr, d, s, lds);
}

void bf16_attn_qk_rows__scalar(const uint16_t* k, size_t k_st, size_t nk, const float* q, size_t q_st, size_t nr,
                               size_t d, float* s, size_t lds) {
  qk_rows<DType::kBF16>(k, k_st, nk, q, q_st, nr, d, s, lds);
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
  pv<DType::kF32>(p, ldp, v, v_st, vis, alpha, o, ldo, nr, dv);
}

void f16_attn_pv__scalar(const float* p, size_t ldp, const uint16_t* v, size_t v_st, const int32_t* vis,
                         const float* alpha, float* o, size_t ldo, size_t nr, size_t dv) {
  pv<DType::kF16>(p, ldp, v, v_st, vis, alpha, o, ldo, nr, dv);
}

void bf16_attn_pv__scalar(const float* p, size_t ldp, const uint16_t* v, size_t v_st, const int32_t* vis,
                          const float* alpha, float* o, size_t ldo, size_t nr, size_t dv) {
  pv<DType::kBF16>(p, ldp, v, v_st, vis, alpha, o, ldo, nr, dv);
}

}  // namespace attn

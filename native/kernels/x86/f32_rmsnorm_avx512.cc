// AVX-512 RMSNorm over one row (contract in attn/kernels.h; the scalar twin in
// native/kernels/scalar/f32_rmsnorm_scalar.cc is the reference). Shape: x, w, y of n floats.
// The squares are summed in double (each 16-float vector widened to two 8-double halves), so r
// agrees with the scalar set up to the order of a double sum; the scaling pass rounds x * r and
// w * (.) separately, as the scalar set and HF do, with no FMA. Tails are one masked load/store.
#include <immintrin.h>

#include <cmath>

#include "attn/kernels.h"

namespace attn {
namespace {

// Lanes [0, n) set, n in [0, 16].
inline __mmask16 tail_mask(size_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

inline __m512d square_sum(__m512 v, __m512d acc) {
  const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
  const __m512d hi = _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1));
  return _mm512_fmadd_pd(hi, hi, _mm512_fmadd_pd(lo, lo, acc));
}

}  // namespace

void f32_rmsnorm__avx512(const float* x, const float* w, float* y, size_t n, double eps) {
  __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = square_sum(_mm512_loadu_ps(x + i), s0);
    s1 = square_sum(_mm512_loadu_ps(x + i + 16), s1);
  }
  for (; i < n; i += 16) {
    // Masked-off lanes load as 0 and add nothing.
    s0 = square_sum(_mm512_maskz_loadu_ps(tail_mask(n - i < 16 ? n - i : 16), x + i), s0);
  }
  // The horizontal sum by halves (GCC 12's _mm512_reduce_add_pd warns; see f32_exp_avx512.h).
  const __m512d s = _mm512_add_pd(s0, s1);
  const __m256d q = _mm256_add_pd(_mm512_castpd512_pd256(s), _mm512_extractf64x4_pd(s, 1));
  __m128d h = _mm_add_pd(_mm256_castpd256_pd128(q), _mm256_extractf128_pd(q, 1));
  h = _mm_add_sd(h, _mm_unpackhi_pd(h, h));
  const float r = static_cast<float>(1.0 / std::sqrt(_mm_cvtsd_f64(h) / static_cast<double>(n) + eps));
  const __m512 rv = _mm512_set1_ps(r);
  for (i = 0; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(w + i), _mm512_mul_ps(_mm512_loadu_ps(x + i), rv)));
  }
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, w + i), _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), rv)));
  }
}

}  // namespace attn

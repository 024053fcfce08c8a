// AVX2+FMA RMSNorm over one row (contract in attn/kernels.h; the scalar twin in
// native/kernels/scalar/f32_rmsnorm_scalar.cc is the reference). Shape: x, w, y of n floats.
// The squares are summed in double (each 8-float vector widened to two 4-double halves), so r
// agrees with the scalar set up to the order of a double sum; the scaling pass rounds x * r and
// w * (.) separately, as the scalar set and HF do, with no FMA. Tails use masked loads and stores.
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "attn/kernels.h"

namespace attn {
namespace {

// Lanes [0, n) set, n in [0, 8].
inline __m256i tail_mask(size_t n) {
  static const int32_t kBits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kBits + 8 - n));
}

inline __m256d square_sum(__m256 v, __m256d acc) {
  const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
  const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
  return _mm256_fmadd_pd(hi, hi, _mm256_fmadd_pd(lo, lo, acc));
}

}  // namespace

void f32_rmsnorm__avx2(const float* x, const float* w, float* y, size_t n, double eps) {
  // Two accumulators: the FMA chain, not the loads, limits a single one.
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = square_sum(_mm256_loadu_ps(x + i), s0);
    s1 = square_sum(_mm256_loadu_ps(x + i + 8), s1);
  }
  for (; i < n; i += 8) {
    // Masked-off lanes load as 0 and add nothing.
    s0 = square_sum(_mm256_maskload_ps(x + i, tail_mask(n - i < 8 ? n - i : 8)), s0);
  }
  const __m256d s = _mm256_add_pd(s0, s1);
  __m128d h = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
  h = _mm_add_sd(h, _mm_unpackhi_pd(h, h));
  const float r = static_cast<float>(1.0 / std::sqrt(_mm_cvtsd_f64(h) / static_cast<double>(n) + eps));
  const __m256 rv = _mm256_set1_ps(r);
  for (i = 0; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(w + i), _mm256_mul_ps(_mm256_loadu_ps(x + i), rv)));
  }
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, _mm256_mul_ps(_mm256_maskload_ps(w + i, m), _mm256_mul_ps(_mm256_maskload_ps(x + i, m), rv)));
  }
}

}  // namespace attn

// AVX2+FMA SiLU and SwiGLU (contract in attn/kernels.h; the scalar twins in
// native/kernels/scalar/f32_swiglu_scalar.cc are the reference): x / (1 + exp(-x)) with the set's
// vector exp (f32_exp_avx2.h, 1.65e-7 relative). Its saturation gives the IEEE cases: -x above
// 88.376 makes exp +inf and silu -0 (the true value is below 3.5e-37 in magnitude there), -x below
// -87.34 makes exp 0 and silu x, NaN stays NaN. Tails use masked loads and stores.
#include <immintrin.h>

#include <cstdint>

#include "attn/kernels.h"
#include "f32_exp_avx2.h"

namespace attn {
namespace {

// Lanes [0, n) set, n in [0, 8].
inline __m256i tail_mask(size_t n) {
  static const int32_t kBits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kBits + 8 - n));
}

inline __m256 silu(__m256 x) {
  const __m256 e = avx2::exp_ps(_mm256_xor_ps(x, _mm256_set1_ps(-0.f)));
  return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.f), e));
}

}  // namespace

void f32_silu__avx2(const float* x, float* y, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, silu(_mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, silu(_mm256_maskload_ps(x + i, m)));
  }
}

void f32_swiglu__avx2(const float* gate, const float* up, float* y, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_mul_ps(silu(_mm256_loadu_ps(gate + i)), _mm256_loadu_ps(up + i)));
  }
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, _mm256_mul_ps(silu(_mm256_maskload_ps(gate + i, m)), _mm256_maskload_ps(up + i, m)));
  }
}

}  // namespace attn

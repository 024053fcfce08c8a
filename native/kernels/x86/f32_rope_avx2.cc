// AVX2 rotary position embedding on one token's heads (contract in attn/kernels.h; the scalar twin
// in native/kernels/scalar/f32_rope_scalar.cc is the reference, matched bit for bit: separate
// multiplies and an add or subtract, no FMA, as torch's q * cos + rotate_half(q) * sin).
// Shape: x, y [heads, head_dim]; cos, sin [half]. Both halves of a pair are loaded before either
// is stored, so y may be x. Tails use masked loads and stores.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "attn/kernels.h"

namespace attn {
namespace {

// Lanes [0, n) set, n in [0, 8].
inline __m256i tail_mask(size_t n) {
  static const int32_t kBits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kBits + 8 - n));
}

}  // namespace

void f32_rope__avx2(const float* x, float* y, const float* cos, const float* sin, size_t heads,
                    size_t head_dim, size_t half) {
  for (size_t h = 0; h < heads; ++h) {
    const float* xh = x + h * head_dim;
    float* yh = y + h * head_dim;
    size_t i = 0;
    for (; i + 8 <= half; i += 8) {
      const __m256 a = _mm256_loadu_ps(xh + i), b = _mm256_loadu_ps(xh + half + i);
      const __m256 c = _mm256_loadu_ps(cos + i), s = _mm256_loadu_ps(sin + i);
      _mm256_storeu_ps(yh + i, _mm256_sub_ps(_mm256_mul_ps(a, c), _mm256_mul_ps(b, s)));
      _mm256_storeu_ps(yh + half + i, _mm256_add_ps(_mm256_mul_ps(b, c), _mm256_mul_ps(a, s)));
    }
    if (i < half) {
      const __m256i m = tail_mask(half - i);
      const __m256 a = _mm256_maskload_ps(xh + i, m), b = _mm256_maskload_ps(xh + half + i, m);
      const __m256 c = _mm256_maskload_ps(cos + i, m), s = _mm256_maskload_ps(sin + i, m);
      _mm256_maskstore_ps(yh + i, m, _mm256_sub_ps(_mm256_mul_ps(a, c), _mm256_mul_ps(b, s)));
      _mm256_maskstore_ps(yh + half + i, m, _mm256_add_ps(_mm256_mul_ps(b, c), _mm256_mul_ps(a, s)));
    }
    // Dims past rotaryDim pass through (partial rotary); memmove: y may be x.
    if (2 * half < head_dim) std::memmove(yh + 2 * half, xh + 2 * half, (head_dim - 2 * half) * sizeof(float));
  }
}

}  // namespace attn

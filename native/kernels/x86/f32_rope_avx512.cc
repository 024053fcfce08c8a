// AVX-512 rotary position embedding on one token's heads (contract in attn/kernels.h; the scalar
// twin in native/kernels/scalar/f32_rope_scalar.cc is the reference, matched bit for bit: separate
// multiplies and an add or subtract, no FMA, as torch's q * cos + rotate_half(q) * sin).
// Shape: x, y [heads, head_dim]; cos, sin [half]. Both halves of a pair are loaded before either
// is stored, so y may be x. Tails are one masked load and store.
#include <immintrin.h>

#include <cstring>

#include "attn/kernels.h"

namespace attn {
namespace {

// Lanes [0, n) set, n in [0, 16].
inline __mmask16 tail_mask(size_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

}  // namespace

void f32_rope__avx512(const float* x, float* y, const float* cos, const float* sin, size_t heads,
                      size_t head_dim, size_t half) {
  for (size_t h = 0; h < heads; ++h) {
    const float* xh = x + h * head_dim;
    float* yh = y + h * head_dim;
    for (size_t i = 0; i < half; i += 16) {
      // Full vectors get an all-ones mask: one code path, and head dims (64, 128) are multiples.
      const __mmask16 m = tail_mask(half - i < 16 ? half - i : 16);
      const __m512 a = _mm512_maskz_loadu_ps(m, xh + i), b = _mm512_maskz_loadu_ps(m, xh + half + i);
      const __m512 c = _mm512_maskz_loadu_ps(m, cos + i), s = _mm512_maskz_loadu_ps(m, sin + i);
      _mm512_mask_storeu_ps(yh + i, m, _mm512_sub_ps(_mm512_mul_ps(a, c), _mm512_mul_ps(b, s)));
      _mm512_mask_storeu_ps(yh + half + i, m, _mm512_add_ps(_mm512_mul_ps(b, c), _mm512_mul_ps(a, s)));
    }
    // Dims past rotaryDim pass through (partial rotary); memmove: y may be x.
    if (2 * half < head_dim) std::memmove(yh + 2 * half, xh + 2 * half, (head_dim - 2 * half) * sizeof(float));
  }
}

}  // namespace attn

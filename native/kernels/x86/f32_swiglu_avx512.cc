// AVX-512 SiLU and SwiGLU (contract in attn/kernels.h; the scalar twins in
// native/kernels/scalar/f32_swiglu_scalar.cc are the reference): x / (1 + exp(-x)) with the set's
// vector exp (f32_exp_avx512.h, 1.65e-7 relative). Its saturation gives the IEEE cases: -x from
// 88.72 on makes exp +inf and silu -0, -x below -87.34 makes exp 0 and silu x, NaN stays NaN.
// Tails are one masked load and store.
#include <immintrin.h>

#include "attn/kernels.h"
#include "f32_exp_avx512.h"

namespace attn {
namespace {

// Lanes [0, n) set, n in [0, 16].
inline __mmask16 tail_mask(size_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

inline __m512 silu(__m512 x) {
  const __m512 e = avx512::exp_ps(_mm512_xor_ps(x, _mm512_set1_ps(-0.f)));  // -x (DQ's xor)
  return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.f), e));
}

}  // namespace

void f32_silu__avx512(const float* x, float* y, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, silu(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, silu(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

void f32_swiglu__avx512(const float* gate, const float* up, float* y, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(y + i, _mm512_mul_ps(silu(_mm512_loadu_ps(gate + i)), _mm512_loadu_ps(up + i)));
  }
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(silu(_mm512_maskz_loadu_ps(m, gate + i)), _mm512_maskz_loadu_ps(m, up + i)));
  }
}

}  // namespace attn

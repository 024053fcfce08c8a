// AVX2 widening of 16-bit weights to float32 (KernelTable::cvt_*; exact): F16 by F16C's
// vcvtph2ps, BF16 by a 16-bit shift of each lane. Tails in scalar (attn/half.h).
#include <immintrin.h>

#include <cstdint>

#include "attn/half.h"
#include "attn/kernels.h"

namespace attn {

void f16_cvt_f32__avx2(const uint16_t* x, float* y, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
  for (; i < n; ++i) y[i] = f16_to_f32(x[i]);
}

void bf16_cvt_f32__avx2(const uint16_t* x, float* y, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16)));
  }
  for (; i < n; ++i) y[i] = bf16_to_f32(x[i]);
}

}  // namespace attn

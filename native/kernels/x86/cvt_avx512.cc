// AVX-512 widening of 16-bit weights to float32 (KernelTable::cvt_*; exact): F16 by vcvtph2ps,
// BF16 by a 16-bit shift of each lane. Tails in scalar (attn/half.h).
#include <immintrin.h>

#include <cstdint>

#include "attn/half.h"
#include "attn/kernels.h"

namespace attn {

void f16_cvt_f32__avx512(const uint16_t* x, float* y, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i))));
  for (; i < n; ++i) y[i] = f16_to_f32(x[i]);
}

void bf16_cvt_f32__avx512(const uint16_t* x, float* y, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)));
    _mm512_storeu_ps(y + i, _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16)));
  }
  for (; i < n; ++i) y[i] = bf16_to_f32(x[i]);
}

}  // namespace attn

// Probe kernels for AVX-512: the FP32 FMA peak loop and a streaming sum for read bandwidth.
// They measure the machine, not our math: the loops do no useful work beyond keeping the FMA
// ports and the memory system busy, and return a value only so the compiler keeps them.
#include <immintrin.h>

#include <cstddef>

#include "attn/probe.h"
#include "f32_exp_avx512.h"

namespace attn {

// 16 independent accumulators x 16 lanes x 2 flops per FMA.
static_assert(kProbeFmaFlopsPerIter__avx512 == 16 * 16 * 2, "attn/probe.h");

// c <- c * a + b converges to b / (1 - a) = 1, so the values stay normal (no denormal stalls)
// however long it runs. Sixteen chains cover FMA latency (4 cycles) times two 512-bit FMA pipes
// with room to spare (Skylake-X and Zen 4 / Zen 5 alike).
float f32_probe_fma__avx512(size_t iters) {
  const __m512 a = _mm512_set1_ps(0.999999f);
  const __m512 b = _mm512_set1_ps(1e-6f);
  __m512 c[16];
#pragma GCC unroll 16
  for (int j = 0; j < 16; ++j) c[j] = _mm512_set1_ps(0.5f + 0.01f * static_cast<float>(j));
  for (size_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) c[j] = _mm512_fmadd_ps(c[j], a, b);
  }
#pragma GCC unroll 8
  for (int j = 0; j < 8; ++j) c[j] = _mm512_add_ps(c[j], c[j + 8]);
  const __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c[0], c[1]), _mm512_add_ps(c[2], c[3])),
                                 _mm512_add_ps(_mm512_add_ps(c[4], c[5]), _mm512_add_ps(c[6], c[7])));
  return avx512::hsum_ps(s);
}

// Four independent 16-lane sums (64 floats = four cache lines per iteration) so the adds never
// limit the rate: what is left is the memory system.
float f32_probe_sum__avx512(const float* x, size_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + i));
    s1 = _mm512_add_ps(s1, _mm512_loadu_ps(x + i + 16));
    s2 = _mm512_add_ps(s2, _mm512_loadu_ps(x + i + 32));
    s3 = _mm512_add_ps(s3, _mm512_loadu_ps(x + i + 48));
  }
  float total = avx512::hsum_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
  for (; i < n; ++i) total += x[i];
  return total;
}

}  // namespace attn

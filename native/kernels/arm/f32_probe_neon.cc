// Probe kernels for NEON: the FP32 FMA peak loop and a streaming sum for read bandwidth. They
// measure the machine, not our math: the loops keep the FMA pipes and the memory system busy and
// return a value only so the compiler keeps them.
#include <arm_neon.h>

#include <cstddef>

#include "attn/probe.h"

namespace attn {

static_assert(kProbeFmaFlopsPerIter__neon == 16 * 4 * 2, "attn/probe.h: 16 chains x 4 lanes x 2 flops");

// c <- c * a + b converges to b / (1 - a) = 1 and stays normal (see f32_probe_avx2.cc). Sixteen
// chains cover FMA latency (4 cycles) times four FMA pipes (Neoverse V2, Apple M-series).
float f32_probe_fma__neon(size_t iters) {
  const float32x4_t a = vdupq_n_f32(0.999999f), b = vdupq_n_f32(1e-6f);
  float32x4_t c[16];
#pragma GCC unroll 16
  for (int j = 0; j < 16; ++j) c[j] = vdupq_n_f32(0.5f + 0.01f * static_cast<float>(j));
  for (size_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) c[j] = vfmaq_f32(b, c[j], a);
  }
  float32x4_t s = c[0];
#pragma GCC unroll 16
  for (int j = 1; j < 16; ++j) s = vaddq_f32(s, c[j]);
  return vaddvq_f32(s);
}

// Four independent 4-lane sums (16 floats, one cache line per iteration) so the adds never limit
// the rate: what is left is the memory system.
float f32_probe_sum__neon(const float* x, size_t n) {
  float32x4_t s0 = vdupq_n_f32(0.f), s1 = s0, s2 = s0, s3 = s0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = vaddq_f32(s0, vld1q_f32(x + i));
    s1 = vaddq_f32(s1, vld1q_f32(x + i + 4));
    s2 = vaddq_f32(s2, vld1q_f32(x + i + 8));
    s3 = vaddq_f32(s3, vld1q_f32(x + i + 12));
  }
  float total = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
  for (; i < n; ++i) total += x[i];
  return total;
}

}  // namespace attn

// Probe kernels with no -m flags: the fallback when the CPU has no AVX2+FMA (and the only set on
// arm64). Written as fixed-width lanes so the compiler can map them onto its baseline vectors
// (SSE2 on x86-64, NEON on arm64); the peak they measure is what such a build can reach.
#include <cstddef>

#include "attn/probe.h"

namespace attn {

namespace {
constexpr size_t kLanes = 32;
}  // namespace

// kLanes independent chains x 2 flops (a multiply and an add, fused or not).
static_assert(kProbeFmaFlopsPerIter__scalar == kLanes * 2, "attn/probe.h");

// c <- c * a + b converges to 1 and stays normal; see f32_probe_avx2.cc.
float f32_probe_fma__scalar(size_t iters) {
  float c[kLanes];
  for (size_t j = 0; j < kLanes; ++j) c[j] = 0.5f + 0.01f * static_cast<float>(j);
  for (size_t i = 0; i < iters; ++i) {
    for (size_t j = 0; j < kLanes; ++j) c[j] = c[j] * 0.999999f + 1e-6f;
  }
  float total = 0.0f;
  for (size_t j = 0; j < kLanes; ++j) total += c[j];
  return total;
}

// Eight independent partial sums: lane j only ever adds x[i + j], so vectorizing it needs no
// reassociation (no -ffast-math).
float f32_probe_sum__scalar(const float* x, size_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (size_t j = 0; j < 8; ++j) s[j] += x[i + j];
  }
  float total = 0.0f;
  for (size_t j = 0; j < 8; ++j) total += s[j];
  for (; i < n; ++i) total += x[i];
  return total;
}

}  // namespace attn

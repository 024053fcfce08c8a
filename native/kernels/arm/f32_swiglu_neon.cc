// NEON SiLU and SwiGLU (contract in attn/kernels.h; the scalar twins in
// native/kernels/scalar/f32_swiglu_scalar.cc are the reference): x / (1 + exp(-x)) with the set's
// vector exp (f32_exp_neon.h, 1.65e-7 relative, bit-identical to the AVX2 one). Its saturation
// gives the IEEE cases: -x above 88.376 makes exp +inf and silu -0, -x below -87.34 makes exp 0
// and silu x, NaN stays NaN. A tail of 1-3 elements goes through a 4-float stack copy, so it gets
// the same vector math and no element past n is touched.
#include <arm_neon.h>

#include <cstring>

#include "attn/kernels.h"
#include "f32_exp_neon.h"

namespace attn {
namespace {

inline float32x4_t silu(float32x4_t x) {
  return vdivq_f32(x, vaddq_f32(vdupq_n_f32(1.f), neon::exp_ps(vnegq_f32(x))));
}

}  // namespace

void f32_silu__neon(const float* x, float* y, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, silu(vld1q_f32(x + i)));
  if (i < n) {
    float buf[4] = {0.f, 0.f, 0.f, 0.f};
    std::memcpy(buf, x + i, (n - i) * sizeof(float));
    vst1q_f32(buf, silu(vld1q_f32(buf)));
    std::memcpy(y + i, buf, (n - i) * sizeof(float));
  }
}

void f32_swiglu__neon(const float* gate, const float* up, float* y, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_f32(silu(vld1q_f32(gate + i)), vld1q_f32(up + i)));
  if (i < n) {
    float g[4] = {0.f, 0.f, 0.f, 0.f}, u[4] = {0.f, 0.f, 0.f, 0.f};
    std::memcpy(g, gate + i, (n - i) * sizeof(float));
    std::memcpy(u, up + i, (n - i) * sizeof(float));
    vst1q_f32(g, vmulq_f32(silu(vld1q_f32(g)), vld1q_f32(u)));
    std::memcpy(y + i, g, (n - i) * sizeof(float));
  }
}

}  // namespace attn

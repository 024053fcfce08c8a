// NEON rotary position embedding on one token's heads (contract in attn/kernels.h; the scalar twin
// in native/kernels/scalar/f32_rope_scalar.cc is the reference, matched bit for bit: separate
// multiplies and an add or subtract, no FMA, as torch's q * cos + rotate_half(q) * sin).
// Shape: x, y [heads, head_dim]; cos, sin [half]. Both halves of a pair are loaded before either
// is stored, so y may be x. The last half % 4 pairs run the same math one at a time.
#include <arm_neon.h>

#include <cstring>

#include "attn/kernels.h"

namespace attn {

void f32_rope__neon(const float* x, float* y, const float* cos, const float* sin, size_t heads,
                    size_t head_dim, size_t half) {
  for (size_t h = 0; h < heads; ++h) {
    const float* xh = x + h * head_dim;
    float* yh = y + h * head_dim;
    size_t i = 0;
    for (; i + 4 <= half; i += 4) {
      const float32x4_t a = vld1q_f32(xh + i), b = vld1q_f32(xh + half + i);
      const float32x4_t c = vld1q_f32(cos + i), s = vld1q_f32(sin + i);
      vst1q_f32(yh + i, vsubq_f32(vmulq_f32(a, c), vmulq_f32(b, s)));
      vst1q_f32(yh + half + i, vaddq_f32(vmulq_f32(b, c), vmulq_f32(a, s)));
    }
    for (; i < half; ++i) {
      const float a = xh[i], b = xh[i + half];
      yh[i] = a * cos[i] - b * sin[i];
      yh[i + half] = b * cos[i] + a * sin[i];
    }
    // Dims past rotaryDim pass through (partial rotary); memmove: y may be x.
    if (2 * half < head_dim) std::memmove(yh + 2 * half, xh + 2 * half, (head_dim - 2 * half) * sizeof(float));
  }
}

}  // namespace attn

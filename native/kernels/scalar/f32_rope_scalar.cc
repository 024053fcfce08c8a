// Rotary position embedding on one token's heads (contract in attn/kernels.h), Hugging Face's
// rotate_half pairing (i, i + half), not interleaved neighbours. Shape: x, y [heads, head_dim];
// cos, sin [half] for this token's position. The reference the SIMD sets match bit for bit
// (-ffp-contract=off keeps x * c - x' * s two products and a subtraction, as torch computes it).
#include <cstring>

#include "attn/kernels.h"

namespace attn {

void f32_rope__scalar(const float* x, float* y, const float* cos, const float* sin, size_t heads,
                      size_t head_dim, size_t half) {
  for (size_t h = 0; h < heads; ++h) {
    const float* xh = x + h * head_dim;
    float* yh = y + h * head_dim;
    for (size_t i = 0; i < half; ++i) {
      const float a = xh[i], b = xh[i + half];
      yh[i] = a * cos[i] - b * sin[i];
      yh[i + half] = b * cos[i] + a * sin[i];
    }
    // Dims past rotaryDim pass through (partial rotary); memmove: y may be x.
    if (2 * half < head_dim) std::memmove(yh + 2 * half, xh + 2 * half, (head_dim - 2 * half) * sizeof(float));
  }
}

}  // namespace attn

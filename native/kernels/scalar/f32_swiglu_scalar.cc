// SiLU and SwiGLU (contract in attn/kernels.h): the reference the SIMD sets match, and the kernels
// on CPUs without them. torch's float32 formula x / (1 + exp(-x)), so the IEEE cases fall out of
// it: exp(-x) = inf (x < -88.7) gives -0, exp(-x) = 0 gives x, NaN stays NaN, silu(-inf) = NaN.
#include <cmath>

#include "attn/kernels.h"

namespace attn {

void f32_silu__scalar(const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = x[i] / (1.f + std::exp(-x[i]));
}

void f32_swiglu__scalar(const float* gate, const float* up, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const float s = gate[i] / (1.f + std::exp(-gate[i]));
    y[i] = s * up[i];
  }
}

}  // namespace attn

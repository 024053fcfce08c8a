// GPT-2's row ops (attn/model_ops.h), in double like lib/js/ops.ts.
#include "attn/model_ops.h"

#include <cmath>

namespace attn {

void layer_norm(const float* x, const float* gamma, const float* beta, float* y, size_t rows, size_t width,
                double eps) {
  for (size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * width;
    float* yr = y + r * width;
    double sum = 0;
    for (size_t i = 0; i < width; ++i) sum += xr[i];
    const double mean = sum / static_cast<double>(width);
    double squares = 0;
    for (size_t i = 0; i < width; ++i) {
      const double d = xr[i] - mean;
      squares += d * d;
    }
    const double inv = 1 / std::sqrt(squares / static_cast<double>(width) + eps);
    for (size_t i = 0; i < width; ++i) yr[i] = static_cast<float>((xr[i] - mean) * inv * gamma[i] + beta[i]);
  }
}

void gelu_tanh(float* x, size_t n) {
  const double c = std::sqrt(2 / M_PI);
  for (size_t i = 0; i < n; ++i) {
    const double v = x[i];
    x[i] = static_cast<float>(0.5 * v * (1 + std::tanh(c * (v + 0.044715 * v * v * v))));
  }
}

void embed_row(const void* table, DType dtype, size_t row, size_t width, float* dst, bool accumulate) {
  const size_t at = row * width;
  for (size_t i = 0; i < width; ++i) {
    float v;
    switch (dtype) {
      case DType::kF16: v = f16_to_f32(static_cast<const uint16_t*>(table)[at + i]); break;
      case DType::kBF16: v = bf16_to_f32(static_cast<const uint16_t*>(table)[at + i]); break;
      default: v = static_cast<const float*>(table)[at + i];
    }
    dst[i] = accumulate ? dst[i] + v : v;
  }
}

}  // namespace attn

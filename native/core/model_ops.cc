// GPT-2's row ops (attn/model_ops.h), in double like lib/js/ops.ts; GELU on the thread team.
#include "attn/model_ops.h"

#include <algorithm>
#include <cmath>
#include <mutex>

#include "attn/threads.h"

namespace attn {

namespace {

// Elements of GELU below which one thread is faster than waking the team. Each is a libm tanh
// in double (~25 ns), so even a decode step's 3072 (GPT-2 small) are worth splitting: serial,
// they were 1.5-2.7 ms of a batch-of-8 step.
constexpr size_t kGeluSerial = 512;

}  // namespace

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
  auto run = [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      const double v = x[i];
      x[i] = static_cast<float>(0.5 * v * (1 + std::tanh(c * (v + 0.044715 * v * v * v))));
    }
  };
  if (n < kGeluSerial || num_threads() == 1 || in_parallel()) {
    run(0, n);
    return;
  }
  std::lock_guard<std::mutex> lock(compute_lock());
  parallel(num_threads(), [&](Team& team) {
    const size_t size = static_cast<size_t>(team.size()), rank = static_cast<size_t>(team.rank());
    const size_t per = (n + size - 1) / size;
    run(std::min(n, rank * per), std::min(n, (rank + 1) * per));
  });
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

// RMSNorm over one row (contract in attn/kernels.h): the reference the SIMD sets match, and the
// kernel on CPUs without them. Shape: x, w, y of n floats.
#include <cmath>

#include "attn/kernels.h"

namespace attn {

void f32_rmsnorm__scalar(const float* x, const float* w, float* y, size_t n, double eps) {
  // Squares summed in double: a float sum of 8192 squares could lose ~1e-4 relative to the order
  // of additions, and the double sum makes every set (and the JS backend) agree on r.
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float r = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(n) + eps));
  // Two roundings, x * r then w * (.), as HF: weight * (hidden_states * rsqrt(...)).
  for (size_t i = 0; i < n; ++i) y[i] = w[i] * (x[i] * r);
}

}  // namespace attn

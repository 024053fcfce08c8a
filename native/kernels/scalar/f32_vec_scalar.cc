// Portable vector primitives: the reference every SIMD variant must match, and the kernels
// used on CPUs without AVX2 (or when a test forces the scalar table).
#include <cmath>

#include "attn/kernels.h"

namespace attn {

float f32_vec_dot__scalar(const float* a, const float* b, size_t n) {
  // Four partial sums: the same association the SIMD kernels use for short vectors is not
  // required, but independent chains keep the scalar path from being latency bound.
  float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

void f32_vec_axpy__scalar(float* y, const float* x, float a, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void f32_vec_scale__scalar(float* y, float a, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] *= a;
}

float f32_vec_max__scalar(const float* x, size_t n) {
  float m = -INFINITY;
  for (size_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

float f32_vec_expsum__scalar(float* x, float max, size_t n) {
  float sum = 0.f;
  for (size_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  return sum;
}

void f32_vec_softcap__scalar(float* x, float scale, float cap, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] * scale / cap);
}

}  // namespace attn

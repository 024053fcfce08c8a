// NEON vector primitives (contract in attn/kernels.h): dot, axpy, scale, max, expsum and softcap
// over contiguous floats. NEON has no masked loads, so a tail of 1-3 elements goes through a
// 4-float stack copy where it needs the vector math (exp, tanh) and a scalar loop elsewhere; no
// element past n is touched. The scalar twin in native/kernels/scalar/f32_vec_scalar.cc is the
// reference.
#include <arm_neon.h>

#include <cmath>
#include <cstring>

#include "attn/kernels.h"
#include "f32_exp_neon.h"

namespace attn {

float f32_vec_dot__neon(const float* a, const float* b, size_t n) {
  // Four accumulators hide the FMA latency (4 cycles, 2-4 pipes on current cores).
  float32x4_t s0 = vdupq_n_f32(0.f), s1 = s0, s2 = s0, s3 = s0;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
    s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
  }
  for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
  float total = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
  for (; i < n; ++i) total += a[i] * b[i];
  return total;
}

void f32_vec_axpy__neon(float* y, const float* x, float a, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
    vst1q_f32(y + i + 4, vfmaq_n_f32(vld1q_f32(y + i + 4), vld1q_f32(x + i + 4), a));
  }
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
  // The vector lanes fuse the multiply-add, so the tail does too (one rounding, as std::fma).
  for (; i < n; ++i) y[i] = std::fma(a, x[i], y[i]);
}

void f32_vec_scale__neon(float* y, float a, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_n_f32(vld1q_f32(y + i), a));
  for (; i < n; ++i) y[i] *= a;
}

float f32_vec_max__neon(const float* x, size_t n) {
  float32x4_t m0 = vdupq_n_f32(-INFINITY), m1 = m0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    m0 = vmaxq_f32(m0, vld1q_f32(x + i));
    m1 = vmaxq_f32(m1, vld1q_f32(x + i + 4));
  }
  for (; i + 4 <= n; i += 4) m0 = vmaxq_f32(m0, vld1q_f32(x + i));
  float m = vmaxvq_f32(vmaxq_f32(m0, m1));
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

float f32_vec_expsum__neon(float* x, float max, size_t n) {
  const float32x4_t mv = vdupq_n_f32(max);
  float32x4_t s0 = vdupq_n_f32(0.f), s1 = s0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const float32x4_t e0 = neon::exp_ps(vsubq_f32(vld1q_f32(x + i), mv));
    const float32x4_t e1 = neon::exp_ps(vsubq_f32(vld1q_f32(x + i + 4), mv));
    vst1q_f32(x + i, e0);
    vst1q_f32(x + i + 4, e1);
    s0 = vaddq_f32(s0, e0);
    s1 = vaddq_f32(s1, e1);
  }
  for (; i + 4 <= n; i += 4) {
    const float32x4_t e = neon::exp_ps(vsubq_f32(vld1q_f32(x + i), mv));
    vst1q_f32(x + i, e);
    s0 = vaddq_f32(s0, e);
  }
  if (i < n) {
    // Pad with -inf: exp(-inf) = 0 adds nothing to the sum.
    float buf[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    std::memcpy(buf, x + i, (n - i) * sizeof(float));
    const float32x4_t e = neon::exp_ps(vsubq_f32(vld1q_f32(buf), mv));
    vst1q_f32(buf, e);
    std::memcpy(x + i, buf, (n - i) * sizeof(float));
    s1 = vaddq_f32(s1, e);
  }
  return vaddvq_f32(vaddq_f32(s0, s1));
}

void f32_vec_softcap__neon(float* x, float scale, float cap, size_t n) {
  const float32x4_t sv = vdupq_n_f32(scale), capv = vdupq_n_f32(cap);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t t = neon::tanh_ps(vdivq_f32(vmulq_f32(vld1q_f32(x + i), sv), capv));
    vst1q_f32(x + i, vmulq_f32(t, capv));
  }
  if (i < n) {
    float buf[4] = {0.f, 0.f, 0.f, 0.f};
    std::memcpy(buf, x + i, (n - i) * sizeof(float));
    const float32x4_t t = neon::tanh_ps(vdivq_f32(vmulq_f32(vld1q_f32(buf), sv), capv));
    vst1q_f32(buf, vmulq_f32(t, capv));
    std::memcpy(x + i, buf, (n - i) * sizeof(float));
  }
}

}  // namespace attn

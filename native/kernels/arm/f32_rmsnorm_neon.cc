// NEON RMSNorm over one row (contract in attn/kernels.h; the scalar twin in
// native/kernels/scalar/f32_rmsnorm_scalar.cc is the reference). Shape: x, w, y of n floats.
// The squares are summed in double (each 4-float vector widened to two 2-double halves), so r
// agrees with the scalar set up to the order of a double sum; the scaling pass rounds x * r and
// w * (.) separately, as the scalar set and HF do, with no FMA. NEON has no masked loads: the
// last n % 4 elements run the same math one at a time.
#include <arm_neon.h>

#include <cmath>

#include "attn/kernels.h"

namespace attn {

void f32_rmsnorm__neon(const float* x, const float* w, float* y, size_t n, double eps) {
  float64x2_t s0 = vdupq_n_f64(0.0), s1 = s0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float32x4_t v = vld1q_f32(x + i);
    const float64x2_t lo = vcvt_f64_f32(vget_low_f32(v)), hi = vcvt_high_f64_f32(v);
    s0 = vfmaq_f64(s0, lo, lo);
    s1 = vfmaq_f64(s1, hi, hi);
  }
  double sum = vaddvq_f64(vaddq_f64(s0, s1));
  for (; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float r = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(n) + eps));
  for (i = 0; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_f32(vld1q_f32(w + i), vmulq_n_f32(vld1q_f32(x + i), r)));
  for (; i < n; ++i) y[i] = w[i] * (x[i] * r);
}

}  // namespace attn

// Vectorized exp and tanh for the NEON kernels (AArch64 Advanced SIMD; the functions live in
// attn::neon so no other translation unit sees them).
//
// exp on 4 lanes, the same XNNPACK "rr2_p5" scheme as the AVX2 set (f32_exp_avx2.h), operation for
// operation, so both give bit-identical results: x = n*ln2 + t with n = round(x / ln2) (taken from
// the low bits of x/ln2 + magic, which also builds 2^n in the exponent field without a
// conversion) and |t| <= ln2/2 (ln2 in a hi/lo pair), then e^x = 2^n + 2^n * t * p(t) with a
// degree-5 minimax p. Max relative error against the exact e^x over [-87.33, 88.37]: 1.65e-7.
// Below -87.34 the result is exactly 0 (so exp(-inf) = 0 and masked scores vanish); above 88.376
// it is +inf; NaN stays NaN.
#pragma once
#include <arm_neon.h>

namespace attn {
namespace neon {

inline float32x4_t exp_ps(float32x4_t x) {
  const float32x4_t magic = vdupq_n_f32(0x1.8000FEp23f);  // 1.5 * 2^23 + 127: rounds, adds the bias
  // vfmaq_f32(a, b, c) = a + b * c, one rounding.
  float32x4_t n = vfmaq_f32(magic, x, vdupq_n_f32(0x1.715476p+0f));
  const float32x4_t s = vreinterpretq_f32_u32(vshlq_n_u32(vreinterpretq_u32_f32(n), 23));  // 2^n
  n = vsubq_f32(n, magic);
  float32x4_t t = vfmaq_f32(x, n, vdupq_n_f32(-0x1.62E400p-1f));
  t = vfmaq_f32(t, n, vdupq_n_f32(-0x1.7F7D1Cp-20f));
  float32x4_t p = vfmaq_f32(vdupq_n_f32(0x1.573A1Ap-5f), vdupq_n_f32(0x1.0F9F9Cp-7f), t);
  p = vfmaq_f32(vdupq_n_f32(0x1.555A80p-3f), p, t);
  p = vfmaq_f32(vdupq_n_f32(0x1.FFFDC6p-2f), p, t);
  p = vfmaq_f32(vdupq_n_f32(0x1.FFFFF6p-1f), p, t);
  t = vmulq_f32(t, s);
  float32x4_t f = vfmaq_f32(s, t, p);
  // x < ln(FLT_MIN): 0 (this also turns the NaN that x = -inf produces above into 0).
  const uint32x4_t tiny = vcltq_f32(x, vdupq_n_f32(-87.33654f));
  f = vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(f), tiny));
  return vbslq_f32(vcgtq_f32(x, vdupq_n_f32(88.3762626f)), vdupq_n_f32(__builtin_inff()), f);
}

// tanh: Cephes tanhf, as in f32_exp_avx2.h. |x| < 0.625 uses an odd polynomial; elsewhere
// 1 - 2/(e^(2|x|) + 1) with the sign put back (e^(2|x|) = inf for |x| > 44 gives exactly 1).
inline float32x4_t tanh_ps(float32x4_t x) {
  const float32x4_t ax = vabsq_f32(x);
  const float32x4_t z = vmulq_f32(x, x);
  float32x4_t p = vdupq_n_f32(-5.70498872745e-3f);
  p = vfmaq_f32(vdupq_n_f32(2.06390887954e-2f), p, z);
  p = vfmaq_f32(vdupq_n_f32(-5.37397155531e-2f), p, z);
  p = vfmaq_f32(vdupq_n_f32(1.33314422036e-1f), p, z);
  p = vfmaq_f32(vdupq_n_f32(-3.33332819422e-1f), p, z);
  const float32x4_t small = vfmaq_f32(x, vmulq_f32(p, z), x);
  const float32x4_t e = exp_ps(vaddq_f32(ax, ax));
  const float32x4_t one = vdupq_n_f32(1.f);
  const float32x4_t mag = vsubq_f32(one, vdivq_f32(vdupq_n_f32(2.f), vaddq_f32(e, one)));
  // Copy the sign bit of x onto the magnitude.
  const float32x4_t large = vbslq_f32(vdupq_n_u32(0x80000000u), x, mag);
  return vbslq_f32(vcltq_f32(ax, vdupq_n_f32(0.625f)), small, large);
}

}  // namespace neon
}  // namespace attn

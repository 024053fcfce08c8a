// Vectorized exp and tanh for the AVX2 kernels (included only by files compiled with -mavx2 -mfma;
// the functions live in attn::avx2 so no baseline translation unit ever sees them).
//
// exp on 8 lanes, the XNNPACK "rr2_p5" scheme: x = n*ln2 + t with n = round(x / ln2) (taken
// from the low bits of x/ln2 + magic, which also builds 2^n in the exponent field without a
// conversion) and |t| <= ln2/2 (ln2 in a hi/lo pair, so t keeps float precision), then
// e^x = 2^n + 2^n * t * p(t) with a degree-5 minimax p. 14 operations, 9 of them FMAs.
// Max relative error against the exact e^x, measured over every float in [-87.33, 88.37]:
// 1.65e-7 (under 3 ulp); test/attention-native.test.ts checks it against Math.exp.
// Below -87.34 (where e^x leaves the normal range) the result is exactly 0, so exp(-inf) = 0 and
// masked scores vanish; above 88.376 (where 2^n would overflow) it is +inf, although e^x stays
// finite up to 88.72 (softmax only ever passes x <= 0); NaN stays NaN.
#pragma once
#include <immintrin.h>

#include <cmath>

namespace attn {
namespace avx2 {

inline __m256 exp_ps(__m256 x) {
  const __m256 magic = _mm256_set1_ps(0x1.8000FEp23f);  // 1.5 * 2^23 + 127: rounds, adds the bias
  __m256 n = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), magic);
  const __m256 s = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(n), 23));  // 2^n
  n = _mm256_sub_ps(n, magic);
  __m256 t = _mm256_fmadd_ps(n, _mm256_set1_ps(-0x1.62E400p-1f), x);
  t = _mm256_fmadd_ps(n, _mm256_set1_ps(-0x1.7F7D1Cp-20f), t);
  __m256 p = _mm256_fmadd_ps(_mm256_set1_ps(0x1.0F9F9Cp-7f), t, _mm256_set1_ps(0x1.573A1Ap-5f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0x1.555A80p-3f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0x1.FFFDC6p-2f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0x1.FFFFF6p-1f));
  t = _mm256_mul_ps(t, s);
  __m256 f = _mm256_fmadd_ps(t, p, s);
  // x < ln(FLT_MIN): 0 (this also turns the NaN that x = -inf produces above into 0).
  f = _mm256_andnot_ps(_mm256_cmp_ps(x, _mm256_set1_ps(-87.33654f), _CMP_LT_OQ), f);
  return _mm256_blendv_ps(f, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, _mm256_set1_ps(88.3762626f), _CMP_GT_OQ));
}

// tanh: Cephes tanhf. |x| < 0.625 uses an odd polynomial (1 - 2/(e^2x + 1) would lose digits to
// cancellation there); elsewhere 1 - 2/(e^(2|x|) + 1) with the sign put back. Max relative error
// over every float in [-88, 88]: 1.96e-7.
inline __m256 tanh_ps(__m256 x) {
  const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.f));
  const __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.f), x);
  const __m256 z = _mm256_mul_ps(x, x);
  __m256 p = _mm256_set1_ps(-5.70498872745e-3f);
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.06390887954e-2f));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.37397155531e-2f));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.33314422036e-1f));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.33332819422e-1f));
  const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
  // e^(2|x|) overflows to +inf for |x| > 44, and 1 - 2/inf = 1 exactly.
  const __m256 e = exp_ps(_mm256_add_ps(ax, ax));
  const __m256 one = _mm256_set1_ps(1.f);
  const __m256 large = _mm256_or_ps(
      sign, _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.f), _mm256_add_ps(e, one))));
  return _mm256_blendv_ps(large, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ));
}

}  // namespace avx2
}  // namespace attn

// Vectorized exp and tanh for the AVX2 kernels (included only by files compiled with -mavx2 -mfma;
// the functions live in attn::avx2 so no baseline translation unit ever sees them).
//
// exp: Cephes expf on 8 lanes. x = n*ln2 + r with n = round(x / ln2) and |r| <= ln2/2 (ln2 split
// in a hi/lo pair so r is exact to float precision), e^r by a degree-7 polynomial, 2^n built in
// the exponent bits. Max relative error against the exact e^x, measured over every float in
// [-87.3, 88.0]: 1.19e-7 (2^-23); test/attention-native.test.ts checks it against Math.exp.
// Below -87.34 (where e^x leaves the normal range) the result is exactly 0, so exp(-inf) = 0
// and masked scores vanish; above 88.38 it is +inf; NaN stays NaN.
#pragma once
#include <immintrin.h>

#include <cmath>

namespace attn {
namespace avx2 {

inline __m256 exp_ps(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.33654f);  // ln(FLT_MIN): below it e^x is subnormal
  const __m256 hi = _mm256_set1_ps(88.37626f);   // ln(FLT_MAX)
  // maxps/minps return their second operand when either is NaN: x goes second so NaN propagates.
  const __m256 underflow = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  const __m256 overflow = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
  __m256 xc = _mm256_min_ps(hi, _mm256_max_ps(lo, x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  xc = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
  xc = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), xc);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, xc, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, xc, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, xc, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, xc, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, xc, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(xc, xc), _mm256_add_ps(xc, _mm256_set1_ps(1.f)));
  // n is in [-126, 127] after the clamp, so 2^n is a normal float.
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  const __m256 r = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
  return _mm256_blendv_ps(_mm256_andnot_ps(underflow, r), _mm256_set1_ps(INFINITY), overflow);
}

// tanh: Cephes tanhf. |x| < 0.625 uses an odd polynomial (1 - 2/(e^2x + 1) would lose digits to
// cancellation there); elsewhere 1 - 2/(e^(2|x|) + 1) with the sign put back. Max relative error
// over every float in [-88, 88]: 1.45e-7.
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

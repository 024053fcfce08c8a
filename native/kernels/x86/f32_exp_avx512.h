// Vectorized exp and tanh (and two horizontal reductions) for the AVX-512 kernels (included only by files compiled with
// -mavx512f -mavx512dq ...; the functions live in attn::avx512 so no baseline or AVX2 translation
// unit ever sees them: PyTorch's native/cpu/README.md ODR warning).
//
// exp on 16 lanes, XNNPACK's "rr2_p5_scalef" scheme: x = n*ln2 + t with n = round(x * log2(e))
// and |t| <= ln2/2 (ln2 as a hi/lo pair, so t keeps float precision), then
//   e^x = 2^n * (1 + t * p(t)),   p a degree-4 minimax polynomial (the AVX2 set's coefficients),
// and vscalefps applies 2^n: it saturates to +inf past the top of the range and to 0 below it
// on its own, where the AVX2 version builds 2^n in the exponent field and needs two blends.
// 11 operations, 7 of them FMAs, plus one compare that only serves the NaN rule below.
// Max relative error against e^x in double, measured over every float in [-87.33654, 88.72]
// through f32_vec_expsum__avx512: 1.65e-7 (under 3 ulp, at x = 5.8377; the same polynomial as the
// AVX2 set, so the same bound). Below -87.34 (where e^x leaves the normal range) the result is exactly 0, as in the
// AVX2 set, so exp(-inf) = 0 and masked scores vanish without denormals reaching the PV FMAs;
// from 88.72 on it is +inf; NaN stays NaN.
#pragma once
#include <immintrin.h>

namespace attn {
namespace avx512 {

inline __m512 exp_ps(__m512 x) {
  // +inf would give t = inf - inf = NaN; 89 already rounds to n = 128, so 2^n * (1 + ...) is +inf.
  // min(89, x) returns x when x is NaN (vminps returns its second operand on unordered input).
  const __m512 xc = _mm512_min_ps(_mm512_set1_ps(89.f), x);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(0x1.715476p+0f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 t = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62E400p-1f), xc);
  t = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7F7D1Cp-20f), t);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(0x1.0F9F9Cp-7f), t, _mm512_set1_ps(0x1.573A1Ap-5f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0x1.555A80p-3f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0x1.FFFDC6p-2f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0x1.FFFFF6p-1f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.f));
  // x >= ln(FLT_MIN) or NaN ("not less than", unordered true) keeps its value; the rest, -inf
  // included (whose t above is NaN), becomes 0.
  const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.33654f), _CMP_NLT_UQ);
  return _mm512_maskz_scalef_ps(keep, p, n);
}

// Horizontal sum and max of 16 lanes. GCC 12's _mm512_reduce_{add,max}_ps go through
// _mm256_undefined_pd and warn (-Wuninitialized) in every caller; these halve with DQ's extract.
inline float hsum_ps(__m512 v) {
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

inline float hmax_ps(__m512 v) {
  const __m256 h = _mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}

// tanh: Cephes tanhf, as in the AVX2 set. |x| < 0.625 uses an odd polynomial (1 - 2/(e^2x + 1)
// would lose digits to cancellation there); elsewhere 1 - 2/(e^(2|x|) + 1) with the sign put back.
inline __m512 tanh_ps(__m512 x) {
  const __m512 ax = _mm512_abs_ps(x);
  const __m512 z = _mm512_mul_ps(x, x);
  __m512 p = _mm512_set1_ps(-5.70498872745e-3f);
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(2.06390887954e-2f));
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-5.37397155531e-2f));
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(1.33314422036e-1f));
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-3.33332819422e-1f));
  const __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, z), x, x);
  // e^(2|x|) is +inf for |x| > 44, and 1 - 2/inf = 1 exactly.
  const __m512 e = exp_ps(_mm512_add_ps(ax, ax));
  const __m512 one = _mm512_set1_ps(1.f);
  const __m512 large_abs = _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.f), _mm512_add_ps(e, one)));
  // Sign of x onto |tanh|: bits of large_abs where the constant is 0x7fffffff, of x elsewhere.
  const __m512 large = _mm512_castsi512_ps(_mm512_ternarylogic_epi32(
      _mm512_set1_epi32(0x7fffffff), _mm512_castps_si512(large_abs), _mm512_castps_si512(x), 0xCA));
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.625f), _CMP_LT_OQ), large, small);
}

}  // namespace avx512
}  // namespace attn

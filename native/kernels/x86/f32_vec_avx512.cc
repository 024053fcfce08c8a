// AVX-512 vector primitives (contract in attn/kernels.h): dot, axpy, scale, max, expsum and
// softcap over contiguous floats. Tails are one masked load and store (no element past n is
// touched, and a masked-off lane never faults). The scalar twin in
// native/kernels/scalar/f32_vec_scalar.cc is the reference.
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "attn/kernels.h"
#include "f32_exp_avx512.h"

namespace attn {
namespace {

// Lanes [0, n) set, n in [0, 16].
inline __mmask16 tail_mask(size_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

}  // namespace

float f32_vec_dot__avx512(const float* a, const float* b, size_t n) {
  // Four independent accumulators: at two loads per FMA the load ports, not the FMA latency,
  // set the pace.
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
    s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
  }
  for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
  }
  return avx512::hsum_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

void f32_vec_axpy__avx512(float* y, const float* x, float a, size_t n) {
  const __m512 av = _mm512_set1_ps(a);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(av, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  }
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

void f32_vec_scale__avx512(float* y, float a, size_t n) {
  const __m512 av = _mm512_set1_ps(a);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_mul_ps(av, _mm512_loadu_ps(y + i)));
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(av, _mm512_maskz_loadu_ps(m, y + i)));
  }
}

float f32_vec_max__avx512(const float* x, size_t n) {
  const __m512 ninf = _mm512_set1_ps(-INFINITY);
  __m512 m0 = ninf, m1 = ninf;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    m0 = _mm512_max_ps(m0, _mm512_loadu_ps(x + i));
    m1 = _mm512_max_ps(m1, _mm512_loadu_ps(x + i + 16));
  }
  for (; i + 16 <= n; i += 16) m0 = _mm512_max_ps(m0, _mm512_loadu_ps(x + i));
  // Masked-off lanes keep -inf, which never wins.
  if (i < n) m1 = _mm512_max_ps(m1, _mm512_mask_loadu_ps(ninf, tail_mask(n - i), x + i));
  return avx512::hmax_ps(_mm512_max_ps(m0, m1));
}

float f32_vec_expsum__avx512(float* x, float max, size_t n) {
  const __m512 mv = _mm512_set1_ps(max);
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 e0 = avx512::exp_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), mv));
    const __m512 e1 = avx512::exp_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), mv));
    _mm512_storeu_ps(x + i, e0);
    _mm512_storeu_ps(x + i + 16, e1);
    s0 = _mm512_add_ps(s0, e0);
    s1 = _mm512_add_ps(s1, e1);
  }
  for (; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i < 16 ? n - i : 16);
    const __m512 e = avx512::exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mv));
    _mm512_mask_storeu_ps(x + i, m, e);
    // Lanes past n keep their sum: exp of the zeros loaded there is 1, not 0.
    s0 = _mm512_mask_add_ps(s0, m, s0, e);
  }
  return avx512::hsum_ps(_mm512_add_ps(s0, s1));
}

void f32_vec_softcap__avx512(float* x, float scale, float cap, size_t n) {
  const __m512 sv = _mm512_set1_ps(scale), capv = _mm512_set1_ps(cap);
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i < 16 ? n - i : 16);
    const __m512 s = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), sv);
    const __m512 t = avx512::tanh_ps(_mm512_div_ps(s, capv));
    _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(t, capv));
  }
}

}  // namespace attn

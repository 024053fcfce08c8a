// AVX2+FMA vector primitives (contract in attn/kernels.h): dot, axpy, scale, max, expsum and
// softcap over contiguous floats. Tails use masked loads and stores, so no element past n is
// touched. The scalar twin in native/kernels/scalar/f32_vec_scalar.cc is the reference.
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "attn/kernels.h"
#include "f32_exp_avx2.h"

namespace attn {
namespace {

// Lanes [0, n) set, n in [0, 8].
inline __m256i tail_mask(size_t n) {
  static const int32_t kBits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kBits + 8 - n));
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace

float f32_vec_dot__avx2(const float* a, const float* b, size_t n) {
  // Four accumulators hide the FMA latency (4 cycles, 2 per cycle).
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

void f32_vec_axpy__avx2(float* y, const float* x, float a, size_t n) {
  const __m256 av = _mm256_set1_ps(a);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  }
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, _mm256_fmadd_ps(av, _mm256_maskload_ps(x + i, m), _mm256_maskload_ps(y + i, m)));
  }
}

void f32_vec_scale__avx2(float* y, float a, size_t n) {
  const __m256 av = _mm256_set1_ps(a);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(av, _mm256_loadu_ps(y + i)));
  if (i < n) {
    const __m256i m = tail_mask(n - i);
    _mm256_maskstore_ps(y + i, m, _mm256_mul_ps(av, _mm256_maskload_ps(y + i, m)));
  }
}

float f32_vec_max__avx2(const float* x, size_t n) {
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
  __m256 m0 = ninf, m1 = ninf;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
    m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + i + 8));
  }
  for (; i + 8 <= n; i += 8) m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
  if (i < n) {
    // Masked-off lanes load as 0, which must not win over negative values: blend in -inf.
    const __m256i m = tail_mask(n - i);
    m1 = _mm256_max_ps(m1, _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + i, m), _mm256_castsi256_ps(m)));
  }
  return hmax(_mm256_max_ps(m0, m1));
}

float f32_vec_expsum__avx2(float* x, float max, size_t n) {
  const __m256 mv = _mm256_set1_ps(max);
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 e0 = avx2::exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
    const __m256 e1 = avx2::exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), mv));
    _mm256_storeu_ps(x + i, e0);
    _mm256_storeu_ps(x + i + 8, e1);
    s0 = _mm256_add_ps(s0, e0);
    s1 = _mm256_add_ps(s1, e1);
  }
  for (; i < n; i += 8) {
    const __m256i m = tail_mask(n - i < 8 ? n - i : 8);
    const __m256 e = avx2::exp_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), mv));
    _mm256_maskstore_ps(x + i, m, e);
    s0 = _mm256_add_ps(s0, _mm256_and_ps(e, _mm256_castsi256_ps(m)));
  }
  return hsum(_mm256_add_ps(s0, s1));
}

void f32_vec_softcap__avx2(float* x, float scale, float cap, size_t n) {
  const __m256 sv = _mm256_set1_ps(scale), capv = _mm256_set1_ps(cap);
  for (size_t i = 0; i < n; i += 8) {
    const __m256i m = tail_mask(n - i < 8 ? n - i : 8);
    const __m256 s = _mm256_mul_ps(_mm256_maskload_ps(x + i, m), sv);
    const __m256 t = avx2::tanh_ps(_mm256_div_ps(s, capv));
    _mm256_maskstore_ps(x + i, m, _mm256_mul_ps(t, capv));
  }
}

}  // namespace attn

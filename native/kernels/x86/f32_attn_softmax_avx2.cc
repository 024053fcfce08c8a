// AVX2+FMA online-softmax step on a transposed score tile (contract in attn/kernels.h):
// s[j * lds + r] = key j against query row r, so one vector holds 8 rows of the same key and the
// running max and sum advance down the key axis with no horizontal reductions. Two passes per
// vector of rows (the max, then exp and sum, the probabilities overwriting the scores); vectors
// whose rows all see every key of the step skip the per-key masking.
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "attn/kernels.h"
#include "f32_exp_avx2.h"

namespace attn {
namespace {

// The online-softmax step for 8 rows (one vector) down the key axis of a transposed tile.
// kMasked: keys j >= vis count as -inf.
template <bool kMasked>
void softmax_rows(float* col, size_t lds, size_t nk, __m256i vis, float scale, float* m, float* l,
                  float* alpha) {
  const __m256 ninf = _mm256_set1_ps(-INFINITY), sv = _mm256_set1_ps(scale);
  const __m256 m_old = _mm256_loadu_ps(m);
  // m_new <- max(m, max_j scale * s)
  __m256 mx0 = m_old, mx1 = ninf;
  size_t j = 0;
  for (; j + 2 <= nk; j += 2) {
    __m256 x0 = _mm256_mul_ps(_mm256_loadu_ps(col + j * lds), sv);
    __m256 x1 = _mm256_mul_ps(_mm256_loadu_ps(col + (j + 1) * lds), sv);
    if (kMasked) {
      const __m256i jv = _mm256_set1_epi32(static_cast<int32_t>(j));
      x0 = _mm256_blendv_ps(ninf, x0, _mm256_castsi256_ps(_mm256_cmpgt_epi32(vis, jv)));
      x1 = _mm256_blendv_ps(ninf, x1, _mm256_castsi256_ps(_mm256_cmpgt_epi32(vis, _mm256_add_epi32(jv, _mm256_set1_epi32(1)))));
    }
    mx0 = _mm256_max_ps(mx0, x0);
    mx1 = _mm256_max_ps(mx1, x1);
  }
  if (j < nk) {
    __m256 x0 = _mm256_mul_ps(_mm256_loadu_ps(col + j * lds), sv);
    if (kMasked) {
      x0 = _mm256_blendv_ps(ninf, x0, _mm256_castsi256_ps(_mm256_cmpgt_epi32(vis, _mm256_set1_epi32(static_cast<int32_t>(j)))));
    }
    mx0 = _mm256_max_ps(mx0, x0);
  }
  const __m256 mx = _mm256_max_ps(mx0, mx1);
  // A row with no finite score yet has m_new = -inf, and exp(-inf - (-inf)) would be NaN:
  // subtract 0 instead, so its p and alpha come out as exp(-inf) = 0.
  const __m256 m_use = _mm256_blendv_ps(mx, _mm256_setzero_ps(), _mm256_cmp_ps(mx, ninf, _CMP_EQ_OQ));
  const __m256 neg = _mm256_sub_ps(_mm256_setzero_ps(), m_use);
  // alpha <- exp(m - m_new)
  const __m256 a = avx2::exp_ps(_mm256_add_ps(m_old, neg));
  // p <- exp(scale * s - m_new), 0 past vis; l <- alpha * l + rowsum(p). scale * s is rounded
  // exactly as in the max pass (no FMA), so the row max gives exp(0) = 1: an FMA would keep the
  // product's rounding error, which for logits near 1e10 and beyond sends exp to 0 or infinity.
  __m256 sum0 = _mm256_setzero_ps(), sum1 = _mm256_setzero_ps();
  for (j = 0; j + 2 <= nk; j += 2) {
    __m256 p0 = avx2::exp_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(col + j * lds), sv), neg));
    __m256 p1 = avx2::exp_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(col + (j + 1) * lds), sv), neg));
    if (kMasked) {
      // And-ing with the mask also clears whatever NaN an unmasked garbage score produced.
      const __m256i jv = _mm256_set1_epi32(static_cast<int32_t>(j));
      p0 = _mm256_and_ps(p0, _mm256_castsi256_ps(_mm256_cmpgt_epi32(vis, jv)));
      p1 = _mm256_and_ps(p1, _mm256_castsi256_ps(_mm256_cmpgt_epi32(vis, _mm256_add_epi32(jv, _mm256_set1_epi32(1)))));
    }
    _mm256_storeu_ps(col + j * lds, p0);
    _mm256_storeu_ps(col + (j + 1) * lds, p1);
    sum0 = _mm256_add_ps(sum0, p0);
    sum1 = _mm256_add_ps(sum1, p1);
  }
  if (j < nk) {
    __m256 p0 = avx2::exp_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(col + j * lds), sv), neg));
    if (kMasked) {
      p0 = _mm256_and_ps(p0, _mm256_castsi256_ps(_mm256_cmpgt_epi32(vis, _mm256_set1_epi32(static_cast<int32_t>(j)))));
    }
    _mm256_storeu_ps(col + j * lds, p0);
    sum0 = _mm256_add_ps(sum0, p0);
  }
  _mm256_storeu_ps(l, _mm256_fmadd_ps(a, _mm256_loadu_ps(l), _mm256_add_ps(sum0, sum1)));
  _mm256_storeu_ps(m, mx);
  _mm256_storeu_ps(alpha, a);
}

}  // namespace

void f32_attn_softmax__avx2(float* s, size_t lds, size_t nk, size_t nr, const int32_t* vis, float scale,
                            float* m, float* l, float* alpha) {
  for (size_t r = 0; r < nr; r += 8) {
    const __m256i visv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(vis + r));
    // Rows that see every key of the step (the common case) skip the per-key masking.
    const bool all_visible = _mm256_movemask_ps(_mm256_castsi256_ps(
                                 _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(nk)), visv))) == 0;
    if (all_visible) {
      softmax_rows<false>(s + r, lds, nk, visv, scale, m + r, l + r, alpha + r);
    } else {
      softmax_rows<true>(s + r, lds, nk, visv, scale, m + r, l + r, alpha + r);
    }
  }
}

}  // namespace attn

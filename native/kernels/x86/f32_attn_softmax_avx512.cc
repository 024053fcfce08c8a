// AVX-512 online-softmax step on a transposed score tile (contract in attn/kernels.h):
// s[j * lds + r] = key j against query row r, so one zmm holds 16 rows of the same key and the
// running max and sum advance down the key axis with no horizontal reductions. Two passes per
// vector of rows (the max, then exp and sum, the probabilities overwriting the scores). The key
// limit is an opmask per key (vis > j), applied by the masked multiply and the zero-masked exp
// themselves, so masking costs one compare per key; rows that all see every key skip even that.
// nr is a multiple of 8, so a last vector of 8 rows loads and stores under a row mask.
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "attn/kernels.h"
#include "f32_exp_avx512.h"

namespace attn {
namespace {

// The online-softmax step for up to 16 rows (lanes in `rows`) down the key axis.
// kMasked: keys j >= vis count as -inf.
template <bool kMasked>
void softmax_rows(float* col, size_t lds, size_t nk, __mmask16 rows, __m512i vis, float scale, float* m,
                  float* l, float* alpha) {
  const __m512 ninf = _mm512_set1_ps(-INFINITY), sv = _mm512_set1_ps(scale);
  const __m512 m_old = _mm512_mask_loadu_ps(ninf, rows, m);
  // Lanes of key j that count: the rows' own, and (kMasked) only where j < vis.
  auto live = [&](size_t j) -> __mmask16 {
    return kMasked ? _mm512_mask_cmpgt_epi32_mask(rows, vis, _mm512_set1_epi32(static_cast<int32_t>(j))) : rows;
  };
  // m_new <- max(m, max_j scale * s), -inf where the key is masked
  __m512 mx0 = m_old, mx1 = ninf;
  size_t j = 0;
  for (; j + 2 <= nk; j += 2) {
    const __mmask16 k0 = live(j), k1 = live(j + 1);
    mx0 = _mm512_max_ps(mx0, _mm512_mask_mul_ps(ninf, k0, _mm512_maskz_loadu_ps(k0, col + j * lds), sv));
    mx1 = _mm512_max_ps(mx1, _mm512_mask_mul_ps(ninf, k1, _mm512_maskz_loadu_ps(k1, col + (j + 1) * lds), sv));
  }
  if (j < nk) {
    const __mmask16 k0 = live(j);
    mx0 = _mm512_max_ps(mx0, _mm512_mask_mul_ps(ninf, k0, _mm512_maskz_loadu_ps(k0, col + j * lds), sv));
  }
  const __m512 mx = _mm512_max_ps(mx0, mx1);
  // A row with no finite score yet has m_new = -inf, and exp(-inf - (-inf)) would be NaN:
  // subtract 0 instead, so its p and alpha come out as exp(-inf) = 0.
  const __m512 m_use = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(mx, ninf, _CMP_EQ_OQ), mx, _mm512_setzero_ps());
  const __m512 neg = _mm512_sub_ps(_mm512_setzero_ps(), m_use);
  // alpha <- exp(m - m_new)
  const __m512 a = avx512::exp_ps(_mm512_add_ps(m_old, neg));
  // p <- exp(scale * s - m_new), 0 past vis; l <- alpha * l + rowsum(p). scale * s is rounded
  // exactly as in the max pass (a multiply, then an add: no FMA), so the row max gives exp(0) = 1:
  // an FMA would keep the product's rounding error, which for logits near 1e10 and beyond sends
  // exp to 0 or infinity. Masked keys store 0 (the zero-masked move), whatever garbage, NaN
  // included, the score held.
  __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
  for (j = 0; j + 2 <= nk; j += 2) {
    const __mmask16 k0 = live(j), k1 = live(j + 1);
    const __m512 x0 = _mm512_mul_ps(_mm512_maskz_loadu_ps(k0, col + j * lds), sv);
    const __m512 x1 = _mm512_mul_ps(_mm512_maskz_loadu_ps(k1, col + (j + 1) * lds), sv);
    const __m512 p0 = _mm512_maskz_mov_ps(k0, avx512::exp_ps(_mm512_add_ps(x0, neg)));
    const __m512 p1 = _mm512_maskz_mov_ps(k1, avx512::exp_ps(_mm512_add_ps(x1, neg)));
    _mm512_mask_storeu_ps(col + j * lds, rows, p0);
    _mm512_mask_storeu_ps(col + (j + 1) * lds, rows, p1);
    sum0 = _mm512_add_ps(sum0, p0);
    sum1 = _mm512_add_ps(sum1, p1);
  }
  if (j < nk) {
    const __mmask16 k0 = live(j);
    const __m512 x0 = _mm512_mul_ps(_mm512_maskz_loadu_ps(k0, col + j * lds), sv);
    const __m512 p0 = _mm512_maskz_mov_ps(k0, avx512::exp_ps(_mm512_add_ps(x0, neg)));
    _mm512_mask_storeu_ps(col + j * lds, rows, p0);
    sum0 = _mm512_add_ps(sum0, p0);
  }
  _mm512_mask_storeu_ps(l, rows, _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(rows, l), _mm512_add_ps(sum0, sum1)));
  _mm512_mask_storeu_ps(m, rows, mx);
  _mm512_mask_storeu_ps(alpha, rows, a);
}

}  // namespace

void f32_attn_softmax__avx512(float* s, size_t lds, size_t nk, size_t nr, const int32_t* vis, float scale,
                              float* m, float* l, float* alpha) {
  const __m512i nkv = _mm512_set1_epi32(static_cast<int32_t>(nk));
  for (size_t r = 0; r < nr; r += 16) {
    const __mmask16 rows = nr - r >= 16 ? __mmask16(0xFFFF) : __mmask16(0x00FF);
    const __m512i visv = _mm512_maskz_loadu_epi32(rows, vis + r);
    // Rows that see every key of the step (the common case) skip the per-key masking.
    if (_mm512_mask_cmplt_epi32_mask(rows, visv, nkv) == 0) {
      softmax_rows<false>(s + r, lds, nk, rows, visv, scale, m + r, l + r, alpha + r);
    } else {
      softmax_rows<true>(s + r, lds, nk, rows, visv, scale, m + r, l + r, alpha + r);
    }
  }
}

}  // namespace attn

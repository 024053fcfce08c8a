// NEON online-softmax step on a transposed score tile (contract in attn/kernels.h):
// s[j * lds + r] = key j against query row r, so one vector holds 4 rows of the same key and the
// running max and sum advance down the key axis with no horizontal reductions. Two passes per
// vector of rows (the max, then exp and sum, the probabilities overwriting the scores); vectors
// whose rows all see every key of the step skip the per-key masking.
#include <arm_neon.h>

#include <cmath>
#include <cstdint>

#include "attn/kernels.h"
#include "f32_exp_neon.h"

namespace attn {
namespace {

// The online-softmax step for 4 rows (one vector) down the key axis of a transposed tile.
// kMasked: keys j >= vis count as -inf.
template <bool kMasked>
void softmax_rows(float* col, size_t lds, size_t nk, int32x4_t vis, float scale, float* m, float* l,
                  float* alpha) {
  const float32x4_t ninf = vdupq_n_f32(-INFINITY);
  const float32x4_t m_old = vld1q_f32(m);
  // m_new <- max(m, max_j scale * s)
  float32x4_t mx0 = m_old, mx1 = ninf;
  size_t j = 0;
  for (; j + 2 <= nk; j += 2) {
    float32x4_t x0 = vmulq_n_f32(vld1q_f32(col + j * lds), scale);
    float32x4_t x1 = vmulq_n_f32(vld1q_f32(col + (j + 1) * lds), scale);
    if (kMasked) {
      x0 = vbslq_f32(vcgtq_s32(vis, vdupq_n_s32(static_cast<int32_t>(j))), x0, ninf);
      x1 = vbslq_f32(vcgtq_s32(vis, vdupq_n_s32(static_cast<int32_t>(j + 1))), x1, ninf);
    }
    mx0 = vmaxq_f32(mx0, x0);
    mx1 = vmaxq_f32(mx1, x1);
  }
  if (j < nk) {
    float32x4_t x0 = vmulq_n_f32(vld1q_f32(col + j * lds), scale);
    if (kMasked) x0 = vbslq_f32(vcgtq_s32(vis, vdupq_n_s32(static_cast<int32_t>(j))), x0, ninf);
    mx0 = vmaxq_f32(mx0, x0);
  }
  const float32x4_t mx = vmaxq_f32(mx0, mx1);
  // A row with no finite score yet has m_new = -inf, and exp(-inf - (-inf)) would be NaN:
  // subtract 0 instead, so its p and alpha come out as exp(-inf) = 0.
  const float32x4_t m_use = vbslq_f32(vceqq_f32(mx, ninf), vdupq_n_f32(0.f), mx);
  const float32x4_t neg = vnegq_f32(m_use);
  // alpha <- exp(m - m_new)
  const float32x4_t a = neon::exp_ps(vaddq_f32(m_old, neg));
  // p <- exp(scale * s - m_new), 0 past vis; l <- alpha * l + rowsum(p). scale * s is rounded
  // exactly as in the max pass (a separate multiply, never fused), so the row max gives
  // exp(0) = 1 even for logits near 1e10 and beyond.
  float32x4_t sum0 = vdupq_n_f32(0.f), sum1 = sum0;
  for (j = 0; j + 2 <= nk; j += 2) {
    float32x4_t p0 = neon::exp_ps(vaddq_f32(vmulq_n_f32(vld1q_f32(col + j * lds), scale), neg));
    float32x4_t p1 = neon::exp_ps(vaddq_f32(vmulq_n_f32(vld1q_f32(col + (j + 1) * lds), scale), neg));
    if (kMasked) {
      // And-ing with the mask also clears whatever NaN an unmasked garbage score produced.
      p0 = vreinterpretq_f32_u32(
          vandq_u32(vreinterpretq_u32_f32(p0), vcgtq_s32(vis, vdupq_n_s32(static_cast<int32_t>(j)))));
      p1 = vreinterpretq_f32_u32(
          vandq_u32(vreinterpretq_u32_f32(p1), vcgtq_s32(vis, vdupq_n_s32(static_cast<int32_t>(j + 1)))));
    }
    vst1q_f32(col + j * lds, p0);
    vst1q_f32(col + (j + 1) * lds, p1);
    sum0 = vaddq_f32(sum0, p0);
    sum1 = vaddq_f32(sum1, p1);
  }
  if (j < nk) {
    float32x4_t p0 = neon::exp_ps(vaddq_f32(vmulq_n_f32(vld1q_f32(col + j * lds), scale), neg));
    if (kMasked) {
      p0 = vreinterpretq_f32_u32(
          vandq_u32(vreinterpretq_u32_f32(p0), vcgtq_s32(vis, vdupq_n_s32(static_cast<int32_t>(j)))));
    }
    vst1q_f32(col + j * lds, p0);
    sum0 = vaddq_f32(sum0, p0);
  }
  vst1q_f32(l, vfmaq_f32(vaddq_f32(sum0, sum1), a, vld1q_f32(l)));
  vst1q_f32(m, mx);
  vst1q_f32(alpha, a);
}

}  // namespace

void f32_attn_softmax__neon(float* s, size_t lds, size_t nk, size_t nr, const int32_t* vis, float scale,
                            float* m, float* l, float* alpha) {
  const int32x4_t nkv = vdupq_n_s32(static_cast<int32_t>(nk));
  for (size_t r = 0; r < nr; r += 4) {
    const int32x4_t visv = vld1q_s32(vis + r);
    // Rows that see every key of the step (the common case) skip the per-key masking.
    const bool all_visible = vmaxvq_u32(vcgtq_s32(nkv, visv)) == 0;
    if (all_visible) {
      softmax_rows<false>(s + r, lds, nk, visv, scale, m + r, l + r, alpha + r);
    } else {
      softmax_rows<true>(s + r, lds, nk, visv, scale, m + r, l + r, alpha + r);
    }
  }
}

}  // namespace attn

// NEON GEMM microkernel f32_gemm_8x12__neon: one 12-column panel of C in 8-row tiles, contract in
// attn/kernels.h (GemmUkernelFn).
//
//   per tile: C (8, 12) (+)= A (8, kc) @ B (kc, 12)   [+ bias (12) when not accumulating]
//
// The tile stays in 24 of the 32 q registers (8 rows x 3 vectors of 4 floats). Each step of k
// loads one row of B (3 vectors) and the 8 values of one column of A into 2 vectors (2 loads
// from a packed panel, a_rs = 1, a_cs = 8; lane loads from any other layout), and issues 24 FMAs
// that take their A operand by lane (fmla v.4s, v.4s, v.s[i]): 29 registers in all. Edge panels (n_valid < 12) load and store their last partial vector lane by lane (NEON has
// no masked loads), so columns past n_valid are never read or written; rows past m re-read the
// last valid row of A and are never stored. Packing, cache blocking and threads live in
// native/core/matmul.cc.
#include <arm_neon.h>

#include <cassert>

#include "attn/kernels.h"

namespace attn {
namespace {

constexpr size_t MR = 8;

// Columns of a panel: kVecs vectors of 4, the last one holding kTail columns (0: all 4).
template <int kVecs, int kTail>
struct Cols {
  static float32x4_t load(const float* p, int v) {
    p += 4 * v;
    if (kTail == 0 || v != kVecs - 1) return vld1q_f32(p);
    if (kTail == 1) return vld1q_lane_f32(p, vdupq_n_f32(0.f), 0);
    const float32x4_t lo = vcombine_f32(vld1_f32(p), vdup_n_f32(0.f));
    return kTail == 2 ? lo : vld1q_lane_f32(p + 2, lo, 2);
  }
  static void store(float* p, int v, float32x4_t x) {
    p += 4 * v;
    if (kTail == 0 || v != kVecs - 1) {
      vst1q_f32(p, x);
    } else if (kTail == 1) {
      vst1q_lane_f32(p, x, 0);
    } else {
      vst1_f32(p, vget_low_f32(x));
      if (kTail == 3) vst1q_lane_f32(p + 2, x, 2);
    }
  }
};

// One tile of m_valid (1..8) rows. kPacked: A is a packed panel (a_rs = 1, a_cs = MR) with
// m_valid == MR. Fully unrolled over rows and vectors, so the accumulator array lives in
// registers.
template <int kVecs, int kTail, bool kPacked>
void tile(size_t kc, const float* a, size_t a_rs, size_t a_cs, const float* b, size_t ldb, float* c,
          size_t ldc, size_t m_valid, const float32x4_t* init, bool accumulate) {
  using C = Cols<kVecs, kTail>;
  size_t off[MR];
#pragma GCC unroll 8
  for (size_t i = 0; i < MR; ++i) off[i] = (i < m_valid ? i : m_valid - 1) * a_rs;

  float32x4_t acc[MR][kVecs];
#pragma GCC unroll 8
  for (size_t i = 0; i < MR; ++i) {
#pragma GCC unroll 3
    for (int v = 0; v < kVecs; ++v) acc[i][v] = init[v];
  }
  for (size_t p = 0; p < kc; ++p) {
    float32x4_t bv[kVecs];
#pragma GCC unroll 3
    for (int v = 0; v < kVecs; ++v) bv[v] = C::load(b, v);
    // The 8 values of column p of A in two vectors: two loads from a packed panel, lane loads
    // otherwise (8 broadcast registers would leave too few for the 24 accumulators).
    float32x4_t a0, a1;
    if (kPacked) {
      a0 = vld1q_f32(a);
      a1 = vld1q_f32(a + 4);
      a += MR;
    } else {
      a0 = vld1q_dup_f32(a + off[0]);
      a0 = vld1q_lane_f32(a + off[1], a0, 1);
      a0 = vld1q_lane_f32(a + off[2], a0, 2);
      a0 = vld1q_lane_f32(a + off[3], a0, 3);
      a1 = vld1q_dup_f32(a + off[4]);
      a1 = vld1q_lane_f32(a + off[5], a1, 1);
      a1 = vld1q_lane_f32(a + off[6], a1, 2);
      a1 = vld1q_lane_f32(a + off[7], a1, 3);
      // Keeps GCC from turning the lane loads back into 8 scalar registers (and spilling).
      __asm__("" : "+w"(a0), "+w"(a1));
      a += a_cs;
    }
#pragma GCC unroll 3
    for (int v = 0; v < kVecs; ++v) {
      acc[0][v] = vfmaq_laneq_f32(acc[0][v], bv[v], a0, 0);
      acc[1][v] = vfmaq_laneq_f32(acc[1][v], bv[v], a0, 1);
      acc[2][v] = vfmaq_laneq_f32(acc[2][v], bv[v], a0, 2);
      acc[3][v] = vfmaq_laneq_f32(acc[3][v], bv[v], a0, 3);
      acc[4][v] = vfmaq_laneq_f32(acc[4][v], bv[v], a1, 0);
      acc[5][v] = vfmaq_laneq_f32(acc[5][v], bv[v], a1, 1);
      acc[6][v] = vfmaq_laneq_f32(acc[6][v], bv[v], a1, 2);
      acc[7][v] = vfmaq_laneq_f32(acc[7][v], bv[v], a1, 3);
    }
    b += ldb;
  }

#pragma GCC unroll 8
  for (size_t i = 0; i < MR; ++i) {
    if (i >= m_valid) break;
    float* ci = c + i * ldc;
#pragma GCC unroll 3
    for (int v = 0; v < kVecs; ++v) {
      const float32x4_t r = accumulate ? vaddq_f32(acc[i][v], C::load(ci, v)) : acc[i][v];
      C::store(ci, v, r);
    }
  }
}

template <int kVecs, int kTail>
void panel(size_t m, size_t kc, const float* a, size_t a_rs, size_t a_cs, size_t a_ms, const float* b,
           size_t ldb, float* c, size_t ldc, const float* bias, bool accumulate) {
  float32x4_t init[kVecs];
  for (int v = 0; v < kVecs; ++v) {
    init[v] = !accumulate && bias != nullptr ? Cols<kVecs, kTail>::load(bias, v) : vdupq_n_f32(0.f);
  }
  if (a_rs == 1 && a_cs == MR) {
    for (; m >= MR; m -= MR, a += a_ms, c += MR * ldc) {
      tile<kVecs, kTail, true>(kc, a, 1, MR, b, ldb, c, ldc, MR, init, accumulate);
    }
  }
  for (; m >= MR; m -= MR, a += a_ms, c += MR * ldc) {
    tile<kVecs, kTail, false>(kc, a, a_rs, a_cs, b, ldb, c, ldc, MR, init, accumulate);
  }
  if (m > 0) tile<kVecs, kTail, false>(kc, a, a_rs, a_cs, b, ldb, c, ldc, m, init, accumulate);
}

template <int kVecs>
void panel_any_tail(size_t tail, size_t m, size_t kc, const float* a, size_t a_rs, size_t a_cs, size_t a_ms,
                    const float* b, size_t ldb, float* c, size_t ldc, const float* bias, bool accumulate) {
  switch (tail) {
    case 1: return panel<kVecs, 1>(m, kc, a, a_rs, a_cs, a_ms, b, ldb, c, ldc, bias, accumulate);
    case 2: return panel<kVecs, 2>(m, kc, a, a_rs, a_cs, a_ms, b, ldb, c, ldc, bias, accumulate);
    case 3: return panel<kVecs, 3>(m, kc, a, a_rs, a_cs, a_ms, b, ldb, c, ldc, bias, accumulate);
    default: return panel<kVecs, 0>(m, kc, a, a_rs, a_cs, a_ms, b, ldb, c, ldc, bias, accumulate);
  }
}

}  // namespace

void f32_gemm_8x12__neon(size_t m, size_t n_valid, size_t kc, const float* a, size_t a_rs, size_t a_cs,
                         size_t a_ms, const float* b, size_t ldb, float* c, size_t ldc, const float* bias,
                         bool accumulate) {
  assert(n_valid >= 1 && n_valid <= 12);
  const size_t vecs = (n_valid + 3) / 4, tail = n_valid % 4;
  switch (vecs) {
    case 3: return panel_any_tail<3>(tail, m, kc, a, a_rs, a_cs, a_ms, b, ldb, c, ldc, bias, accumulate);
    case 2: return panel_any_tail<2>(tail, m, kc, a, a_rs, a_cs, a_ms, b, ldb, c, ldc, bias, accumulate);
    default: return panel_any_tail<1>(tail, m, kc, a, a_rs, a_cs, a_ms, b, ldb, c, ldc, bias, accumulate);
  }
}

}  // namespace attn

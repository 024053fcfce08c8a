// NEON attention tiles, the GEMM-like parts (contract in attn/kernels.h; the softmax step is in
// f32_attn_softmax_neon.cc, the tile loop and threads in native/core/attention_flash.cc and
// attention_decode.cc). Score tiles are transposed, s[j * lds + r] = key j against query row r.
//
//   qk_panel: S^T (6 keys, 16 rows) = K (6, d) @ Qpanel (d, 16). Per step of d: four loads of the
//             packed panel, six ld1r broadcasts straight from the K rows (read in place, any
//             stride), 24 FMAs into 24 q-register accumulators.
//   qk_rows:  the decode form, where rows are few: dot products of 4 rows x 2 keys with 4-lane
//             partial sums, reduced by pairwise adds so the 4 rows of a key land in one vector.
//   pv:       O (6 rows, 16 columns) = alpha * O + P (6, nk) @ V (nk, 16). Per key: four loads of
//             the V row (in place), six broadcasts of P^T, 24 FMAs; the rescale by alpha is fused
//             into loading the O tile. A last partial vector of columns is loaded and stored
//             lane by lane, so nothing past dv is touched.
//   qk_rows and pv also read the 16-bit keys and values of a half-precision KV cache (f16_*, bf16_*):
//             the same tiles, each K or V vector converted as it is loaded (vcvt_f32_f16, or a
//             16-bit shift for bfloat16), so the cache is read once, at half the bytes.
#include <arm_neon.h>

#include <cstdint>
#include <type_traits>

#include "attn/half.h"
#include "attn/kernels.h"

namespace attn {
namespace {

// Keys and values as stored: float32, or the bits of a half-precision cache.
template <DType T>
using Elem = std::conditional_t<T == DType::kF32, float, uint16_t>;

template <DType T>
inline float32x4_t widen4(uint16x4_t h) {
  if constexpr (T == DType::kF16) return vcvt_f32_f16(vreinterpret_f16_u16(h));
  return vreinterpretq_f32_u32(vshll_n_u16(h, 16));
}

// 4 elements as float32, exactly.
template <DType T>
inline float32x4_t load4(const Elem<T>* x) {
  if constexpr (T == DType::kF32) {
    return vld1q_f32(x);
  } else {
    return widen4<T>(vld1_u16(x));
  }
}

template <DType T>
inline float at(const Elem<T>* x, size_t i) {
  if constexpr (T == DType::kF32) {
    return x[i];
  } else if constexpr (T == DType::kF16) {
    return f16_to_f32(x[i]);
  } else {
    return bf16_to_f32(x[i]);
  }
}

constexpr size_t kKeysPerBlock = 6;
constexpr size_t kRowsPerBlock = 6;

template <int MR>
void qk_block(const float* k, size_t k_st, const float* qp, size_t d, float* s, size_t lds) {
  float32x4_t acc[MR][4];
  const float* kr[MR];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int w = 0; w < 4; ++w) acc[i][w] = vdupq_n_f32(0.f);
    kr[i] = k + i * k_st;
  }
  for (size_t p = 0; p < d; ++p) {
    const float* q = qp + p * kAttnPanel;
    const float32x4_t q0 = vld1q_f32(q), q1 = vld1q_f32(q + 4), q2 = vld1q_f32(q + 8), q3 = vld1q_f32(q + 12);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const float32x4_t kb = vld1q_dup_f32(kr[i] + p);
      acc[i][0] = vfmaq_f32(acc[i][0], kb, q0);
      acc[i][1] = vfmaq_f32(acc[i][1], kb, q1);
      acc[i][2] = vfmaq_f32(acc[i][2], kb, q2);
      acc[i][3] = vfmaq_f32(acc[i][3], kb, q3);
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int w = 0; w < 4; ++w) vst1q_f32(s + i * lds + 4 * w, acc[i][w]);
  }
}

// Dot products of NR rows (q_r = q + r * q_st) against NJ keys; s[j * lds + r].
template <DType T, int NR, int NJ>
void dot_block(const Elem<T>* k, size_t k_st, const float* q, size_t q_st, size_t d, float* s, size_t lds) {
  float32x4_t acc[NJ][NR];
#pragma GCC unroll 2
  for (int j = 0; j < NJ; ++j) {
#pragma GCC unroll 4
    for (int r = 0; r < NR; ++r) acc[j][r] = vdupq_n_f32(0.f);
  }
  size_t p = 0;
  for (; p + 4 <= d; p += 4) {
    float32x4_t kv[NJ];
#pragma GCC unroll 2
    for (int j = 0; j < NJ; ++j) kv[j] = load4<T>(k + j * k_st + p);
#pragma GCC unroll 4
    for (int r = 0; r < NR; ++r) {
      const float32x4_t qv = vld1q_f32(q + r * q_st + p);
#pragma GCC unroll 2
      for (int j = 0; j < NJ; ++j) acc[j][r] = vfmaq_f32(acc[j][r], qv, kv[j]);
    }
  }
  for (int j = 0; j < NJ; ++j) {
    float tail[NR];
    for (int r = 0; r < NR; ++r) {
      float t = 0.f;
      for (size_t pp = p; pp < d; ++pp) t += at<T>(k, j * k_st + pp) * q[r * q_st + pp];
      tail[r] = t;
    }
    if (NR == 4) {
      // pairwise adds: lane r of the result is the total of acc[j][r].
      const float32x4_t sums = vpaddq_f32(vpaddq_f32(acc[j][0], acc[j][1]), vpaddq_f32(acc[j][2], acc[j][3]));
      vst1q_f32(s + j * lds, vaddq_f32(sums, vld1q_f32(tail)));
    } else {
      for (int r = 0; r < NR; ++r) s[j * lds + r] = vaddvq_f32(acc[j][r]) + tail[r];
    }
  }
}

template <DType T, int NR>
void dot_rows(const Elem<T>* k, size_t k_st, size_t nk, const float* q, size_t q_st, size_t d, float* s,
              size_t lds) {
  size_t j = 0;
  for (; j + 2 <= nk; j += 2) {
    // K streams from memory once (decode): ask for the rows a few blocks ahead.
    if (j + 16 < nk) __builtin_prefetch(k + (j + 16) * k_st);
    dot_block<T, NR, 2>(k + j * k_st, k_st, q, q_st, d, s + j * lds, lds);
  }
  if (j < nk) dot_block<T, NR, 1>(k + j * k_st, k_st, q, q_st, d, s + j * lds, lds);
}

// Lanes [0, tail) of a partial vector (tail 1..3), the rest 0.
inline float32x4_t load_part(const float* p, size_t tail) {
  float32x4_t x = vld1q_lane_f32(p, vdupq_n_f32(0.f), 0);
  if (tail > 1) x = vld1q_lane_f32(p + 1, x, 1);
  if (tail > 2) x = vld1q_lane_f32(p + 2, x, 2);
  return x;
}

template <DType T>
inline float32x4_t load_part_v(const Elem<T>* p, size_t tail) {
  if constexpr (T == DType::kF32) {
    return load_part(p, tail);
  } else {
    uint16_t part[4] = {};
    for (size_t i = 0; i < tail; ++i) part[i] = p[i];
    return widen4<T>(vld1_u16(part));
  }
}

inline void store_part(float* p, float32x4_t x, size_t tail) {
  vst1q_lane_f32(p, x, 0);
  if (tail > 1) vst1q_lane_f32(p + 1, x, 1);
  if (tail > 2) vst1q_lane_f32(p + 2, x, 2);
}

// O (MR rows, NV vectors of columns) = alpha * O + P @ V over keys j < nk; the last vector holds
// `tail` columns when kPartial.
template <DType T, int MR, int NV, bool kPartial>
void pv_block(const float* p, size_t ldp, const Elem<T>* v, size_t v_st, size_t nk, const float* alpha, float* o,
              size_t ldo, size_t tail) {
  auto load = [tail](const float* x, int w) {
    return kPartial && w == NV - 1 ? load_part(x + 4 * w, tail) : vld1q_f32(x + 4 * w);
  };
  auto load_v = [tail](const Elem<T>* x, int w) {
    return kPartial && w == NV - 1 ? load_part_v<T>(x + 4 * w, tail) : load4<T>(x + 4 * w);
  };
  float32x4_t acc[MR][NV];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int w = 0; w < NV; ++w) acc[i][w] = vmulq_n_f32(load(o + i * ldo, w), alpha[i]);
  }
  for (size_t j = 0; j < nk; ++j) {
    float32x4_t vv[NV];
#pragma GCC unroll 4
    for (int w = 0; w < NV; ++w) vv[w] = load_v(v + j * v_st, w);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const float32x4_t pb = vld1q_dup_f32(p + j * ldp + i);
#pragma GCC unroll 4
      for (int w = 0; w < NV; ++w) acc[i][w] = vfmaq_f32(acc[i][w], pb, vv[w]);
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int w = 0; w < NV; ++w) {
      if (kPartial && w == NV - 1) {
        store_part(o + i * ldo + 4 * w, acc[i][w], tail);
      } else {
        vst1q_f32(o + i * ldo + 4 * w, acc[i][w]);
      }
    }
  }
}

template <DType T, int MR>
void pv_rows(const float* p, size_t ldp, const Elem<T>* v, size_t v_st, size_t nk, const float* alpha, float* o,
             size_t ldo, size_t dv) {
  size_t c = 0;
  for (; c + 16 <= dv; c += 16) pv_block<T, MR, 4, false>(p, ldp, v + c, v_st, nk, alpha, o + c, ldo, 0);
  const size_t rest = dv - c, tail = rest % 4;
  const Elem<T>* vc = v + c;
  float* oc = o + c;
  switch ((rest + 3) / 4) {
    case 4: pv_block<T, MR, 4, true>(p, ldp, vc, v_st, nk, alpha, oc, ldo, tail); break;  // rest 13..15
    case 3:
      if (tail) pv_block<T, MR, 3, true>(p, ldp, vc, v_st, nk, alpha, oc, ldo, tail);
      else pv_block<T, MR, 3, false>(p, ldp, vc, v_st, nk, alpha, oc, ldo, 0);
      break;
    case 2:
      if (tail) pv_block<T, MR, 2, true>(p, ldp, vc, v_st, nk, alpha, oc, ldo, tail);
      else pv_block<T, MR, 2, false>(p, ldp, vc, v_st, nk, alpha, oc, ldo, 0);
      break;
    case 1:
      if (tail) pv_block<T, MR, 1, true>(p, ldp, vc, v_st, nk, alpha, oc, ldo, tail);
      else pv_block<T, MR, 1, false>(p, ldp, vc, v_st, nk, alpha, oc, ldo, 0);
      break;
    default: break;
  }
}

template <DType T>
void qk_rows(const Elem<T>* k, size_t k_st, size_t nk, const float* q, size_t q_st, size_t nr, size_t d, float* s,
             size_t lds) {
  size_t r = 0;
  for (; r + 4 <= nr; r += 4) dot_rows<T, 4>(k, k_st, nk, q + r * q_st, q_st, d, s + r, lds);
  for (; r < nr; ++r) dot_rows<T, 1>(k, k_st, nk, q + r * q_st, q_st, d, s + r, lds);
}

template <DType T>
void pv(const float* p, size_t ldp, const Elem<T>* v, size_t v_st, const int32_t* vis, const float* alpha, float* o,
        size_t ldo, size_t nr, size_t dv) {
  for (size_t r = 0; r < nr; r += kRowsPerBlock) {
    const size_t rows = nr - r < kRowsPerBlock ? nr - r : kRowsPerBlock;
    // Keys up to the block's largest limit; p is 0 past each row's own limit.
    int32_t end = 0;
    for (size_t i = 0; i < rows; ++i) end = vis[r + i] > end ? vis[r + i] : end;
    const size_t nk = static_cast<size_t>(end);
    const float* pr = p + r;
    float* orow = o + r * ldo;
    switch (rows) {
      case 6: pv_rows<T, 6>(pr, ldp, v, v_st, nk, alpha + r, orow, ldo, dv); break;
      case 5: pv_rows<T, 5>(pr, ldp, v, v_st, nk, alpha + r, orow, ldo, dv); break;
      case 4: pv_rows<T, 4>(pr, ldp, v, v_st, nk, alpha + r, orow, ldo, dv); break;
      case 3: pv_rows<T, 3>(pr, ldp, v, v_st, nk, alpha + r, orow, ldo, dv); break;
      case 2: pv_rows<T, 2>(pr, ldp, v, v_st, nk, alpha + r, orow, ldo, dv); break;
      default: pv_rows<T, 1>(pr, ldp, v, v_st, nk, alpha + r, orow, ldo, dv); break;
    }
  }
}

}  // namespace

void f32_attn_qk_panel__neon(const float* k, size_t k_st, size_t nk, const float* qp, size_t d, float* s,
                             size_t lds) {
  size_t j = 0;
  for (; j + kKeysPerBlock <= nk; j += kKeysPerBlock) qk_block<6>(k + j * k_st, k_st, qp, d, s + j * lds, lds);
  const float* kj = k + j * k_st;
  float* sj = s + j * lds;
  switch (nk - j) {
    case 5: qk_block<5>(kj, k_st, qp, d, sj, lds); break;
    case 4: qk_block<4>(kj, k_st, qp, d, sj, lds); break;
    case 3: qk_block<3>(kj, k_st, qp, d, sj, lds); break;
    case 2: qk_block<2>(kj, k_st, qp, d, sj, lds); break;
    case 1: qk_block<1>(kj, k_st, qp, d, sj, lds); break;
    default: break;
  }
}

void f32_attn_qk_rows__neon(const float* k, size_t k_st, size_t nk, const float* q, size_t q_st, size_t nr,
                            size_t d, float* s, size_t lds) {
  qk_rows<DType::kF32>(k, k_st, nk, q, q_st, nr, d, s, lds);
}

void f16_attn_qk_rows__neon(const uint16_t* k, size_t k_st, size_t nk, const float* q, size_t q_st, size_t nr,
                            size_t d, float* s, size_t lds) {
  qk_rows<DType::kF16>(k, k_st, nk, q, q_st, nr, d, s, lds);
}

void bf16_attn_qk_rows__neon(const uint16_t* k, size_t k_st, size_t nk, const float* q, size_t q_st, size_t nr,
                             size_t d, float* s, size_t lds) {
  qk_rows<DType::kBF16>(k, k_st, nk, q, q_st, nr, d, s, lds);
}

void f32_attn_pv__neon(const float* p, size_t ldp, const float* v, size_t v_st, const int32_t* vis,
                       const float* alpha, float* o, size_t ldo, size_t nr, size_t dv) {
  pv<DType::kF32>(p, ldp, v, v_st, vis, alpha, o, ldo, nr, dv);
}

void f16_attn_pv__neon(const float* p, size_t ldp, const uint16_t* v, size_t v_st, const int32_t* vis,
                       const float* alpha, float* o, size_t ldo, size_t nr, size_t dv) {
  pv<DType::kF16>(p, ldp, v, v_st, vis, alpha, o, ldo, nr, dv);
}

void bf16_attn_pv__neon(const float* p, size_t ldp, const uint16_t* v, size_t v_st, const int32_t* vis,
                        const float* alpha, float* o, size_t ldo, size_t nr, size_t dv) {
  pv<DType::kBF16>(p, ldp, v, v_st, vis, alpha, o, ldo, nr, dv);
}

}  // namespace attn

// AVX2+FMA attention tiles, the GEMM-like parts (contract in attn/kernels.h; the softmax step is
// in f32_attn_softmax_avx2.cc, the tile loop and threads in native/core/attention_flash.cc and
// attention_decode.cc). Score tiles are transposed, s[j * lds + r] = key j against query row r.
//
//   qk_panel: S^T (6 keys, 16 rows) = K (6, d) @ Qpanel (d, 16). Per step of d: two loads of the
//             packed panel, six broadcasts straight from the K rows (read in place, any stride),
//             12 FMAs into 12 ymm accumulators.
//   qk_rows:  the decode form, where rows are few: dot products of 4 rows x 2 keys (or 2x4, 1x8)
//             with 8-lane partial sums, reduced at the end by one hadd tree.
//   pv:       O (6 rows, 16 columns) = alpha * O + P (6, nk) @ V (nk, 16). Per key: two loads of
//             the V row (in place), six broadcasts of P^T, 12 FMAs; the rescale by alpha is fused
//             into loading the O tile. V goes by in slices of keys (kSliceKeys*) that stay in
//             L1 for every row block and column block, the next slice prefetched.
//   qk_rows and pv also read the 16-bit keys and values of a half-precision KV cache (f16_*, bf16_*):
//             the same tiles, each K or V vector converted as it is loaded (F16C vcvtph2ps, or a
//             16-bit shift for bfloat16), so the cache is read once, at half the bytes.
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "attn/half.h"
#include "attn/kernels.h"

namespace attn {
namespace {

constexpr size_t kRowsPerBlock = 6;
#include "f32_attn_slices.h"

inline __m256i tail_mask(size_t n) {
  static const int32_t kBits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kBits + 8 - n));
}

// Keys and values as stored: float32, or the bits of a half-precision cache.
template <DType T>
using Elem = std::conditional_t<T == DType::kF32, float, uint16_t>;

template <DType T>
inline __m256 widen8(__m128i h) {
  if constexpr (T == DType::kF16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// 8 elements as float32, exactly.
template <DType T>
inline __m256 load8(const Elem<T>* x) {
  if constexpr (T == DType::kF32) {
    return _mm256_loadu_ps(x);
  } else {
    return widen8<T>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x)));
  }
}

// The first n < 8 elements (m = tail_mask(n)), the rest 0; 16-bit ones through a copy, since AVX2
// has no 16-bit masked load.
template <DType T>
inline __m256 load8_tail(const Elem<T>* x, size_t n, __m256i m) {
  if constexpr (T == DType::kF32) {
    return _mm256_maskload_ps(x, m);
  } else {
    alignas(16) uint16_t part[8] = {};
    std::memcpy(part, x, n * sizeof(uint16_t));
    return widen8<T>(_mm_load_si128(reinterpret_cast<const __m128i*>(part)));
  }
}

template <int MR>
void qk_block(const float* k, size_t k_st, const float* qp, size_t d, float* s, size_t lds) {
  __m256 c0[MR], c1[MR];
  const float* kr[MR];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    c0[i] = _mm256_setzero_ps();
    c1[i] = _mm256_setzero_ps();
    kr[i] = k + i * k_st;
  }
  for (size_t p = 0; p < d; ++p) {
    const __m256 q0 = _mm256_loadu_ps(qp + p * kAttnPanel);
    const __m256 q1 = _mm256_loadu_ps(qp + p * kAttnPanel + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256 kb = _mm256_broadcast_ss(kr[i] + p);
      c0[i] = _mm256_fmadd_ps(kb, q0, c0[i]);
      c1[i] = _mm256_fmadd_ps(kb, q1, c1[i]);
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    _mm256_storeu_ps(s + i * lds, c0[i]);
    _mm256_storeu_ps(s + i * lds + 8, c1[i]);
  }
}

// acc[i] holds 8 partial sums; lane i of the result is the total of acc[i].
inline __m256 reduce8(const __m256* acc) {
  const __m256 h01 = _mm256_hadd_ps(acc[0], acc[1]), h23 = _mm256_hadd_ps(acc[2], acc[3]);
  const __m256 h45 = _mm256_hadd_ps(acc[4], acc[5]), h67 = _mm256_hadd_ps(acc[6], acc[7]);
  const __m256 a = _mm256_hadd_ps(h01, h23), b = _mm256_hadd_ps(h45, h67);
  return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
}

// MR rows x NJ keys of dot products; MR * NJ is 8 (one reduce8) or smaller for the tails.
template <DType T, int MR, int NJ>
void dot_block(const Elem<T>* k, size_t k_st, const float* q, size_t q_st, size_t d, float* s, size_t lds) {
  __m256 acc[8];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) acc[i] = _mm256_setzero_ps();
  size_t p = 0;
  for (; p + 8 <= d; p += 8) {
    __m256 kv[NJ];
#pragma GCC unroll 8
    for (int j = 0; j < NJ; ++j) kv[j] = load8<T>(k + j * k_st + p);
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      const __m256 qv = _mm256_loadu_ps(q + i * q_st + p);
#pragma GCC unroll 8
      for (int j = 0; j < NJ; ++j) acc[j * MR + i] = _mm256_fmadd_ps(qv, kv[j], acc[j * MR + i]);
    }
  }
  if (p < d) {
    const __m256i m = tail_mask(d - p);
    __m256 kv[NJ];
#pragma GCC unroll 8
    for (int j = 0; j < NJ; ++j) kv[j] = load8_tail<T>(k + j * k_st + p, d - p, m);
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      const __m256 qv = _mm256_maskload_ps(q + i * q_st + p, m);
#pragma GCC unroll 8
      for (int j = 0; j < NJ; ++j) acc[j * MR + i] = _mm256_fmadd_ps(qv, kv[j], acc[j * MR + i]);
    }
  }
  // Lane j * MR + i of the sums is row i against key j: with 4 rows, one key is half a vector.
  const __m256 sums = reduce8(acc);
  if (MR == 4) {
    _mm_storeu_ps(s, _mm256_castps256_ps128(sums));
    if (NJ == 2) _mm_storeu_ps(s + lds, _mm256_extractf128_ps(sums, 1));
    return;
  }
  alignas(32) float t[8];
  _mm256_store_ps(t, sums);
#pragma GCC unroll 8
  for (int j = 0; j < NJ; ++j) {
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) s[j * lds + i] = t[j * MR + i];
  }
}

template <DType T, int MR, int NJ>
void dot_rows(const Elem<T>* k, size_t k_st, size_t nk, const float* q, size_t q_st, size_t d, float* s,
              size_t lds) {
  size_t j = 0;
  for (; j + NJ <= nk; j += NJ) {
    // K streams from memory once (decode): keep the rows kSliceKeys ahead in flight.
    const size_t ahead = j + kSliceKeys;
    prefetch_rows(k, k_st, ahead, NJ, nk, d);
    dot_block<T, MR, NJ>(k + j * k_st, k_st, q, q_st, d, s + j * lds, lds);
  }
  for (; j < nk; ++j) dot_block<T, MR, 1>(k + j * k_st, k_st, q, q_st, d, s + j * lds, lds);
}

// Columns of one O tile: NV vectors of 8, the last one masked when kMasked.
template <int NV, bool kMasked>
struct Cols {
  __m256i mask;
  size_t last;  // columns in the last vector
  __m256 load(const float* p, int v) const {
    return kMasked && v == NV - 1 ? _mm256_maskload_ps(p + 8 * v, mask) : _mm256_loadu_ps(p + 8 * v);
  }
  template <DType T>
  __m256 load_v(const Elem<T>* p, int v) const {
    return kMasked && v == NV - 1 ? load8_tail<T>(p + 8 * v, last, mask) : load8<T>(p + 8 * v);
  }
  void store(float* p, int v, __m256 x) const {
    if (kMasked && v == NV - 1) {
      _mm256_maskstore_ps(p + 8 * v, mask, x);
    } else {
      _mm256_storeu_ps(p + 8 * v, x);
    }
  }
};

// alpha == nullptr: plain accumulation (a later slice of keys for the same rows).
template <DType T, int MR, int NV, bool kMasked>
void pv_block(const float* p, size_t ldp, const Elem<T>* v, size_t v_st, size_t nk, const float* alpha,
              float* o, size_t ldo, size_t cols) {
  const size_t last = kMasked ? cols - 8 * (NV - 1) : 8;
  const Cols<NV, kMasked> c{tail_mask(last), last};
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    const __m256 a = alpha != nullptr ? _mm256_broadcast_ss(alpha + i) : _mm256_set1_ps(1.f);
#pragma GCC unroll 2
    for (int w = 0; w < NV; ++w) acc[i][w] = _mm256_mul_ps(a, c.load(o + i * ldo, w));
  }
  for (size_t j = 0; j < nk; ++j) {
    __m256 vv[2];
#pragma GCC unroll 2
    for (int w = 0; w < NV; ++w) vv[w] = c.template load_v<T>(v + j * v_st, w);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256 pb = _mm256_broadcast_ss(p + j * ldp + i);
#pragma GCC unroll 2
      for (int w = 0; w < NV; ++w) acc[i][w] = _mm256_fmadd_ps(pb, vv[w], acc[i][w]);
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 2
    for (int w = 0; w < NV; ++w) c.store(o + i * ldo, w, acc[i][w]);
  }
}

template <DType T, int MR>
void pv_rows(const float* p, size_t ldp, const Elem<T>* v, size_t v_st, size_t nk, const float* alpha,
             float* o, size_t ldo, size_t dv) {
  size_t c = 0;
  for (; c + 16 <= dv; c += 16) pv_block<T, MR, 2, false>(p, ldp, v + c, v_st, nk, alpha, o + c, ldo, 16);
  const size_t rest = dv - c;
  if (rest > 8) {
    pv_block<T, MR, 2, true>(p, ldp, v + c, v_st, nk, alpha, o + c, ldo, rest);
  } else if (rest == 8) {
    pv_block<T, MR, 1, false>(p, ldp, v + c, v_st, nk, alpha, o + c, ldo, rest);
  } else if (rest > 0) {
    pv_block<T, MR, 1, true>(p, ldp, v + c, v_st, nk, alpha, o + c, ldo, rest);
  }
}

template <DType T>
void qk_rows(const Elem<T>* k, size_t k_st, size_t nk, const float* q, size_t q_st, size_t nr, size_t d, float* s,
             size_t lds) {
  size_t r = 0;
  for (; r + 4 <= nr; r += 4) dot_rows<T, 4, 2>(k, k_st, nk, q + r * q_st, q_st, d, s + r, lds);
  if (nr - r >= 2) {
    dot_rows<T, 2, 4>(k, k_st, nk, q + r * q_st, q_st, d, s + r, lds);
    r += 2;
  }
  if (r < nr) dot_rows<T, 1, 8>(k, k_st, nk, q + r * q_st, q_st, d, s + r, lds);
}

template <DType T>
void pv(const float* p, size_t ldp, const Elem<T>* v, size_t v_st, const int32_t* vis, const float* alpha, float* o,
        size_t ldo, size_t nr, size_t dv) {
  pv_in_slices<kRowsPerBlock>(p, ldp, v, v_st, vis, alpha, o, ldo, nr, dv,
                              [](size_t rows, const float* pr, size_t ldp_, const Elem<T>* vr, size_t v_st_, size_t n,
                                 const float* ar, float* orow, size_t ldo_, size_t dv_) {
                                switch (rows) {
                                  case 6: pv_rows<T, 6>(pr, ldp_, vr, v_st_, n, ar, orow, ldo_, dv_); break;
                                  case 5: pv_rows<T, 5>(pr, ldp_, vr, v_st_, n, ar, orow, ldo_, dv_); break;
                                  case 4: pv_rows<T, 4>(pr, ldp_, vr, v_st_, n, ar, orow, ldo_, dv_); break;
                                  case 3: pv_rows<T, 3>(pr, ldp_, vr, v_st_, n, ar, orow, ldo_, dv_); break;
                                  case 2: pv_rows<T, 2>(pr, ldp_, vr, v_st_, n, ar, orow, ldo_, dv_); break;
                                  default: pv_rows<T, 1>(pr, ldp_, vr, v_st_, n, ar, orow, ldo_, dv_); break;
                                }
                              });
}

}  // namespace

void f32_attn_qk_panel__avx2(const float* k, size_t k_st, size_t nk, const float* qp, size_t d, float* s,
                             size_t lds) {
  size_t j = 0;
  for (; j + kRowsPerBlock <= nk; j += kRowsPerBlock) qk_block<6>(k + j * k_st, k_st, qp, d, s + j * lds, lds);
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

void f32_attn_qk_rows__avx2(const float* k, size_t k_st, size_t nk, const float* q, size_t q_st, size_t nr,
                            size_t d, float* s, size_t lds) {
  qk_rows<DType::kF32>(k, k_st, nk, q, q_st, nr, d, s, lds);
}

void f16_attn_qk_rows__avx2(const uint16_t* k, size_t k_st, size_t nk, const float* q, size_t q_st, size_t nr,
                            size_t d, float* s, size_t lds) {
  qk_rows<DType::kF16>(k, k_st, nk, q, q_st, nr, d, s, lds);
}

void bf16_attn_qk_rows__avx2(const uint16_t* k, size_t k_st, size_t nk, const float* q, size_t q_st, size_t nr,
                             size_t d, float* s, size_t lds) {
  qk_rows<DType::kBF16>(k, k_st, nk, q, q_st, nr, d, s, lds);
}

void f32_attn_pv__avx2(const float* p, size_t ldp, const float* v, size_t v_st, const int32_t* vis,
                       const float* alpha, float* o, size_t ldo, size_t nr, size_t dv) {
  pv<DType::kF32>(p, ldp, v, v_st, vis, alpha, o, ldo, nr, dv);
}

void f16_attn_pv__avx2(const float* p, size_t ldp, const uint16_t* v, size_t v_st, const int32_t* vis,
                       const float* alpha, float* o, size_t ldo, size_t nr, size_t dv) {
  pv<DType::kF16>(p, ldp, v, v_st, vis, alpha, o, ldo, nr, dv);
}

void bf16_attn_pv__avx2(const float* p, size_t ldp, const uint16_t* v, size_t v_st, const int32_t* vis,
                        const float* alpha, float* o, size_t ldo, size_t nr, size_t dv) {
  pv<DType::kBF16>(p, ldp, v, v_st, vis, alpha, o, ldo, nr, dv);
}

}  // namespace attn

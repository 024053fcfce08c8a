// AVX-512 attention tiles, the GEMM-like parts (contract in attn/kernels.h; the softmax step is
// in f32_attn_softmax_avx512.cc, the tile loop and threads in native/core/attention_flash.cc and
// attention_decode.cc). Score tiles are transposed, s[j * lds + r] = key j against query row r.
//
//   qk_panel: S^T (12 keys, 16 rows) = K (12, d) @ Qpanel (d, 16). The 16 rows of a packed Q
//             panel are exactly one zmm, so per step of d: one load of the panel and 12 FMAs
//             whose K operand is an embedded broadcast straight from the K rows (read in place,
//             any stride), into 12 accumulators (FMA latency 4 x 2 pipes needs at least 8).
//   qk_rows:  the decode form, where rows are few: dot products of 4 rows x 4 keys (or 2x8, 1x16)
//             with 16-lane partial sums, reduced at the end by one transpose-and-add tree that
//             leaves the 16 totals in one zmm.
//   pv:       O (6 rows, 64 columns) = alpha * O + P (6, nk) @ V (nk, 64). Per key: four loads
//             of the V row (in place), six broadcasts of P^T, 24 FMAs; the rescale by alpha is
//             fused into loading the O tile, and a last partial vector of columns goes under an
//             opmask. V goes by in slices of keys (kSliceKeys*) that stay in L1 for every row
//             block and column block, the next slice prefetched.
//   qk_rows and pv also read the 16-bit keys and values of a half-precision KV cache (f16_*, bf16_*):
//             the same tiles, each K or V vector converted as it is loaded (vcvtph2ps, or a
//             16-bit shift for bfloat16), so the cache is read once, at half the bytes.
#include <immintrin.h>

#include <cstdint>
#include <type_traits>

#include "attn/half.h"
#include "attn/kernels.h"
#include "f32_exp_avx512.h"

namespace attn {
namespace {

// Keys and values as stored: float32, or the bits of a half-precision cache.
template <DType T>
using Elem = std::conditional_t<T == DType::kF32, float, uint16_t>;

// Up to 16 elements (the lanes of m) as float32, exactly; lanes outside m are 0.
template <DType T>
inline __m512 load16(const Elem<T>* x, __mmask16 m) {
  if constexpr (T == DType::kF32) {
    return _mm512_maskz_loadu_ps(m, x);
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(m, x);
    if constexpr (T == DType::kF16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
}

constexpr int kQkKeys = 12;
constexpr size_t kPvRows = 6;
#include "f32_attn_slices.h"

inline __mmask16 tail_mask(size_t n) { return static_cast<__mmask16>((1u << n) - 1u); }


template <int NK>
void qk_block(const float* k, size_t k_st, const float* qp, size_t d, float* s, size_t lds) {
  __m512 acc[NK];
#pragma GCC unroll 16
  for (int i = 0; i < NK; ++i) acc[i] = _mm512_setzero_ps();
  for (size_t p = 0; p < d; ++p) {
    const __m512 q = _mm512_loadu_ps(qp + p * kAttnPanel);
#pragma GCC unroll 16
    for (int i = 0; i < NK; ++i) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(k[i * k_st + p]), q, acc[i]);
  }
#pragma GCC unroll 16
  for (int i = 0; i < NK; ++i) _mm512_storeu_ps(s + i * lds, acc[i]);
}

// v[q] holds 16 partial sums; lane L of the result is the total of v[4 * (L % 4) + L / 4]
// (callers place their accumulators accordingly, see acc_slot). Four levels, each halving the
// vectors with one add of two shuffles:
//   16 -> 8: 256-bit halves     (each vector: 8 partials of 2 sources)
//    8 -> 4: 128-bit chunks     (4 partials of 4 sources, one per chunk)
//    4 -> 2: unpack lo/hi       (per chunk: lanes a, b, a, b)
//    2 -> 1: 64-bit pairs       (per chunk c: sources c, c + 4, c + 8, c + 12)
inline __m512 reduce16(const __m512* v) {
  __m512 w[8], x[4], y[2];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44),
                         _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE));
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    x[i] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], 0x88),
                         _mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], 0xDD));
  }
#pragma GCC unroll 2
  for (int i = 0; i < 2; ++i) {
    y[i] = _mm512_add_ps(_mm512_unpacklo_ps(x[2 * i], x[2 * i + 1]), _mm512_unpackhi_ps(x[2 * i], x[2 * i + 1]));
  }
  return _mm512_add_ps(_mm512_shuffle_ps(y[0], y[1], _MM_SHUFFLE(1, 0, 1, 0)),
                       _mm512_shuffle_ps(y[0], y[1], _MM_SHUFFLE(3, 2, 3, 2)));
}

// Where reduce16 wants the partial sums that should end up in lane L.
constexpr int acc_slot(int lane) { return 4 * (lane % 4) + lane / 4; }

// MR rows x NJ keys of dot products, MR * NJ = 16: lane j * MR + i of the reduced vector is row
// i against key j, so each key's MR rows are contiguous lanes.
template <DType T, int MR, int NJ>
void dot_block(const Elem<T>* k, size_t k_st, const float* q, size_t q_st, size_t d, float* s, size_t lds) {
  static_assert(MR * NJ == 16, "one reduce16");
  __m512 acc[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_setzero_ps();
  for (size_t p = 0; p < d; p += 16) {
    const __mmask16 m = d - p >= 16 ? __mmask16(0xFFFF) : tail_mask(d - p);
    __m512 kv[NJ];
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j) kv[j] = load16<T>(k + j * k_st + p, m);
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) {
      const __m512 qv = _mm512_maskz_loadu_ps(m, q + i * q_st + p);
#pragma GCC unroll 16
      for (int j = 0; j < NJ; ++j) {
        const int slot = acc_slot(j * MR + i);
        acc[slot] = _mm512_fmadd_ps(qv, kv[j], acc[slot]);
      }
    }
  }
  const __m512 sums = reduce16(acc);
  if constexpr (MR == 4) {
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) _mm_storeu_ps(s + j * lds, _mm512_extractf32x4_ps(sums, j));
  } else {
    alignas(64) float t[16];
    _mm512_store_ps(t, sums);
#pragma GCC unroll 16
    for (int j = 0; j < NJ; ++j) {
#pragma GCC unroll 2
      for (int i = 0; i < MR; ++i) s[j * lds + i] = t[j * MR + i];
    }
  }
}

// One key against MR rows (the keys left over after the NJ-key blocks).
template <DType T, int MR>
void dot_key(const Elem<T>* k, const float* q, size_t q_st, size_t d, float* s) {
  __m512 acc[MR];
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) acc[i] = _mm512_setzero_ps();
  for (size_t p = 0; p < d; p += 16) {
    const __mmask16 m = d - p >= 16 ? __mmask16(0xFFFF) : tail_mask(d - p);
    const __m512 kv = load16<T>(k + p, m);
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i) acc[i] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i * q_st + p), kv, acc[i]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < MR; ++i) s[i] = avx512::hsum_ps(acc[i]);
}

template <DType T, int MR, int NJ>
void dot_rows(const Elem<T>* k, size_t k_st, size_t nk, const float* q, size_t q_st, size_t d, float* s,
              size_t lds) {
  size_t j = 0;
  for (; j + NJ <= nk; j += NJ) {
    // K streams from memory once (decode): keep the rows kSliceKeys ahead in flight.
    prefetch_rows(k, k_st, j + kSliceKeys, NJ, nk, d);
    dot_block<T, MR, NJ>(k + j * k_st, k_st, q, q_st, d, s + j * lds, lds);
  }
  for (; j < nk; ++j) dot_key<T, MR>(k + j * k_st, q, q_st, d, s + j * lds);
}

// O rows [0, MR) x NV vectors of columns, the last one under `last` (all ones when full).
// alpha == nullptr: plain accumulation (a later slice of keys for the same rows).
template <DType T, int MR, int NV>
void pv_block(const float* p, size_t ldp, const Elem<T>* v, size_t v_st, size_t nk, const float* alpha,
              float* o, size_t ldo, __mmask16 last) {
  auto load = [&](const float* x, int w) {
    return w == NV - 1 ? _mm512_maskz_loadu_ps(last, x + 16 * w) : _mm512_loadu_ps(x + 16 * w);
  };
  __m512 acc[MR][NV];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    const __m512 a = alpha != nullptr ? _mm512_set1_ps(alpha[i]) : _mm512_set1_ps(1.f);
#pragma GCC unroll 4
    for (int w = 0; w < NV; ++w) acc[i][w] = _mm512_mul_ps(a, load(o + i * ldo, w));
  }
  for (size_t j = 0; j < nk; ++j) {
    __m512 vv[NV];
#pragma GCC unroll 4
    for (int w = 0; w < NV; ++w) vv[w] = load16<T>(v + j * v_st + 16 * w, w == NV - 1 ? last : __mmask16(0xFFFF));
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m512 pb = _mm512_set1_ps(p[j * ldp + i]);
#pragma GCC unroll 4
      for (int w = 0; w < NV; ++w) acc[i][w] = _mm512_fmadd_ps(pb, vv[w], acc[i][w]);
    }
  }
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 4
    for (int w = 0; w < NV; ++w) {
      if (w == NV - 1) {
        _mm512_mask_storeu_ps(o + i * ldo + 16 * w, last, acc[i][w]);
      } else {
        _mm512_storeu_ps(o + i * ldo + 16 * w, acc[i][w]);
      }
    }
  }
}

template <DType T, int MR>
void pv_rows(const float* p, size_t ldp, const Elem<T>* v, size_t v_st, size_t nk, const float* alpha,
             float* o, size_t ldo, size_t dv) {
  size_t c = 0;
  for (; c + 64 <= dv; c += 64) pv_block<T, MR, 4>(p, ldp, v + c, v_st, nk, alpha, o + c, ldo, 0xFFFF);
  const size_t rest = dv - c;
  if (rest == 0) return;
  // rest in [1, 63]: ceil(rest / 16) vectors, the last one holding rest - 16 * (vectors - 1).
  const __mmask16 last = tail_mask(rest - 16 * ((rest - 1) / 16));
  switch ((rest + 15) / 16) {
    case 4: pv_block<T, MR, 4>(p, ldp, v + c, v_st, nk, alpha, o + c, ldo, last); break;
    case 3: pv_block<T, MR, 3>(p, ldp, v + c, v_st, nk, alpha, o + c, ldo, last); break;
    case 2: pv_block<T, MR, 2>(p, ldp, v + c, v_st, nk, alpha, o + c, ldo, last); break;
    default: pv_block<T, MR, 1>(p, ldp, v + c, v_st, nk, alpha, o + c, ldo, last); break;
  }
}

template <DType T>
void qk_rows(const Elem<T>* k, size_t k_st, size_t nk, const float* q, size_t q_st, size_t nr, size_t d, float* s,
             size_t lds) {
  size_t r = 0;
  for (; r + 4 <= nr; r += 4) dot_rows<T, 4, 4>(k, k_st, nk, q + r * q_st, q_st, d, s + r, lds);
  if (nr - r >= 2) {
    dot_rows<T, 2, 8>(k, k_st, nk, q + r * q_st, q_st, d, s + r, lds);
    r += 2;
  }
  if (r < nr) dot_rows<T, 1, 16>(k, k_st, nk, q + r * q_st, q_st, d, s + r, lds);
}

template <DType T>
void pv(const float* p, size_t ldp, const Elem<T>* v, size_t v_st, const int32_t* vis, const float* alpha, float* o,
        size_t ldo, size_t nr, size_t dv) {
  pv_in_slices<kPvRows>(p, ldp, v, v_st, vis, alpha, o, ldo, nr, dv,
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

void f32_attn_qk_panel__avx512(const float* k, size_t k_st, size_t nk, const float* qp, size_t d, float* s,
                               size_t lds) {
  size_t j = 0;
  for (; j + kQkKeys <= nk; j += kQkKeys) qk_block<kQkKeys>(k + j * k_st, k_st, qp, d, s + j * lds, lds);
  const float* kj = k + j * k_st;
  float* sj = s + j * lds;
  // 1..11 keys left: an 8-key block then the rest (4, 2, 1), so every count has few kernels.
  size_t left = nk - j;
  if (left >= 8) {
    qk_block<8>(kj, k_st, qp, d, sj, lds);
    kj += 8 * k_st, sj += 8 * lds, left -= 8;
  }
  if (left >= 4) {
    qk_block<4>(kj, k_st, qp, d, sj, lds);
    kj += 4 * k_st, sj += 4 * lds, left -= 4;
  }
  if (left >= 2) {
    qk_block<2>(kj, k_st, qp, d, sj, lds);
    kj += 2 * k_st, sj += 2 * lds, left -= 2;
  }
  if (left == 1) qk_block<1>(kj, k_st, qp, d, sj, lds);
}

void f32_attn_qk_rows__avx512(const float* k, size_t k_st, size_t nk, const float* q, size_t q_st, size_t nr,
                              size_t d, float* s, size_t lds) {
  qk_rows<DType::kF32>(k, k_st, nk, q, q_st, nr, d, s, lds);
}

void f16_attn_qk_rows__avx512(const uint16_t* k, size_t k_st, size_t nk, const float* q, size_t q_st, size_t nr,
                              size_t d, float* s, size_t lds) {
  qk_rows<DType::kF16>(k, k_st, nk, q, q_st, nr, d, s, lds);
}

void bf16_attn_qk_rows__avx512(const uint16_t* k, size_t k_st, size_t nk, const float* q, size_t q_st, size_t nr,
                               size_t d, float* s, size_t lds) {
  qk_rows<DType::kBF16>(k, k_st, nk, q, q_st, nr, d, s, lds);
}

void f32_attn_pv__avx512(const float* p, size_t ldp, const float* v, size_t v_st, const int32_t* vis,
                         const float* alpha, float* o, size_t ldo, size_t nr, size_t dv) {
  pv<DType::kF32>(p, ldp, v, v_st, vis, alpha, o, ldo, nr, dv);
}

void f16_attn_pv__avx512(const float* p, size_t ldp, const uint16_t* v, size_t v_st, const int32_t* vis,
                         const float* alpha, float* o, size_t ldo, size_t nr, size_t dv) {
  pv<DType::kF16>(p, ldp, v, v_st, vis, alpha, o, ldo, nr, dv);
}

void bf16_attn_pv__avx512(const float* p, size_t ldp, const uint16_t* v, size_t v_st, const int32_t* vis,
                          const float* alpha, float* o, size_t ldo, size_t nr, size_t dv) {
  pv<DType::kBF16>(p, ldp, v, v_st, vis, alpha, o, ldo, nr, dv);
}

}  // namespace attn

// AVX2+FMA GEMM microkernel f32_gemm_6x16__avx2: one 16-column panel of C in 6-row tiles,
// contract in attn/kernels.h (GemmUkernelFn).
//
//   per tile: C (6, 16) (+)= A (6, kc) @ B (kc, 16)   [+ bias (16) when not accumulating]
//
// Each tile stays in 12 ymm accumulators (6 rows x 2 vectors of 8 floats). Each step of k loads
// one row of B (2 vectors), broadcasts the 6 values of one column of A and issues 12 FMAs: 15 of
// the 16 ymm registers, 8 loads per 12 FMAs. The row loop lives here rather than in the driver so
// that masks, bias and dispatch are set up once per panel: small calls are dominated by that
// setup. Edge panels (n_valid < 16) load B with masks and store C 4 + 2 + 1 lanes at a time, so
// columns past n_valid are never read or written; rows past m re-read the last valid row of A and
// are never stored. Packed A panels (a_rs = 1, a_cs = 6) get a variant with constant offsets;
// panels at most 8 wide, read in place, go 12 rows at a time (tile12x8) to keep 12 accumulators.
// Packing, cache blocking and threads live in native/core/matmul.cc, not here.
#include <immintrin.h>

#include <cassert>
#include <cstdint>

#include "attn/kernels.h"

namespace attn {
namespace {

constexpr size_t MR = 6;
// Below this depth the C tile is not worth prefetching: the k loop is too short to hide it.
constexpr size_t kPrefetchMinKc = 32;

// Lanes [0, n) set, n in [0, 8].
inline __m256i lane_mask(size_t n) {
  static const int32_t kBits[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kBits + 8 - n));
}

// Column handling for a panel of kVecs vectors of 8 (1 or 2); kMasked: the last one is partial.
template <int kVecs, bool kMasked>
struct Cols {
  __m256i mask;
  size_t tail;  // columns in the partial vector, 1..7

  __m256 load(const float* p, int v) const {
    return kMasked && v == kVecs - 1 ? _mm256_maskload_ps(p + 8 * v, mask) : _mm256_loadu_ps(p + 8 * v);
  }
  // Masked stores (vmaskmovps) are microcoded on AMD Zen, many times a plain store, so a
  // partial vector is written 4 + 2 + 1 lanes at a time (XNNPACK's tail).
  void store(float* p, int v, __m256 r) const {
    p += 8 * v;
    if (!(kMasked && v == kVecs - 1)) {
      _mm256_storeu_ps(p, r);
      return;
    }
    __m128 lo = _mm256_castps256_ps128(r);
    if (tail & 4) {
      _mm_storeu_ps(p, lo);
      lo = _mm256_extractf128_ps(r, 1);
      p += 4;
    }
    if (tail & 2) {
      _mm_storel_pi(reinterpret_cast<__m64*>(p), lo);
      lo = _mm_movehl_ps(lo, lo);
      p += 2;
    }
    if (tail & 1) _mm_store_ss(p, lo);
  }
  // acc0 and acc1 are one row of the tile; acc1 is unused when kVecs == 1.
  void fma_row(const float* a, __m256 b0, __m256 b1, __m256& acc0, __m256& acc1) const {
    const __m256 av = _mm256_broadcast_ss(a);
    acc0 = _mm256_fmadd_ps(av, b0, acc0);
    if (kVecs == 2) acc1 = _mm256_fmadd_ps(av, b1, acc1);
  }
  void store_row(float* ci, __m256 acc0, __m256 acc1, bool accumulate) const {
    if (accumulate) acc0 = _mm256_add_ps(acc0, load(ci, 0));
    store(ci, 0, acc0);
    if (kVecs == 2) {
      if (accumulate) acc1 = _mm256_add_ps(acc1, load(ci, 1));
      store(ci, 1, acc1);
    }
  }
};

// One tile of m_valid (1..6) rows. kPacked: A is a packed panel (a_rs = 1, a_cs = MR) and
// m_valid == MR, so the row offsets are constants. The accumulators are named locals because GCC
// keeps an array of __m256 on the stack.
template <int kVecs, bool kMasked, bool kPacked>
void tile(const Cols<kVecs, kMasked>& cols, size_t kc, const float* a, size_t a_rs, size_t a_cs,
          const float* b, size_t ldb, float* c, size_t ldc, size_t m_valid, __m256 init0,
          __m256 init1, bool accumulate) {
  const size_t step = kPacked ? MR : a_cs;
  const size_t last = m_valid - 1;
  const size_t o1 = kPacked ? 1 : (last < 1 ? last : 1) * a_rs;
  const size_t o2 = kPacked ? 2 : (last < 2 ? last : 2) * a_rs;
  const size_t o3 = kPacked ? 3 : (last < 3 ? last : 3) * a_rs;
  const size_t o4 = kPacked ? 4 : (last < 4 ? last : 4) * a_rs;
  const size_t o5 = kPacked ? 5 : (last < 5 ? last : 5) * a_rs;

  if (kc >= kPrefetchMinKc) {
    for (size_t i = 0; i < m_valid; ++i) {
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + kVecs * 8 - 1), _MM_HINT_T0);
    }
  }

  __m256 c00 = init0, c10 = init0, c20 = init0, c30 = init0, c40 = init0, c50 = init0;
  __m256 c01 = init1, c11 = init1, c21 = init1, c31 = init1, c41 = init1, c51 = init1;
#pragma GCC unroll 4
  for (size_t p = 0; p < kc; ++p) {
    const __m256 b0 = cols.load(b, 0);
    const __m256 b1 = kVecs == 2 ? cols.load(b, 1) : b0;
    cols.fma_row(a, b0, b1, c00, c01);
    cols.fma_row(a + o1, b0, b1, c10, c11);
    cols.fma_row(a + o2, b0, b1, c20, c21);
    cols.fma_row(a + o3, b0, b1, c30, c31);
    cols.fma_row(a + o4, b0, b1, c40, c41);
    cols.fma_row(a + o5, b0, b1, c50, c51);
    a += step;
    b += ldb;
  }

  cols.store_row(c, c00, c01, accumulate);
  if (m_valid > 1) cols.store_row(c + ldc, c10, c11, accumulate);
  if (m_valid > 2) cols.store_row(c + 2 * ldc, c20, c21, accumulate);
  if (m_valid > 3) cols.store_row(c + 3 * ldc, c30, c31, accumulate);
  if (m_valid > 4) cols.store_row(c + 4 * ldc, c40, c41, accumulate);
  if (m_valid > 5) cols.store_row(c + 5 * ldc, c50, c51, accumulate);
}

// Twelve full rows of a panel at most 8 wide: the 6-row tile would leave half the accumulators
// idle, so two row tiles share each load of B (12 accumulators, 12 broadcasts, 12 FMAs per k).
template <bool kMasked>
void tile12x8(const Cols<1, kMasked>& cols, size_t kc, const float* a, size_t a_rs, size_t a_cs,
              const float* b, size_t ldb, float* c, size_t ldc, __m256 init, bool accumulate) {
  const float* a6 = a + 6 * a_rs;
  const size_t o1 = a_rs, o2 = 2 * a_rs, o3 = 3 * a_rs, o4 = 4 * a_rs, o5 = 5 * a_rs;
  __m256 c0 = init, c1 = init, c2 = init, c3 = init, c4 = init, c5 = init;
  __m256 c6 = init, c7 = init, c8 = init, c9 = init, c10 = init, c11 = init;
  __m256 unused = init;
#pragma GCC unroll 4
  for (size_t p = 0; p < kc; ++p) {
    const __m256 b0 = cols.load(b, 0);
    cols.fma_row(a, b0, b0, c0, unused);
    cols.fma_row(a + o1, b0, b0, c1, unused);
    cols.fma_row(a + o2, b0, b0, c2, unused);
    cols.fma_row(a + o3, b0, b0, c3, unused);
    cols.fma_row(a + o4, b0, b0, c4, unused);
    cols.fma_row(a + o5, b0, b0, c5, unused);
    cols.fma_row(a6, b0, b0, c6, unused);
    cols.fma_row(a6 + o1, b0, b0, c7, unused);
    cols.fma_row(a6 + o2, b0, b0, c8, unused);
    cols.fma_row(a6 + o3, b0, b0, c9, unused);
    cols.fma_row(a6 + o4, b0, b0, c10, unused);
    cols.fma_row(a6 + o5, b0, b0, c11, unused);
    a += a_cs;
    a6 += a_cs;
    b += ldb;
  }
  const __m256 rows[12] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11};
  for (int i = 0; i < 12; ++i, c += ldc) cols.store_row(c, rows[i], unused, accumulate);
}

template <int kVecs, bool kMasked>
void panel(size_t m, size_t n_valid, size_t kc, const float* a, size_t a_rs, size_t a_cs, size_t a_ms,
           const float* b, size_t ldb, float* c, size_t ldc, const float* bias, bool accumulate) {
  const size_t tail = kMasked ? n_valid - (kVecs - 1) * 8 : 8;
  const Cols<kVecs, kMasked> cols{lane_mask(tail), tail};
  const bool with_bias = !accumulate && bias != nullptr;
  const __m256 init0 = with_bias ? cols.load(bias, 0) : _mm256_setzero_ps();
  const __m256 init1 = with_bias && kVecs == 2 ? cols.load(bias, 1) : _mm256_setzero_ps();
  // In place, two row tiles are 12 rows of A at a stride of a_rs; packed panels are not.
  if constexpr (kVecs == 1) {
    if (a_ms == MR * a_rs) {
      for (; m >= 2 * MR; m -= 2 * MR, a += 2 * a_ms, c += 2 * MR * ldc) {
        tile12x8(cols, kc, a, a_rs, a_cs, b, ldb, c, ldc, init0, accumulate);
      }
    }
  }
  if (a_rs == 1 && a_cs == MR) {
    for (; m >= MR; m -= MR, a += a_ms, c += MR * ldc) {
      tile<kVecs, kMasked, true>(cols, kc, a, 1, MR, b, ldb, c, ldc, MR, init0, init1, accumulate);
    }
  } else {
    for (; m >= MR; m -= MR, a += a_ms, c += MR * ldc) {
      tile<kVecs, kMasked, false>(cols, kc, a, a_rs, a_cs, b, ldb, c, ldc, MR, init0, init1, accumulate);
    }
  }
  if (m > 0) tile<kVecs, kMasked, false>(cols, kc, a, a_rs, a_cs, b, ldb, c, ldc, m, init0, init1, accumulate);
}

}  // namespace

void f32_gemm_6x16__avx2(size_t m, size_t n_valid, size_t kc, const float* a, size_t a_rs,
                         size_t a_cs, size_t a_ms, const float* b, size_t ldb, float* c, size_t ldc,
                         const float* bias, bool accumulate) {
  assert(n_valid >= 1 && n_valid <= 16);
  if (n_valid == 16) {
    panel<2, false>(m, n_valid, kc, a, a_rs, a_cs, a_ms, b, ldb, c, ldc, bias, accumulate);
  } else if (n_valid > 8) {
    panel<2, true>(m, n_valid, kc, a, a_rs, a_cs, a_ms, b, ldb, c, ldc, bias, accumulate);
  } else if (n_valid == 8) {
    panel<1, false>(m, n_valid, kc, a, a_rs, a_cs, a_ms, b, ldb, c, ldc, bias, accumulate);
  } else {
    panel<1, true>(m, n_valid, kc, a, a_rs, a_cs, a_ms, b, ldb, c, ldc, bias, accumulate);
  }
}

}  // namespace attn

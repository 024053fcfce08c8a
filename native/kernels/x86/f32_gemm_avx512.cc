// AVX-512 GEMM microkernel f32_gemm_12x32__avx512: one 32-column panel of C in 12-row tiles,
// contract in attn/kernels.h (GemmUkernelFn).
//
//   per tile: C (12, 32) (+)= A (12, kc) @ B (kc, 32)   [+ bias (32) when not accumulating]
//
// The tile stays in 24 zmm accumulators (12 rows x 2 vectors of 16 floats). Each step of k loads
// one row of B (2 vectors), broadcasts the 12 values of one column of A and issues 24 FMAs:
// 14 loads per 24 FMAs, so the two FMA pipes, not the load ports, set the pace, and 24
// independent chains cover the FMA latency (4 cycles x 2 pipes) three times over.
// Tile chosen by measurement: AMD Zen 5, one thread, through native/core/matmul.cc, best of
// repeated runs, GFLOP/s at 1024^3 / 2048^3 (one core's FMA peak: 224):
//   12x32, kc 512: 206 / 202     14x32, kc 512: 200 / 202     6x64, kc 512: 197 / 182
//   12x32, kc 256: 198 / 181     14x32, kc 256: 194 / 185     8x48, kc 256: 204 / 86
// (8x48 at 2048: 2048 columns are 42.7 panels of 48, and the edge panel and odd stride cost
// more than the bigger tile gains.) Hence the table's kc = 512 for this set (attn/kernels.h).
// Edge panels (n_valid < 32) load B and load/store C under an opmask, so columns past n_valid
// are never touched; a last tile of r < 12 rows runs a kernel compiled for exactly r rows (no
// wasted FMAs, no reads past row m of A). Packed A panels (a_rs = 1, a_cs = 12) get a variant
// with constant row offsets. Packing, cache blocking and threads live in native/core/matmul.cc.
#include <immintrin.h>

#include <cassert>
#include <cstdint>

#include "attn/kernels.h"

namespace attn {
namespace {

constexpr int MR = 12;
constexpr int NV = 2;  // vectors of 16 columns per panel
constexpr size_t NR = 16 * NV;
// Below this depth the C tile is not worth prefetching: the k loop is too short to hide it.
constexpr size_t kPrefetchMinKc = 32;

// R rows x V vectors of the tile; kMasked: the last vector holds `tail` columns (opmask).
// kPacked: A is a packed panel, a_rs = 1 and a_cs = R, so row offsets are constants.
// Arrays of __m512 indexed by unrolled constants end up in registers (GCC's SRA); checked with
// objdump: no spills in the k loop.
template <int R, int V, bool kMasked, bool kPacked>
void tile(size_t kc, const float* a, size_t a_rs, size_t a_cs, const float* b, size_t ldb, float* c,
          size_t ldc, __mmask16 tail, const __m512* init, bool accumulate) {
  if (kc >= kPrefetchMinKc) {
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16 * V - 1), _MM_HINT_T0);
    }
  }
  const size_t rs = kPacked ? 1 : a_rs;
  const size_t step = kPacked ? R : a_cs;
  __m512 acc[R][V];
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[i][v] = init[v];
  }
#pragma GCC unroll 2
  for (size_t p = 0; p < kc; ++p) {
    __m512 bv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      bv[v] = kMasked && v == V - 1 ? _mm512_maskz_loadu_ps(tail, b + 16 * v) : _mm512_loadu_ps(b + 16 * v);
    }
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) {
      const __m512 av = _mm512_set1_ps(a[i * rs]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
    }
    a += step;
    b += ldb;
  }
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    float* ci = c + i * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      const bool part = kMasked && v == V - 1;
      __m512 r = acc[i][v];
      if (accumulate) r = _mm512_add_ps(r, part ? _mm512_maskz_loadu_ps(tail, ci + 16 * v) : _mm512_loadu_ps(ci + 16 * v));
      if (part) {
        _mm512_mask_storeu_ps(ci + 16 * v, tail, r);
      } else {
        _mm512_storeu_ps(ci + 16 * v, r);
      }
    }
  }
}

// A last tile of r (1 .. MR - 1) rows, each count compiled on its own.
template <int V, bool kMasked, int R = MR - 1>
void tile_rows(size_t r, size_t kc, const float* a, size_t a_rs, size_t a_cs, const float* b, size_t ldb,
               float* c, size_t ldc, __mmask16 tail, const __m512* init, bool accumulate) {
  if constexpr (R > 0) {
    if (r == R) return tile<R, V, kMasked, false>(kc, a, a_rs, a_cs, b, ldb, c, ldc, tail, init, accumulate);
    tile_rows<V, kMasked, R - 1>(r, kc, a, a_rs, a_cs, b, ldb, c, ldc, tail, init, accumulate);
  }
}

template <int V, bool kMasked>
void panel(size_t m, size_t n_valid, size_t kc, const float* a, size_t a_rs, size_t a_cs, size_t a_ms,
           const float* b, size_t ldb, float* c, size_t ldc, const float* bias, bool accumulate) {
  // Columns in the last vector: n_valid - 16 * (V - 1), 1..16.
  const __mmask16 tail = static_cast<__mmask16>((1u << (n_valid - 16 * (V - 1))) - 1u);
  __m512 init[V];
  for (int v = 0; v < V; ++v) {
    init[v] = !accumulate && bias != nullptr ? _mm512_maskz_loadu_ps(v == V - 1 ? tail : 0xFFFF, bias + 16 * v)
                                             : _mm512_setzero_ps();
  }
  if (a_rs == 1 && a_cs == static_cast<size_t>(MR)) {
    for (; m >= MR; m -= MR, a += a_ms, c += MR * ldc) {
      tile<MR, V, kMasked, true>(kc, a, 1, MR, b, ldb, c, ldc, tail, init, accumulate);
    }
  } else {
    for (; m >= MR; m -= MR, a += a_ms, c += MR * ldc) {
      tile<MR, V, kMasked, false>(kc, a, a_rs, a_cs, b, ldb, c, ldc, tail, init, accumulate);
    }
  }
  if (m > 0) tile_rows<V, kMasked>(m, kc, a, a_rs, a_cs, b, ldb, c, ldc, tail, init, accumulate);
}

// n_valid in (16 * (V - 1), 16 * V]: a full panel, or V vectors with the last one masked.
template <int V>
void columns(size_t m, size_t n_valid, size_t kc, const float* a, size_t a_rs, size_t a_cs, size_t a_ms,
             const float* b, size_t ldb, float* c, size_t ldc, const float* bias, bool accumulate) {
  if constexpr (V > 1) {
    if (n_valid <= 16 * (V - 1)) {
      return columns<V - 1>(m, n_valid, kc, a, a_rs, a_cs, a_ms, b, ldb, c, ldc, bias, accumulate);
    }
  }
  if (n_valid == 16 * V) {
    panel<V, false>(m, n_valid, kc, a, a_rs, a_cs, a_ms, b, ldb, c, ldc, bias, accumulate);
  } else {
    panel<V, true>(m, n_valid, kc, a, a_rs, a_cs, a_ms, b, ldb, c, ldc, bias, accumulate);
  }
}

}  // namespace

void f32_gemm_12x32__avx512(size_t m, size_t n_valid, size_t kc, const float* a, size_t a_rs,
                            size_t a_cs, size_t a_ms, const float* b, size_t ldb, float* c, size_t ldc,
                            const float* bias, bool accumulate) {
  assert(n_valid >= 1 && n_valid <= NR);
  (void)NR;
  columns<NV>(m, n_valid, kc, a, a_rs, a_cs, a_ms, b, ldb, c, ldc, bias, accumulate);
}

}  // namespace attn

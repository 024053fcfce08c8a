// AVX-512 matrix-vector products (KernelTable::gemv_*; the walk is native/kernels/common/gemv_tiles.h):
// 16 weights per register, F16 widened by vcvtph2ps and BF16 by a 16-bit shift of each lane.
#include <immintrin.h>

#include <cstdint>
#include <type_traits>

#include "attn/half.h"
#include "attn/kernels.h"

namespace attn {
namespace {

#include "../common/gemv_tiles.h"

struct V512 {
  using Reg = __m512;
  static constexpr size_t kLanes = 16;
  // 3 W rows x 4 x rows: 24 accumulators, 4 x vectors and a W vector of the 32 registers. F32
  // batches of 8 over GPT-2 small's matrices (2 threads, Zen 5) 10-15% faster than 2 x 4, F16 the
  // same; the gain is at k = 3072, where 8 rows of x outgrow L1 and each W group reloads them.
  static constexpr size_t kRowsX = 4;
  static constexpr size_t kRowsW = 3;
  static Reg zero() { return _mm512_setzero_ps(); }
  static Reg load_x(const float* x) { return _mm512_loadu_ps(x); }
#ifdef ATTN_AVX512_SIMDE
  static void hold(Reg&) {}  // SIMDe's Reg is a struct, not a register
#else
  static void hold(Reg& r) { __asm__("" : "+v"(r)); }
#endif
  static void prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }
  static Reg fma(Reg a, Reg b, Reg acc) { return _mm512_fmadd_ps(a, b, acc); }
  static Reg add(Reg a, Reg b) { return _mm512_add_ps(a, b); }
  static float sum(Reg v) { return _mm512_reduce_add_ps(v); }
  template <DType T>
  static Reg load_w(const Elem<T>* w) {
    if constexpr (T == DType::kF32) {
      return _mm512_loadu_ps(w);
    } else {
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
      if constexpr (T == DType::kF16) return _mm512_cvtph_ps(h);
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
  }
};

}  // namespace

void f32_gemv_1x4__avx512(const void* w, size_t ldw, size_t n, const float* x, size_t ldx, size_t m, size_t k,
                          float* y, size_t ldy) {
  gemv<V512, DType::kF32>(w, ldw, n, x, ldx, m, k, y, ldy);
}
void f16_gemv_1x4__avx512(const void* w, size_t ldw, size_t n, const float* x, size_t ldx, size_t m, size_t k,
                          float* y, size_t ldy) {
  gemv<V512, DType::kF16>(w, ldw, n, x, ldx, m, k, y, ldy);
}
void bf16_gemv_1x4__avx512(const void* w, size_t ldw, size_t n, const float* x, size_t ldx, size_t m, size_t k,
                           float* y, size_t ldy) {
  gemv<V512, DType::kBF16>(w, ldw, n, x, ldx, m, k, y, ldy);
}

}  // namespace attn

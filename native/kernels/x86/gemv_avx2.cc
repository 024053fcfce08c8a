// AVX2 matrix-vector products (KernelTable::gemv_*; the walk is native/kernels/common/gemv_tiles.h):
// 8 weights per register, F16 widened by F16C's vcvtph2ps and BF16 by a 16-bit shift of each lane.
#include <immintrin.h>

#include <cstdint>
#include <type_traits>

#include "attn/half.h"
#include "attn/kernels.h"

namespace attn {
namespace {

#include "../common/gemv_tiles.h"

struct V256 {
  using Reg = __m256;
  static constexpr size_t kLanes = 8;
  // 2 W rows x 3 x rows: 12 accumulators, 3 x vectors and a W vector, all 16 registers. Batches of
  // 8 (Zen 5, one thread, W in cache): F32 1.3x and F16 1.1x the rate of 2 x 2, ahead of 3 x 2.
  static constexpr size_t kRowsX = 3;
  static constexpr size_t kRowsW = 2;
  static Reg zero() { return _mm256_setzero_ps(); }
  static Reg load_x(const float* x) { return _mm256_loadu_ps(x); }
  static void hold(Reg& r) { __asm__("" : "+x"(r)); }
  static void prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }
  static Reg fma(Reg a, Reg b, Reg acc) { return _mm256_fmadd_ps(a, b, acc); }
  static Reg add(Reg a, Reg b) { return _mm256_add_ps(a, b); }
  static float sum(Reg v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  template <DType T>
  static Reg load_w(const Elem<T>* w) {
    if constexpr (T == DType::kF32) {
      return _mm256_loadu_ps(w);
    } else {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w));
      if constexpr (T == DType::kF16) return _mm256_cvtph_ps(h);
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
  }
};

}  // namespace

void f32_gemv_1x4__avx2(const void* w, size_t ldw, size_t n, const float* x, size_t ldx, size_t m, size_t k,
                        float* y, size_t ldy) {
  gemv<V256, DType::kF32>(w, ldw, n, x, ldx, m, k, y, ldy);
}
void f16_gemv_1x4__avx2(const void* w, size_t ldw, size_t n, const float* x, size_t ldx, size_t m, size_t k,
                        float* y, size_t ldy) {
  gemv<V256, DType::kF16>(w, ldw, n, x, ldx, m, k, y, ldy);
}
void bf16_gemv_1x4__avx2(const void* w, size_t ldw, size_t n, const float* x, size_t ldx, size_t m, size_t k,
                         float* y, size_t ldy) {
  gemv<V256, DType::kBF16>(w, ldw, n, x, ldx, m, k, y, ldy);
}

}  // namespace attn

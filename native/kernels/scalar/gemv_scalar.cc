// Scalar matrix-vector products (KernelTable::gemv_*; the walk is native/kernels/common/gemv_tiles.h),
// one weight per "register": the reference the SIMD sets are tested against.
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "attn/half.h"
#include "attn/kernels.h"

namespace attn {
namespace {

#include "../common/gemv_tiles.h"

struct VScalar {
  using Reg = float;
  static constexpr size_t kLanes = 1;
  static constexpr size_t kRowsX = 4;
  static constexpr size_t kRowsW = 2;
  static Reg zero() { return 0.f; }
  static Reg load_x(const float* x) { return *x; }
  static void hold(Reg&) {}
  static void prefetch(const void*) {}  // one weight per step: a prefetch each would cost more than it saves
  static Reg fma(Reg a, Reg b, Reg acc) { return a * b + acc; }
  static Reg add(Reg a, Reg b) { return a + b; }
  static float sum(Reg v) { return v; }
  template <DType T>
  static Reg load_w(const Elem<T>* w) { return weight_to_f32<T>(w); }
};

}  // namespace

void f32_gemv_1x4__scalar(const void* w, size_t ldw, size_t n, const float* x, size_t ldx, size_t m, size_t k,
                          float* y, size_t ldy) {
  gemv<VScalar, DType::kF32>(w, ldw, n, x, ldx, m, k, y, ldy);
}
void f16_gemv_1x4__scalar(const void* w, size_t ldw, size_t n, const float* x, size_t ldx, size_t m, size_t k,
                          float* y, size_t ldy) {
  gemv<VScalar, DType::kF16>(w, ldw, n, x, ldx, m, k, y, ldy);
}
void bf16_gemv_1x4__scalar(const void* w, size_t ldw, size_t n, const float* x, size_t ldx, size_t m, size_t k,
                           float* y, size_t ldy) {
  gemv<VScalar, DType::kBF16>(w, ldw, n, x, ldx, m, k, y, ldy);
}

}  // namespace attn

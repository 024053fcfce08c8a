// NEON matrix-vector products (KernelTable::gemv_*; the walk is native/kernels/common/gemv_tiles.h):
// 4 weights per register, F16 widened by vcvt_f32_f16 and BF16 by a 16-bit shift (vshll).
#include <arm_neon.h>

#include <cstdint>
#include <type_traits>

#include "attn/half.h"
#include "attn/kernels.h"

namespace attn {
namespace {

#include "../common/gemv_tiles.h"

struct VNeon {
  using Reg = float32x4_t;
  static constexpr size_t kLanes = 4;
  static constexpr size_t kRowsX = 4;
  static constexpr size_t kRowsW = 2;
  static Reg zero() { return vdupq_n_f32(0.f); }
  static Reg load_x(const float* x) { return vld1q_f32(x); }
  static void hold(Reg&) {}  // FMLA takes no memory operand: a loaded x vector stays in its register
  static void prefetch(const void* p) { __builtin_prefetch(p); }
  static Reg fma(Reg a, Reg b, Reg acc) { return vfmaq_f32(acc, a, b); }
  static Reg add(Reg a, Reg b) { return vaddq_f32(a, b); }
  static float sum(Reg v) { return vaddvq_f32(v); }
  template <DType T>
  static Reg load_w(const Elem<T>* w) {
    if constexpr (T == DType::kF32) {
      return vld1q_f32(w);
    } else if constexpr (T == DType::kF16) {
      return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(w)));
    } else {
      return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(w), 16));
    }
  }
};

}  // namespace

void f32_gemv_1x4__neon(const void* w, size_t ldw, size_t n, const float* x, size_t ldx, size_t m, size_t k,
                        float* y, size_t ldy) {
  gemv<VNeon, DType::kF32>(w, ldw, n, x, ldx, m, k, y, ldy);
}
void f16_gemv_1x4__neon(const void* w, size_t ldw, size_t n, const float* x, size_t ldx, size_t m, size_t k,
                        float* y, size_t ldy) {
  gemv<VNeon, DType::kF16>(w, ldw, n, x, ldx, m, k, y, ldy);
}
void bf16_gemv_1x4__neon(const void* w, size_t ldw, size_t n, const float* x, size_t ldx, size_t m, size_t k,
                         float* y, size_t ldy) {
  gemv<VNeon, DType::kBF16>(w, ldw, n, x, ldx, m, k, y, ldy);
}

}  // namespace attn

// NEON widening of 16-bit weights to float32 (KernelTable::cvt_*; exact): F16 by vcvt_f32_f16,
// BF16 by a 16-bit shift (vshll). Tails in scalar (attn/half.h).
#include <arm_neon.h>

#include <cstdint>

#include "attn/half.h"
#include "attn/kernels.h"

namespace attn {

void f16_cvt_f32__neon(const uint16_t* x, float* y, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + i))));
  for (; i < n; ++i) y[i] = f16_to_f32(x[i]);
}

void bf16_cvt_f32__neon(const uint16_t* x, float* y, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(x + i), 16)));
  for (; i < n; ++i) y[i] = bf16_to_f32(x[i]);
}

}  // namespace attn

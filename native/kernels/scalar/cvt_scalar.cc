// Scalar widening of 16-bit weights to float32 (KernelTable::cvt_*; exact, attn/half.h).
#include <cstdint>

#include "attn/half.h"
#include "attn/kernels.h"

namespace attn {

void f16_cvt_f32__scalar(const uint16_t* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = f16_to_f32(x[i]);
}

void bf16_cvt_f32__scalar(const uint16_t* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = bf16_to_f32(x[i]);
}

}  // namespace attn

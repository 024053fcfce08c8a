// A linear layer as a model stores it: y = x W^T (+ b) with W [n, k] row-major (nn.Linear's
// [out, in]) in float32, float16 or bfloat16, x [m, k] and y [m, n] float32 with row strides.
//
// Decoding is bound by reading W, so the driver reads W from memory once per call whatever m:
// threads split the n output columns into contiguous slices of W rows, and each thread walks its
// slice front to back, applying each row (or group of rows) to every row of x while it is in cache
// (KernelTable::gemv_*). 16-bit weights are converted to float32 in registers; sums are float32.
// With more than kGemvMaxRows rows of x (a prefill) the packed GEMM reuses each weight across rows
// instead (attn/matmul.h): F32 W in place, 16-bit W widened to float32 as the GEMM packs it.
#pragma once
#include <cstddef>

#include "attn/half.h"
#include "attn/status.h"

namespace attn {

struct LinearArgs {
  const float* x = nullptr;
  size_t ldx = 0;
  const void* w = nullptr;  // n rows of k values
  DType w_dtype = DType::kF32;
  const float* bias = nullptr;  // n values, or null
  float* y = nullptr;
  size_t ldy = 0;
  size_t m = 0, n = 0, k = 0;
};

// Rows of x up to which a linear runs on the matrix-vector kernels (above: the packed GEMM).
constexpr size_t kGemvMaxRows = 8;

// Same locking contract as matmul(): takes compute_lock() for its parallel region.
Status linear(const LinearArgs& args);

}  // namespace attn

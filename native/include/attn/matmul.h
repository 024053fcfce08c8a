// Batched GEMM with numpy broadcasting over leading dims:
//   C[batch] = op(A[batch]) @ op(B[batch]) (+ bias along n)
// A is (m, k) (stored (k, m) when trans_a), B is (k, n) (stored (n, k) when trans_b), C is
// (m, n) row-major and contiguous, batch after batch. Leading batch dims unravel row-major;
// a stride of 0 broadcasts that operand along the dim.
#pragma once
#include <cstddef>

#include <cstdint>

#include "attn/half.h"
#include "attn/status.h"

namespace attn {

constexpr size_t kMaxBatchRank = 8;

struct MatmulArgs {
  const float* a = nullptr;
  const float* b = nullptr;
  const float* bias = nullptr;  // n values, or null
  float* c = nullptr;
  size_t m = 0, k = 0, n = 0;
  bool trans_a = false, trans_b = false;
  // B given as 16-bit floats instead of b: b16 holds the bits (b_dtype kF16 or kBF16), trans_b
  // only (a weight matrix [n, k], nn.Linear's layout), batch_rank 0. Each block of B is widened
  // exactly as it is packed, so a prefill over 16-bit weights reads them once, at 2 bytes.
  const uint16_t* b16 = nullptr;
  DType b_dtype = DType::kF32;
  size_t batch_rank = 0;                 // 0: a single matrix product
  size_t batch_dims[kMaxBatchRank] = {};
  size_t a_batch_strides[kMaxBatchRank] = {};  // in elements
  size_t b_batch_strides[kMaxBatchRank] = {};
};

// Re-entrant: scratch is per thread, so any thread may call it at any time. Work large enough to
// share runs on num_threads() threads (attn/threads.h) under compute_lock(), so do not call it while
// holding that lock; called from inside a parallel region it runs on the calling thread.
Status matmul(const MatmulArgs& args);

}  // namespace attn

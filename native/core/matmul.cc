// Batched matmul driver. Provisional straightforward loop nest; the packed, cache-blocked
// GEMM over the table's microkernel replaces it.
#include "attn/matmul.h"

#include "attn/kernels.h"

namespace attn {

Status matmul(const MatmulArgs& args) {
  size_t batch = 1;
  for (size_t i = 0; i < args.batch_rank; ++i) batch *= args.batch_dims[i];
  const size_t m = args.m, k = args.k, n = args.n;
  for (size_t bi = 0; bi < batch; ++bi) {
    size_t a_off = 0, b_off = 0, rem = bi;
    for (size_t d = args.batch_rank; d-- > 0;) {
      const size_t idx = rem % args.batch_dims[d];
      rem /= args.batch_dims[d];
      a_off += idx * args.a_batch_strides[d];
      b_off += idx * args.b_batch_strides[d];
    }
    const float* a = args.a + a_off;
    const float* b = args.b + b_off;
    float* c = args.c + bi * m * n;
    for (size_t i = 0; i < m; ++i) {
      for (size_t j = 0; j < n; ++j) {
        float s = args.bias ? args.bias[j] : 0.f;
        for (size_t p = 0; p < k; ++p) {
          const float av = args.trans_a ? a[p * m + i] : a[i * k + p];
          const float bv = args.trans_b ? b[j * k + p] : b[p * n + j];
          s += av * bv;
        }
        c[i * n + j] = s;
      }
    }
  }
  return Status::kOk;
}

}  // namespace attn

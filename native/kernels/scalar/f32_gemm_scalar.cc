// Scalar 4x8 GEMM microkernel: one 8-column panel of C in 4-row tiles, contract in
// attn/kernels.h (GemmUkernelFn). The reference for the SIMD microkernels and the path for CPUs
// without AVX2. It reads only rows i < m of A and columns j < n_valid of B, exactly like the SIMD
// kernels promise to.
#include "attn/kernels.h"

namespace attn {

void f32_gemm_4x8__scalar(size_t m, size_t n_valid, size_t kc, const float* a, size_t a_rs,
                          size_t a_cs, size_t a_ms, const float* b, size_t ldb, float* c, size_t ldc,
                          const float* bias, bool accumulate) {
  constexpr size_t MR = 4, NR = 8;
  for (size_t i0 = 0; i0 < m; i0 += MR, a += a_ms, c += MR * ldc) {
    const size_t m_valid = m - i0 < MR ? m - i0 : MR;
    float acc[MR][NR] = {};
    if (!accumulate && bias != nullptr) {
      for (size_t i = 0; i < m_valid; ++i) {
        for (size_t j = 0; j < n_valid; ++j) acc[i][j] = bias[j];
      }
    }
    for (size_t p = 0; p < kc; ++p) {
      const float* bp = b + p * ldb;
      for (size_t i = 0; i < m_valid; ++i) {
        const float av = a[i * a_rs + p * a_cs];
        for (size_t j = 0; j < n_valid; ++j) acc[i][j] += av * bp[j];
      }
    }
    for (size_t i = 0; i < m_valid; ++i) {
      float* ci = c + i * ldc;
      for (size_t j = 0; j < n_valid; ++j) ci[j] = accumulate ? ci[j] + acc[i][j] : acc[i][j];
    }
  }
}

}  // namespace attn

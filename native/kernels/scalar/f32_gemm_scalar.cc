// Scalar 4x8 GEMM microkernel: C[4x8] (+)= A_panel[kc x 4] * B_panel[kc x 8].
// The reference for the SIMD microkernels and the path for CPUs without AVX2.
#include "attn/kernels.h"

namespace attn {

void f32_gemm_4x8__scalar(size_t kc, const float* a, const float* b, float* c, size_t ldc,
                          size_t m_valid, size_t n_valid, bool accumulate) {
  constexpr size_t MR = 4, NR = 8;
  float acc[MR][NR] = {};
  for (size_t p = 0; p < kc; ++p) {
    const float* ap = a + p * MR;
    const float* bp = b + p * NR;
    for (size_t i = 0; i < MR; ++i) {
      for (size_t j = 0; j < NR; ++j) acc[i][j] += ap[i] * bp[j];
    }
  }
  for (size_t i = 0; i < m_valid; ++i) {
    float* ci = c + i * ldc;
    for (size_t j = 0; j < n_valid; ++j) ci[j] = accumulate ? ci[j] + acc[i][j] : acc[i][j];
  }
}

}  // namespace attn

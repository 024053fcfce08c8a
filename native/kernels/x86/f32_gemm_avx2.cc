// (in progress)
#include "attn/kernels.h"
namespace attn {
void f32_gemm_6x16__avx2(size_t, const float*, const float*, float*, size_t, size_t, size_t, bool) {}
}  // namespace attn

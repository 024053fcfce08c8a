// (in progress: forwards to scalar until the SIMD version lands)
#include "attn/kernels.h"
namespace attn {
float f32_vec_dot__avx2(const float* a, const float* b, size_t n) { return f32_vec_dot__scalar(a, b, n); }
void f32_vec_axpy__avx2(float* y, const float* x, float a, size_t n) { f32_vec_axpy__scalar(y, x, a, n); }
void f32_vec_scale__avx2(float* y, float a, size_t n) { f32_vec_scale__scalar(y, a, n); }
float f32_vec_max__avx2(const float* x, size_t n) { return f32_vec_max__scalar(x, n); }
float f32_vec_expsum__avx2(float* x, float m, size_t n) { return f32_vec_expsum__scalar(x, m, n); }
}  // namespace attn

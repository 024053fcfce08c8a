// The kernel table: one function pointer per primitive, filled once at load time for the best
// instruction set this CPU (and its OS) supports. Drivers in native/core only call through it, so
// ISA-specific code stays in native/kernels/<isa>/ and is compiled with its own -m flags.
#pragma once
#include <cstddef>

namespace attn {

// One column panel of C, NR wide, in MR-row tiles: C[m x n_valid] (+)= A[m x kc] * B[kc x n_valid].
// A element (i, p) of the tile starting at row i0 is a[(i0 / MR) * a_ms + i * a_rs + p * a_cs]:
// packed MR-row panels have a_rs = 1, a_cs = MR, a_ms = MR * kc; a row-major matrix read in place
// has a_rs = lda, a_cs = 1, a_ms = MR * lda (transposed: a_rs = 1, a_cs = lda, a_ms = MR).
// B row p is b[p * ldb ...] (a packed panel has ldb = NR). Only rows i < m of A and columns
// j < n_valid of B and C are touched, so edge tiles need no padding. Each MR x NR tile of C stays
// in registers. accumulate: C += A*B; otherwise C = A*B + bias (bias: n_valid values, or null).
// kc == 0 is allowed (C = bias or 0).
using GemmUkernelFn = void (*)(size_t m, size_t n_valid, size_t kc, const float* a, size_t a_rs,
                               size_t a_cs, size_t a_ms, const float* b, size_t ldb, float* c,
                               size_t ldc, const float* bias, bool accumulate);

struct KernelTable {
  const char* isa;  // "avx2" or "scalar"

  // --- GEMM (native/kernels/*/f32_gemm_*.cc) ---
  size_t gemm_mr;
  size_t gemm_nr;
  GemmUkernelFn gemm_ukernel;

  // --- vector primitives for attention (native/kernels/*/f32_vec_*.cc) ---
  float (*vec_dot)(const float* a, const float* b, size_t n);
  void (*vec_axpy)(float* y, const float* x, float a, size_t n);    // y += a * x
  void (*vec_scale)(float* y, float a, size_t n);                  // y *= a
  float (*vec_max)(const float* x, size_t n);                      // max(x), -inf when n == 0
  float (*vec_expsum)(float* x, float max, size_t n);              // x = exp(x - max); sum(x)
};

// The table in use. Selected on first use from CPUID + XGETBV (x86) or the build target (arm64).
const KernelTable& kernels();

// Names of the kernel sets this CPU can run, best first (e.g. {"avx2","scalar"}).
// select_isa() switches the active table (tests and benchmarks use it to compare ISAs);
// it returns false, changing nothing, when the CPU cannot run that set.
bool select_isa(const char* isa);
const char* const* supported_isas(size_t* count);

// --- kernel symbols, XNNPACK-style names: <dtype>_<family>_<tile>__<isa> ---
void f32_gemm_4x8__scalar(size_t, size_t, size_t, const float*, size_t, size_t, size_t, const float*,
                          size_t, float*, size_t, const float*, bool);
float f32_vec_dot__scalar(const float*, const float*, size_t);
void f32_vec_axpy__scalar(float*, const float*, float, size_t);
void f32_vec_scale__scalar(float*, float, size_t);
float f32_vec_max__scalar(const float*, size_t);
float f32_vec_expsum__scalar(float*, float, size_t);

#if defined(ATTN_HAVE_X86_KERNELS)
void f32_gemm_6x16__avx2(size_t, size_t, size_t, const float*, size_t, size_t, size_t, const float*,
                         size_t, float*, size_t, const float*, bool);
float f32_vec_dot__avx2(const float*, const float*, size_t);
void f32_vec_axpy__avx2(float*, const float*, float, size_t);
void f32_vec_scale__avx2(float*, float, size_t);
float f32_vec_max__avx2(const float*, size_t);
float f32_vec_expsum__avx2(float*, float, size_t);
#endif

}  // namespace attn

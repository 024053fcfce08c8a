// The kernel table: one function pointer per primitive, filled once at load time for the best
// instruction set this CPU (and its OS) supports. Drivers in native/core only call through it, so
// ISA-specific code stays in native/kernels/<isa>/ and is compiled with its own -m flags.
#pragma once
#include <cstddef>

namespace attn {

// C[m_valid x n_valid] (+)= A_panel * B_panel, where A_panel holds kc columns of MR rows
// (A_panel[p * MR + i]) and B_panel holds kc rows of NR columns (B_panel[p * NR + j]).
// The kernel keeps the whole MR x NR tile of C in registers; m_valid <= MR and n_valid <= NR
// mark edge tiles. accumulate = false overwrites C instead of adding to it.
using GemmUkernelFn = void (*)(size_t kc, const float* a_panel, const float* b_panel, float* c,
                               size_t ldc, size_t m_valid, size_t n_valid, bool accumulate);

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
void f32_gemm_4x8__scalar(size_t, const float*, const float*, float*, size_t, size_t, size_t, bool);
float f32_vec_dot__scalar(const float*, const float*, size_t);
void f32_vec_axpy__scalar(float*, const float*, float, size_t);
void f32_vec_scale__scalar(float*, float, size_t);
float f32_vec_max__scalar(const float*, size_t);
float f32_vec_expsum__scalar(float*, float, size_t);

#if defined(ATTN_HAVE_X86_KERNELS)
void f32_gemm_6x16__avx2(size_t, const float*, const float*, float*, size_t, size_t, size_t, bool);
float f32_vec_dot__avx2(const float*, const float*, size_t);
void f32_vec_axpy__avx2(float*, const float*, float, size_t);
void f32_vec_scale__avx2(float*, float, size_t);
float f32_vec_max__avx2(const float*, size_t);
float f32_vec_expsum__avx2(float*, float, size_t);
#endif

}  // namespace attn

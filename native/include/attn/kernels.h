// The kernel table: one function pointer per primitive, filled once at load time for the best
// instruction set this CPU (and its OS) supports. Drivers in native/core only call through it, so
// ISA-specific code stays in native/kernels/<isa>/ and is compiled with its own -m flags.
#pragma once
#include <cstddef>
#include <cstdint>

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

// Matrix-vector products for decode (native/kernels/*/gemv_*.cc; driver in native/core/linear.cc):
// y[i * ldy + j] = sum_p W[j * ldw + p] * x[i * ldx + p] for j < n rows of W and i < m rows of x,
// W float32 (gemv_f32) or 16-bit (gemv_f16, gemv_bf16: uint16_t bits, converted in registers),
// sums in float32. Each W row is read from memory once per call, whatever m.
using GemvFn = void (*)(const void* w, size_t ldw, size_t n, const float* x, size_t ldx, size_t m, size_t k,
                        float* y, size_t ldy);

struct KernelTable {
  const char* isa;  // "avx512", "avx2", "neon" or "scalar"

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

  // --- attention tiles (native/kernels/*/f32_{vec,attn}_*.cc; owner: the attention kernels) ---
  // Score tiles are stored transposed, s[j * lds + r] = key j against query row r, so one vector
  // holds one key for consecutive rows and the online softmax runs down columns without
  // horizontal reductions. lds is a multiple of kAttnPanel; k_j = k + j * k_st, v_j likewise.
  void (*vec_softcap)(float* x, float scale, float cap, size_t n);  // x = cap * tanh(scale * x / cap)
  // s[j*lds + r] = k_j . q_r for j < nk and the kAttnPanel rows of a packed Q panel,
  // qp[p * kAttnPanel + r] = q_r[p] for p < d.
  void (*attn_qk_panel)(const float* k, size_t k_st, size_t nk, const float* qp, size_t d, float* s,
                        size_t lds);
  // s[j*lds + r] = k_j . q_r for j < nk, r < nr, with unpacked rows q_r = q + r * q_st (decode).
  void (*attn_qk_rows)(const float* k, size_t k_st, size_t nk, const float* q, size_t q_st, size_t nr,
                       size_t d, float* s, size_t lds);
  // One online-softmax step for rows r < nr (a multiple of 8) over keys j < nk, where x = scale * s
  // and x = -inf for j >= vis[r] (whatever s holds there):
  //   m_new <- max(m, max_j x);  alpha <- exp(m - m_new);  s <- p = exp(x - m_new)
  //   l <- alpha * l + sum_j p;  m <- m_new
  // A row with no finite score keeps m = -inf and gets s = 0, alpha = 0 (never NaN).
  void (*attn_softmax)(float* s, size_t lds, size_t nk, size_t nr, const int32_t* vis, float scale,
                       float* m, float* l, float* alpha);
  // o_r <- alpha_r * o_r + sum_j p[j*ldp + r] * v_j over columns c < dv, for rows r < nr, where
  // o_r = o + r * ldo. Keys j < max(vis) may be read; p must be 0 for j >= vis[r] (as the softmax
  // step leaves it).
  void (*attn_pv)(const float* p, size_t ldp, const float* v, size_t v_st, const int32_t* vis,
                  const float* alpha, float* o, size_t ldo, size_t nr, size_t dv);
  // attn_qk_rows and attn_pv over the keys / values of a half-precision KV cache (attn/kv_cache.h):
  // the same contracts with k / v as 16-bit bits, each vector converted to float32 as it is loaded
  // (exactly), so the cache is read once, at half the bytes, and the sums are the float32 kernels'
  // on the widened values, bit for bit. Prefill's packed qk_panel instead runs on a step of keys
  // widened into scratch (native/core/attention_flash.cc), where each key serves many rows.
  void (*attn_qk_rows_f16)(const uint16_t* k, size_t k_st, size_t nk, const float* q, size_t q_st, size_t nr,
                           size_t d, float* s, size_t lds);
  void (*attn_qk_rows_bf16)(const uint16_t* k, size_t k_st, size_t nk, const float* q, size_t q_st, size_t nr,
                            size_t d, float* s, size_t lds);
  void (*attn_pv_f16)(const float* p, size_t ldp, const uint16_t* v, size_t v_st, const int32_t* vis,
                      const float* alpha, float* o, size_t ldo, size_t nr, size_t dv);
  void (*attn_pv_bf16)(const float* p, size_t ldp, const uint16_t* v, size_t v_st, const int32_t* vis,
                       const float* alpha, float* o, size_t ldo, size_t nr, size_t dv);

  // --- machine-limit probes (native/kernels/*/f32_probe_*.cc; drivers in native/core/probe.cc) ---
  // probe_fma runs `iters` iterations of independent FMA chains, probe_fma_flops_per_iter flops
  // each; probe_sum returns sum(x[0..n)). Part of the table so the bench's "% of peak" is the
  // peak of the set actually in use.
  float (*probe_fma)(size_t iters);
  size_t probe_fma_flops_per_iter;
  float (*probe_sum)(const float* x, size_t n);

  // --- Llama-family row ops (native/kernels/*/f32_{rmsnorm,rope,swiglu}_*.cc; drivers in
  // native/core/llama_ops.cc). Outputs may alias their inputs exactly (each output element is
  // written after every input it depends on has been read), never partially.
  // y = x / sqrt(mean(x^2) + eps) * w over one row of n >= 1: the sum of squares in double and
  // r = (float)(1 / sqrt(sum / n + eps)), then y = w * (x * r), each product rounded to float
  // (HF LlamaRMSNorm's order), so every set gives the same bits up to the double sum's order.
  void (*rmsnorm_row)(const float* x, const float* w, float* y, size_t n, double eps);
  // y = x / (1 + exp(-x)) (torch's float32 formula: silu(-inf) = NaN, exp(-x) = inf gives -0).
  void (*silu)(const float* x, float* y, size_t n);
  // y = silu(gate) * up, silu rounded to float first (HF: act_fn(gate_proj(x)) * up_proj(x)).
  void (*swiglu)(const float* gate, const float* up, float* y, size_t n);
  // Hugging Face rotate_half on `heads` heads of head_dim floats, x and y head-major: for i < half,
  //   y[i] = x[i] * cos[i] - x[i + half] * sin[i],  y[i + half] = x[i + half] * cos[i] + x[i] * sin[i]
  // (products rounded, then the sum: no FMA, torch's order), and y[j] = x[j] for 2 * half <= j.
  void (*rope_row)(const float* x, float* y, const float* cos, const float* sin, size_t heads,
                   size_t head_dim, size_t half);

  // --- matrix-vector products by weight type (GemvFn above) ---
  GemvFn gemv_f32;
  GemvFn gemv_f16;
  GemvFn gemv_bf16;
  // y = float32(x) for n 16-bit weights, exactly (native/kernels/*/cvt_*.cc): a prefill widens
  // blocks of W and multiplies them on the GEMM path (native/core/linear.cc).
  void (*cvt_f16_f32)(const uint16_t* x, float* y, size_t n);
  void (*cvt_bf16_f32)(const uint16_t* x, float* y, size_t n);

  // --- GEMM cache blocking for gemm_ukernel (native/core/matmul.cc); 0: the driver's defaults ---
  size_t gemm_kc;  // depth of a packed block (gemm_kc x gemm_nr floats of B per microkernel call)
  size_t gemm_mc;  // rows of A per packed block, a multiple of gemm_mr (gemm_mc x gemm_kc in L2)
};

// Rows per packed Q panel in attn_qk_panel (two AVX2 vectors, one AVX-512 vector).
constexpr size_t kAttnPanel = 16;

// The table in use. Selected on first use from CPUID + XGETBV (x86) or the build target (arm64),
// capped by the environment variable NODE_ATTENTION_SIMD when it names a set.
const KernelTable& kernels();

// Names of the kernel sets this CPU can run, best first (e.g. {"avx512","avx2","scalar"}); with
// NODE_ATTENTION_SIMD set (avx512|avx2|neon|scalar, any case) only the sets at or below it.
// select_isa() switches the active table (tests and benchmarks use it to compare ISAs);
// it returns false, changing nothing, when the CPU cannot run that set.
bool select_isa(const char* isa);
const char* const* supported_isas(size_t* count);
// Why NODE_ATTENTION_SIMD was ignored (an unknown name; the full list then applies), or null.
const char* isa_env_error();

// --- kernel symbols, XNNPACK-style names: <dtype>_<family>_<tile>__<isa> ---
void f32_gemm_4x8__scalar(size_t, size_t, size_t, const float*, size_t, size_t, size_t, const float*,
                          size_t, float*, size_t, const float*, bool);
float f32_vec_dot__scalar(const float*, const float*, size_t);
void f32_vec_axpy__scalar(float*, const float*, float, size_t);
void f32_vec_scale__scalar(float*, float, size_t);
float f32_vec_max__scalar(const float*, size_t);
float f32_vec_expsum__scalar(float*, float, size_t);
void f32_vec_softcap__scalar(float*, float, float, size_t);
void f32_attn_qk_panel__scalar(const float*, size_t, size_t, const float*, size_t, float*, size_t);
void f32_attn_qk_rows__scalar(const float*, size_t, size_t, const float*, size_t, size_t, size_t, float*,
                              size_t);
void f32_attn_softmax__scalar(float*, size_t, size_t, size_t, const int32_t*, float, float*, float*,
                              float*);
void f32_attn_pv__scalar(const float*, size_t, const float*, size_t, const int32_t*, const float*,
                         float*, size_t, size_t, size_t);
void f16_attn_qk_rows__scalar(const uint16_t*, size_t, size_t, const float*, size_t, size_t, size_t, float*, size_t);
void f16_attn_pv__scalar(const float*, size_t, const uint16_t*, size_t, const int32_t*, const float*, float*, size_t, size_t,
                       size_t);
void bf16_attn_qk_rows__scalar(const uint16_t*, size_t, size_t, const float*, size_t, size_t, size_t, float*, size_t);
void bf16_attn_pv__scalar(const float*, size_t, const uint16_t*, size_t, const int32_t*, const float*, float*, size_t, size_t,
                       size_t);
void f32_rmsnorm__scalar(const float*, const float*, float*, size_t, double);
void f32_silu__scalar(const float*, float*, size_t);
void f32_swiglu__scalar(const float*, const float*, float*, size_t);
void f32_rope__scalar(const float*, float*, const float*, const float*, size_t, size_t, size_t);
void f32_gemv_1x4__scalar(const void*, size_t, size_t, const float*, size_t, size_t, size_t, float*, size_t);
void f16_gemv_1x4__scalar(const void*, size_t, size_t, const float*, size_t, size_t, size_t, float*, size_t);
void bf16_gemv_1x4__scalar(const void*, size_t, size_t, const float*, size_t, size_t, size_t, float*, size_t);
void f16_cvt_f32__scalar(const uint16_t*, float*, size_t);
void bf16_cvt_f32__scalar(const uint16_t*, float*, size_t);

#if defined(ATTN_HAVE_X86_KERNELS)
void f32_gemm_12x32__avx512(size_t, size_t, size_t, const float*, size_t, size_t, size_t, const float*,
                            size_t, float*, size_t, const float*, bool);
float f32_vec_dot__avx512(const float*, const float*, size_t);
void f32_vec_axpy__avx512(float*, const float*, float, size_t);
void f32_vec_scale__avx512(float*, float, size_t);
float f32_vec_max__avx512(const float*, size_t);
float f32_vec_expsum__avx512(float*, float, size_t);
void f32_vec_softcap__avx512(float*, float, float, size_t);
void f32_attn_qk_panel__avx512(const float*, size_t, size_t, const float*, size_t, float*, size_t);
void f32_attn_qk_rows__avx512(const float*, size_t, size_t, const float*, size_t, size_t, size_t, float*,
                              size_t);
void f32_attn_softmax__avx512(float*, size_t, size_t, size_t, const int32_t*, float, float*, float*,
                              float*);
void f32_attn_pv__avx512(const float*, size_t, const float*, size_t, const int32_t*, const float*, float*,
                         size_t, size_t, size_t);
void f16_attn_qk_rows__avx512(const uint16_t*, size_t, size_t, const float*, size_t, size_t, size_t, float*, size_t);
void f16_attn_pv__avx512(const float*, size_t, const uint16_t*, size_t, const int32_t*, const float*, float*, size_t, size_t,
                       size_t);
void bf16_attn_qk_rows__avx512(const uint16_t*, size_t, size_t, const float*, size_t, size_t, size_t, float*, size_t);
void bf16_attn_pv__avx512(const float*, size_t, const uint16_t*, size_t, const int32_t*, const float*, float*, size_t, size_t,
                       size_t);
void f32_rmsnorm__avx512(const float*, const float*, float*, size_t, double);
void f32_silu__avx512(const float*, float*, size_t);
void f32_swiglu__avx512(const float*, const float*, float*, size_t);
void f32_rope__avx512(const float*, float*, const float*, const float*, size_t, size_t, size_t);
void f32_gemv_1x4__avx512(const void*, size_t, size_t, const float*, size_t, size_t, size_t, float*, size_t);
void f16_gemv_1x4__avx512(const void*, size_t, size_t, const float*, size_t, size_t, size_t, float*, size_t);
void bf16_gemv_1x4__avx512(const void*, size_t, size_t, const float*, size_t, size_t, size_t, float*, size_t);
void f16_cvt_f32__avx512(const uint16_t*, float*, size_t);
void bf16_cvt_f32__avx512(const uint16_t*, float*, size_t);

void f32_gemm_6x16__avx2(size_t, size_t, size_t, const float*, size_t, size_t, size_t, const float*,
                         size_t, float*, size_t, const float*, bool);
float f32_vec_dot__avx2(const float*, const float*, size_t);
void f32_vec_axpy__avx2(float*, const float*, float, size_t);
void f32_vec_scale__avx2(float*, float, size_t);
float f32_vec_max__avx2(const float*, size_t);
float f32_vec_expsum__avx2(float*, float, size_t);
void f32_vec_softcap__avx2(float*, float, float, size_t);
void f32_attn_qk_panel__avx2(const float*, size_t, size_t, const float*, size_t, float*, size_t);
void f32_attn_qk_rows__avx2(const float*, size_t, size_t, const float*, size_t, size_t, size_t, float*,
                            size_t);
void f32_attn_softmax__avx2(float*, size_t, size_t, size_t, const int32_t*, float, float*, float*,
                            float*);
void f32_attn_pv__avx2(const float*, size_t, const float*, size_t, const int32_t*, const float*, float*,
                       size_t, size_t, size_t);
void f16_attn_qk_rows__avx2(const uint16_t*, size_t, size_t, const float*, size_t, size_t, size_t, float*, size_t);
void f16_attn_pv__avx2(const float*, size_t, const uint16_t*, size_t, const int32_t*, const float*, float*, size_t, size_t,
                       size_t);
void bf16_attn_qk_rows__avx2(const uint16_t*, size_t, size_t, const float*, size_t, size_t, size_t, float*, size_t);
void bf16_attn_pv__avx2(const float*, size_t, const uint16_t*, size_t, const int32_t*, const float*, float*, size_t, size_t,
                       size_t);
void f32_rmsnorm__avx2(const float*, const float*, float*, size_t, double);
void f32_silu__avx2(const float*, float*, size_t);
void f32_swiglu__avx2(const float*, const float*, float*, size_t);
void f32_rope__avx2(const float*, float*, const float*, const float*, size_t, size_t, size_t);
void f32_gemv_1x4__avx2(const void*, size_t, size_t, const float*, size_t, size_t, size_t, float*, size_t);
void f16_gemv_1x4__avx2(const void*, size_t, size_t, const float*, size_t, size_t, size_t, float*, size_t);
void bf16_gemv_1x4__avx2(const void*, size_t, size_t, const float*, size_t, size_t, size_t, float*, size_t);
void f16_cvt_f32__avx2(const uint16_t*, float*, size_t);
void bf16_cvt_f32__avx2(const uint16_t*, float*, size_t);
#endif

#if defined(ATTN_HAVE_ARM_KERNELS)
void f32_gemm_8x12__neon(size_t, size_t, size_t, const float*, size_t, size_t, size_t, const float*,
                         size_t, float*, size_t, const float*, bool);
float f32_vec_dot__neon(const float*, const float*, size_t);
void f32_vec_axpy__neon(float*, const float*, float, size_t);
void f32_vec_scale__neon(float*, float, size_t);
float f32_vec_max__neon(const float*, size_t);
float f32_vec_expsum__neon(float*, float, size_t);
void f32_vec_softcap__neon(float*, float, float, size_t);
void f32_attn_qk_panel__neon(const float*, size_t, size_t, const float*, size_t, float*, size_t);
void f32_attn_qk_rows__neon(const float*, size_t, size_t, const float*, size_t, size_t, size_t, float*,
                            size_t);
void f32_attn_softmax__neon(float*, size_t, size_t, size_t, const int32_t*, float, float*, float*,
                            float*);
void f32_attn_pv__neon(const float*, size_t, const float*, size_t, const int32_t*, const float*, float*,
                       size_t, size_t, size_t);
void f16_attn_qk_rows__neon(const uint16_t*, size_t, size_t, const float*, size_t, size_t, size_t, float*, size_t);
void f16_attn_pv__neon(const float*, size_t, const uint16_t*, size_t, const int32_t*, const float*, float*, size_t, size_t,
                      size_t);
void bf16_attn_qk_rows__neon(const uint16_t*, size_t, size_t, const float*, size_t, size_t, size_t, float*, size_t);
void bf16_attn_pv__neon(const float*, size_t, const uint16_t*, size_t, const int32_t*, const float*, float*, size_t, size_t,
                      size_t);
void f32_rmsnorm__neon(const float*, const float*, float*, size_t, double);
void f32_silu__neon(const float*, float*, size_t);
void f32_swiglu__neon(const float*, const float*, float*, size_t);
void f32_rope__neon(const float*, float*, const float*, const float*, size_t, size_t, size_t);
void f32_gemv_1x4__neon(const void*, size_t, size_t, const float*, size_t, size_t, size_t, float*, size_t);
void f16_gemv_1x4__neon(const void*, size_t, size_t, const float*, size_t, size_t, size_t, float*, size_t);
void bf16_gemv_1x4__neon(const void*, size_t, size_t, const float*, size_t, size_t, size_t, float*, size_t);
void f16_cvt_f32__neon(const uint16_t*, float*, size_t);
void bf16_cvt_f32__neon(const uint16_t*, float*, size_t);
#endif

}  // namespace attn

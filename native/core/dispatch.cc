// Fills the kernel table once. Every ISA table is a constant; selection only picks a pointer,
// so switching (for tests and benchmarks) is a single atomic store.
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "attn/cpu_features.h"
#include "attn/kernels.h"
#include "attn/probe.h"

namespace attn {
namespace {

constexpr KernelTable kScalarTable = {
    "scalar", 4, 8, f32_gemm_4x8__scalar,
    f32_vec_dot__scalar, f32_vec_axpy__scalar, f32_vec_scale__scalar, f32_vec_max__scalar,
    f32_vec_expsum__scalar,
    // attention tiles
    f32_vec_softcap__scalar, f32_attn_qk_panel__scalar, f32_attn_qk_rows__scalar,
    f32_attn_softmax__scalar, f32_attn_pv__scalar,
    f16_attn_qk_rows__scalar, bf16_attn_qk_rows__scalar, f16_attn_pv__scalar, bf16_attn_pv__scalar,
    // probes
    f32_probe_fma__scalar, kProbeFmaFlopsPerIter__scalar, f32_probe_sum__scalar,
    // Llama-family row ops
    f32_rmsnorm__scalar, f32_silu__scalar, f32_swiglu__scalar, f32_rope__scalar,
    // matrix-vector products
    f32_gemv_1x4__scalar, f16_gemv_1x4__scalar, bf16_gemv_1x4__scalar,
    f16_cvt_f32__scalar, bf16_cvt_f32__scalar,
    // GEMM blocking: the driver's defaults
    0, 0,
};

#if defined(ATTN_HAVE_X86_KERNELS)
constexpr KernelTable kAvx512Table = {
    "avx512", 12, 32, f32_gemm_12x32__avx512,
    f32_vec_dot__avx512, f32_vec_axpy__avx512, f32_vec_scale__avx512, f32_vec_max__avx512,
    f32_vec_expsum__avx512,
    // attention tiles
    f32_vec_softcap__avx512, f32_attn_qk_panel__avx512, f32_attn_qk_rows__avx512,
    f32_attn_softmax__avx512, f32_attn_pv__avx512,
    f16_attn_qk_rows__avx512, bf16_attn_qk_rows__avx512, f16_attn_pv__avx512, bf16_attn_pv__avx512,
    // probes
    f32_probe_fma__avx512, kProbeFmaFlopsPerIter__avx512, f32_probe_sum__avx512,
    // Llama-family row ops
    f32_rmsnorm__avx512, f32_silu__avx512, f32_swiglu__avx512, f32_rope__avx512,
    // matrix-vector products
    f32_gemv_1x4__avx512, f16_gemv_1x4__avx512, bf16_gemv_1x4__avx512,
    f16_cvt_f32__avx512, bf16_cvt_f32__avx512,
    // GEMM blocking: kc = 512 halves the C-tile loads and stores per FMA of kc = 256 (one
    // thread, Zen 5: 2048^3 at 202 vs 181 GFLOP/s); mc = 10 tiles of 12 rows (240 KB of A in L2).
    512, 120,
};

constexpr KernelTable kAvx2Table = {
    "avx2", 6, 16, f32_gemm_6x16__avx2,
    f32_vec_dot__avx2, f32_vec_axpy__avx2, f32_vec_scale__avx2, f32_vec_max__avx2,
    f32_vec_expsum__avx2,
    // attention tiles
    f32_vec_softcap__avx2, f32_attn_qk_panel__avx2, f32_attn_qk_rows__avx2, f32_attn_softmax__avx2,
    f32_attn_pv__avx2,
    f16_attn_qk_rows__avx2, bf16_attn_qk_rows__avx2, f16_attn_pv__avx2, bf16_attn_pv__avx2,
    // probes
    f32_probe_fma__avx2, kProbeFmaFlopsPerIter__avx2, f32_probe_sum__avx2,
    // Llama-family row ops
    f32_rmsnorm__avx2, f32_silu__avx2, f32_swiglu__avx2, f32_rope__avx2,
    // matrix-vector products
    f32_gemv_1x4__avx2, f16_gemv_1x4__avx2, bf16_gemv_1x4__avx2,
    f16_cvt_f32__avx2, bf16_cvt_f32__avx2,
    // GEMM blocking: the driver's defaults
    0, 0,
};
#endif

#if defined(ATTN_HAVE_ARM_KERNELS)
// Advanced SIMD is baseline on AArch64: every arm64 CPU runs this set.
constexpr KernelTable kNeonTable = {
    "neon", 8, 12, f32_gemm_8x12__neon,
    f32_vec_dot__neon, f32_vec_axpy__neon, f32_vec_scale__neon, f32_vec_max__neon,
    f32_vec_expsum__neon,
    // attention tiles
    f32_vec_softcap__neon, f32_attn_qk_panel__neon, f32_attn_qk_rows__neon, f32_attn_softmax__neon,
    f32_attn_pv__neon,
    f16_attn_qk_rows__neon, bf16_attn_qk_rows__neon, f16_attn_pv__neon, bf16_attn_pv__neon,
    // probes
    f32_probe_fma__neon, kProbeFmaFlopsPerIter__neon, f32_probe_sum__neon,
    // Llama-family row ops
    f32_rmsnorm__neon, f32_silu__neon, f32_swiglu__neon, f32_rope__neon,
    // matrix-vector products
    f32_gemv_1x4__neon, f16_gemv_1x4__neon, bf16_gemv_1x4__neon,
    f16_cvt_f32__neon, bf16_cvt_f32__neon,
    // GEMM blocking: the driver's defaults
    0, 0,
};
#endif

// NODE_ATTENTION_SIMD names a cap; sets are ordered by vector width, so a cap keeps the sets at
// or below it that this CPU runs (avx2 on an arm64 machine keeps neon; neon on x86 keeps scalar).
constexpr const char* kIsaNames[] = {"scalar", "neon", "avx2", "avx512"};
constexpr int kNoCap = 4;

int isa_rank(const char* isa) {
  for (int i = 0; i < kNoCap; ++i) {
    if (std::strcmp(kIsaNames[i], isa) == 0) return i;
  }
  return kNoCap;
}

// The message for an unknown NODE_ATTENTION_SIMD value, empty when there is none.
char g_env_error[160];

// The cap from NODE_ATTENTION_SIMD, read once (case-insensitive). Unset, empty or unknown: no
// cap; an unknown name is recorded in g_env_error rather than aborting the load, so the package
// still works and the JS side can report it.
int env_cap() {
  const char* env = std::getenv("NODE_ATTENTION_SIMD");
  if (env == nullptr || env[0] == '\0') return kNoCap;
  char name[16] = {};
  size_t n = 0;
  for (; env[n] != '\0' && n + 1 < sizeof(name); ++n) {
    name[n] = static_cast<char>(std::tolower(static_cast<unsigned char>(env[n])));
  }
  const int rank = env[n] == '\0' ? isa_rank(name) : kNoCap;
  if (rank == kNoCap) {
    std::snprintf(g_env_error, sizeof(g_env_error),
                  "NODE_ATTENTION_SIMD: expected one of avx512, avx2, neon, scalar, got \"%.64s\"", env);
  }
  return rank;
}

struct Candidates {
  const KernelTable* tables[4];
  const char* names[4];
  size_t count = 0;
  int cap = kNoCap;
  void add(const KernelTable* t) {
    if (isa_rank(t->isa) > cap) return;
    tables[count] = t;
    names[count] = t->isa;
    ++count;
  }
};

const Candidates& candidates() {
  static const Candidates c = [] {
    Candidates out;
    out.cap = env_cap();
    const CpuFeatures& f = cpu_features();
#if defined(ATTN_HAVE_X86_KERNELS)
#if defined(ATTN_AVX512_SIMDE)
    // Test build (native/test): the avx512 kernels are compiled against SIMDe and run anywhere.
    out.add(&kAvx512Table);
#else
    if (f.avx512) out.add(&kAvx512Table);
#endif
    if (f.avx2_fma) out.add(&kAvx2Table);
#endif
#if defined(ATTN_HAVE_ARM_KERNELS)
    out.add(&kNeonTable);
#endif
    (void)f;
    out.add(&kScalarTable);
    return out;
  }();
  return c;
}

std::atomic<const KernelTable*>& active() {
  static std::atomic<const KernelTable*> table{candidates().tables[0]};
  return table;
}

}  // namespace

const KernelTable& kernels() { return *active().load(std::memory_order_acquire); }

bool select_isa(const char* isa) {
  const Candidates& c = candidates();
  for (size_t i = 0; i < c.count; ++i) {
    if (std::strcmp(c.names[i], isa) == 0) {
      active().store(c.tables[i], std::memory_order_release);
      return true;
    }
  }
  return false;
}

const char* const* supported_isas(size_t* count) {
  *count = candidates().count;
  return candidates().names;
}

const char* isa_env_error() {
  candidates();
  return g_env_error[0] != '\0' ? g_env_error : nullptr;
}

}  // namespace attn

// Fills the kernel table once. Every ISA table is a constant; selection only picks a pointer,
// so switching (for tests and benchmarks) is a single atomic store.
#include <atomic>
#include <cstring>

#include "attn/cpu_features.h"
#include "attn/kernels.h"

namespace attn {
namespace {

constexpr KernelTable kScalarTable = {
    "scalar", 4, 8, f32_gemm_4x8__scalar,
    f32_vec_dot__scalar, f32_vec_axpy__scalar, f32_vec_scale__scalar, f32_vec_max__scalar,
    f32_vec_expsum__scalar,
    // attention tiles
    f32_vec_softcap__scalar, f32_attn_qk_panel__scalar, f32_attn_qk_rows__scalar,
    f32_attn_softmax__scalar, f32_attn_pv__scalar,
};

#if defined(ATTN_HAVE_X86_KERNELS)
constexpr KernelTable kAvx2Table = {
    "avx2", 6, 16, f32_gemm_6x16__avx2,
    f32_vec_dot__avx2, f32_vec_axpy__avx2, f32_vec_scale__avx2, f32_vec_max__avx2,
    f32_vec_expsum__avx2,
    // attention tiles
    f32_vec_softcap__avx2, f32_attn_qk_panel__avx2, f32_attn_qk_rows__avx2, f32_attn_softmax__avx2,
    f32_attn_pv__avx2,
};
#endif

struct Candidates {
  const KernelTable* tables[4];
  const char* names[4];
  size_t count = 0;
  void add(const KernelTable* t) {
    tables[count] = t;
    names[count] = t->isa;
    ++count;
  }
};

const Candidates& candidates() {
  static const Candidates c = [] {
    Candidates out;
    const CpuFeatures& f = cpu_features();
#if defined(ATTN_HAVE_X86_KERNELS)
    if (f.avx2_fma) out.add(&kAvx2Table);
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

}  // namespace attn

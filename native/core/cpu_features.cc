// CPU feature detection. Compiled without any -m flag: it must run on every x86-64 CPU, so
// it only uses cpuid/xgetbv through inline assembly guarded by the OSXSAVE bit.
#include "attn/cpu_features.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#include <cstdint>
#endif

namespace attn {
namespace {

#if defined(__x86_64__) || defined(_M_X64)
uint64_t read_xcr0() {
  uint32_t eax, edx;
  // xgetbv is only legal once OSXSAVE is confirmed, which the caller checks first.
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
  const bool osxsave = ecx & bit_OSXSAVE;
  const bool avx = ecx & bit_AVX;
  const bool fma = ecx & bit_FMA;
  const bool f16c = ecx & bit_F16C;  // the avx2 set's half-precision weight loads
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = read_xcr0();
  const bool ymm_state = (xcr0 & 0x6) == 0x6;            // SSE + AVX state
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  const bool avx2 = ebx & bit_AVX2;
  f.avx2_fma = ymm_state && avx2 && fma && f16c;
  // AVX-512: leaf 7 EBX bits 16 (F), 17 (DQ), 30 (BW), 31 (VL), and XCR0 bits 5-7 (opmask,
  // upper halves of zmm0-15, zmm16-31) besides 1-2: an OS that does not save the zmm state
  // would corrupt it on every context switch.
  const bool zmm_state = (xcr0 & 0xE6) == 0xE6;
  const unsigned avx512_bits = (1u << 16) | (1u << 17) | (1u << 30) | (1u << 31);
  f.avx512 = f.avx2_fma && zmm_state && (ebx & avx512_bits) == avx512_bits;
  return f;
}
#else
CpuFeatures detect() { return CpuFeatures{}; }
#endif

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

}  // namespace attn

// What the CPU and the OS together allow. An instruction set counts only when CPUID reports it
// and XGETBV shows the OS saves the matching register state (MLAS platform.cpp does the same).
#pragma once

namespace attn {

struct CpuFeatures {
  bool avx2_fma = false;   // AVX2 + FMA3 + F16C, YMM state enabled
  bool avx512 = false;     // AVX-512 F + DQ + BW + VL (and AVX2 + FMA3), opmask and ZMM state enabled
};

const CpuFeatures& cpu_features();

}  // namespace attn

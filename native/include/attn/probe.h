// Machine-limit probes for the benchmark: the FP32 FMA peak and the streaming read bandwidth this
// process actually gets with a given thread count, so that bench percentages are measured, not
// looked up. Not part of the public API (exported as _probePeak / _probeBandwidth).
#pragma once
#include <cstddef>

#include "attn/status.h"

namespace attn {

struct PeakResult {
  double gflops;       // best of several timed runs, all threads together
  const char* kernel;  // "avx2" (256-bit FMA) or "scalar" (no -m flags; may use SSE2/NEON)
};

struct BandwidthResult {
  double gbps;         // best of several timed passes, bytes read / second
  double checksum;     // the sum itself, returned so the reads cannot be optimized away
};

// Runs `threads` threads, each a tight loop of independent FMAs, for about `seconds` per trial.
PeakResult probe_fma_peak(int threads, double seconds);

// Sums a `bytes`-sized buffer (first touched by the same threads that read it) with `threads`
// threads; `bytes` should be several times the last-level cache. kOutOfMemory if it cannot allocate.
Status probe_read_bandwidth(int threads, size_t bytes, BandwidthResult* out);

// --- kernels: one per ISA, no threading, no allocation ---
// f32_probe_fma runs `iters` iterations of independent FMA chains (kProbeFmaFlopsPerIter flops
// each) and returns a value derived from the accumulators; f32_probe_sum returns sum(x[0..n)).
float f32_probe_fma__scalar(size_t iters);
float f32_probe_sum__scalar(const float* x, size_t n);
extern const size_t kProbeFmaFlopsPerIter__scalar;
#if defined(ATTN_HAVE_X86_KERNELS)
float f32_probe_fma__avx2(size_t iters);
float f32_probe_sum__avx2(const float* x, size_t n);
extern const size_t kProbeFmaFlopsPerIter__avx2;
#endif

}  // namespace attn

// Machine-limit probes for the benchmark: the FP32 FMA peak and the streaming read bandwidth this
// process actually gets with a given thread count, so that bench percentages are measured, not
// looked up. Not part of the public API (exported as _probePeak / _probeBandwidth).
#pragma once
#include <cstddef>

#include "attn/status.h"

namespace attn {

struct PeakResult {
  double gflops;       // best of several timed runs, all threads together
  const char* kernel;  // the kernel set whose probe ran: kernels().isa
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
// The drivers reach them through the kernel table (attn/kernels.h), whose constant tables need
// the flop counts as constants here: chains x lanes x 2 flops.
float f32_probe_fma__scalar(size_t iters);
float f32_probe_sum__scalar(const float* x, size_t n);
constexpr size_t kProbeFmaFlopsPerIter__scalar = 32 * 1 * 2;
#if defined(ATTN_HAVE_X86_KERNELS)
float f32_probe_fma__avx2(size_t iters);
float f32_probe_sum__avx2(const float* x, size_t n);
constexpr size_t kProbeFmaFlopsPerIter__avx2 = 12 * 8 * 2;
float f32_probe_fma__avx512(size_t iters);
float f32_probe_sum__avx512(const float* x, size_t n);
constexpr size_t kProbeFmaFlopsPerIter__avx512 = 16 * 16 * 2;
#endif
#if defined(ATTN_HAVE_ARM_KERNELS)
float f32_probe_fma__neon(size_t iters);
float f32_probe_sum__neon(const float* x, size_t n);
constexpr size_t kProbeFmaFlopsPerIter__neon = 16 * 4 * 2;
#endif

}  // namespace attn
